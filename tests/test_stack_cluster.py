"""`creditstream stack up --brokers 3`: a three-node KRaft cluster from the same jars,
replication 3 and min.insync.replicas 2, and the engine's broker fault on it (the leader
of cs.telemetry-0 SIGKILLed while traffic and business events flow; issues 13 and 19).

The cluster gets its own state folder and ports, so the stack the suite runs on is
untouched."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from creditstream.stack import manager
from creditstream.stack.kafka import Kafka, kafka_nodes
from load import chaos
from schemas import config

pytestmark = pytest.mark.integration


def _free_run(n: int) -> int:
    """A port p with p .. p+n-1 all free on loopback."""
    for base in range(31000, 40000, 17):
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free run of ports")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[config.Settings]:
    home = tmp_path_factory.mktemp("cluster")
    main = config.load()
    port = _free_run(6)
    env = {"CREDITSTREAM_STATE_DIR": str(home), "CREDITSTREAM_KAFKA_PORT": str(port),
           "CREDITSTREAM_PG_URL": main.pg_url}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    # The jars the suite's stack already resolved: no second Maven copy.
    (home / "kafka").mkdir()
    (home / "kafka" / "lib").symlink_to(Kafka(main).lib)
    settings = manager.with_brokers(config.load(), 3)
    try:
        manager.up(settings)
        yield settings
    finally:
        manager.down(settings)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def test_three_brokers_replicate_every_topic_three_times_with_two_in_sync(cluster: config.Settings) -> None:
    assert cluster.kafka_brokers == 3 and len(cluster.kafka_bootstrap.split(",")) == 3
    assert all(k.pid() for k in kafka_nodes(cluster))
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.kafka_bootstrap)
    await admin.start()
    try:
        assert len((await admin.describe_cluster())["brokers"]) == 3
        for topic in await admin.describe_topics(["cs.telemetry", "cs.limits", "cs.ledger"]):
            assert {len(p["replicas"]) for p in topic["partitions"]} == {3}, topic["topic"]
        # A broker that has not yet taken in the new topic's metadata answers with an
        # error and no entries (seen in a fresh clone): ask again for a while.
        entries: dict[str, str] = {}
        for _ in range(50):
            described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "cs.limits")])
            entries = {e[0]: e[1] for e in described[0].resources[0][4]}
            if "min.insync.replicas" in entries:
                break
            await asyncio.sleep(0.2)
        assert entries.get("min.insync.replicas") == "2" and entries.get("cleanup.policy") == "compact", entries
    finally:
        await admin.close()


def test_a_second_stack_shape_is_refused_while_the_cluster_runs(cluster: config.Settings) -> None:
    with pytest.raises(manager.StackError, match="3-broker Kafka is running"):
        manager.with_brokers(cluster, 1)
    assert Path(config.brokers_file(cluster.state_dir)).read_text().strip() == "3"


async def test_killing_the_leader_broker_loses_nothing_and_matches_the_replay(cluster: config.Settings) -> None:
    res = await chaos.run("broker", events=4000, machines=120, rate=800, seed=5, business_every=10)
    assert res.events_in > 4000 and res.updates_out >= res.borrowers > 0
    assert (res.lost, res.duplicates, res.final_mismatches) == (0, 0, 0), res.line()
    assert res.recover_s < 60
    assert all(k.pid() for k in kafka_nodes(cluster))  # the killed node came back
