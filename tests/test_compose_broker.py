"""docker-compose.yml's broker is the broker of `creditstream stack up`.

Docker is not on the project's machines, so the compose file is checked here against the
properties the stack writes: the settings that change what a client or a worker sees
(record size limit, partitions, the cleaner's throttle) must be the same, and a client
on the host must be told an address it can reach.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from creditstream.stack.kafka import Kafka
from schemas.config import REPO_ROOT, Settings

# Broker settings whose value a user of either stack depends on.
SHARED = ("message.max.bytes", "log.cleaner.io.max.bytes.per.second", "num.partitions",
          "group.initial.rebalance.delay.ms")


def compose_kafka() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["kafka"]


def stack_properties(tmp_path: Path) -> dict[str, str]:
    settings = Settings(state_dir=tmp_path, kafka_port=19092, kafka_controller_port=19093,
                        kafka_bootstrap="127.0.0.1:19092", kafka_heap="512m", pg_url_override=None,
                        worker_web_port=6066, gateway_port=8080)
    kafka = Kafka(settings)
    kafka.home.mkdir(parents=True)
    kafka._write_properties()
    lines = kafka.props.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_compose_broker_has_the_stack_settings(tmp_path: Path) -> None:
    env = compose_kafka()["environment"]
    compose = {k.removeprefix("KAFKA_").lower().replace("_", "."): str(v) for k, v in env.items()}
    stack = stack_properties(tmp_path)
    assert {k: compose.get(k) for k in SHARED} == {k: stack[k] for k in SHARED}


def test_a_host_client_is_advertised_an_address_it_can_reach() -> None:
    kafka = compose_kafka()
    env = kafka["environment"]
    advertised = dict(entry.split("://") for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    bound = dict(entry.split("://") for entry in env["KAFKA_LISTENERS"].split(","))
    host = {name: addr for name, addr in advertised.items() if addr.split(":")[0] in ("127.0.0.1", "localhost")}
    assert host, f"no listener advertises a host address: {advertised}"
    (name, addr), = host.items()
    port = addr.rsplit(":", 1)[1]
    assert bound[name] == f":{port}"  # the broker listens where it says
    assert f"127.0.0.1:{port}:{port}" in kafka["ports"]  # and the host reaches that port
