"""The local stack: real Kafka 4.x and PostgreSQL; up/down/up is idempotent."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from connectors.pg.migrate import migrate
from creditstream.stack import manager
from creditstream.stack.kafka import Kafka
from creditstream.stack.postgres import Postgres
from schemas.config import REPO_ROOT, Settings
from schemas.topics import TOPICS

pytestmark = pytest.mark.integration


async def test_single_kraft_node_serves_the_catalogue_topics(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert {t.name for t in TOPICS} <= topics
    assert cluster["controller_id"] == 1 and len(cluster["brokers"]) == 1


def test_broker_jar_is_kafka_4(settings: Settings) -> None:
    jars = sorted(p.name for p in Kafka(settings).lib.glob("kafka_2.13-*.jar"))
    assert jars and jars[0].startswith("kafka_2.13-4."), jars


async def test_migrations_apply_twice_without_harm(pg_url: str) -> None:
    await migrate(pg_url)
    assert await migrate(pg_url) == []
    conn = await asyncpg.connect(pg_url)
    try:
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        versions = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    assert {"decision_log", "current_limits", "alerts", "schema_migrations"} <= tables
    assert versions == len(list((REPO_ROOT / "connectors/pg/migrations").glob("*.sql")))


def test_compose_file_is_valid() -> None:
    # `docker compose` (plugin) where it exists, else Debian's docker-compose: same file format.
    has_plugin = shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True).returncode == 0
    cmd = ["docker", "compose"] if has_plugin else ["docker-compose"]
    if not has_plugin and not shutil.which("docker-compose"):
        pytest.fail("no compose client: scripts/bootstrap.sh installs Debian's docker-compose")
    res = subprocess.run([*cmd, "-f", str(REPO_ROOT / "docker-compose.yml"), "config", "-q"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.stack_cycle
def test_up_is_idempotent_and_down_leaves_nothing_running(settings: Settings) -> None:
    cli = [sys.executable, "-m", "creditstream.cli", "stack"]
    first = subprocess.run([*cli, "up"], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    kafka_pid, pg_pid = Kafka(settings).pid(), Postgres(settings).pid()
    again = subprocess.run([*cli, "up"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already running" in again.stderr
    assert (Kafka(settings).pid(), Postgres(settings).pid()) == (kafka_pid, pg_pid)
    status = subprocess.run([*cli, "status"], capture_output=True, text=True).stdout
    assert "kafka" in status and "postgres" in status and status.count("running") >= 2

    down = subprocess.run([*cli, "down"], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert Kafka(settings).pid() is None
    if not Postgres(settings).external:
        assert Postgres(settings).pid() is None
    for pid in (kafka_pid, pg_pid):
        if pid:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]

    back = subprocess.run([*cli, "up"], capture_output=True, text=True, timeout=120)
    assert back.returncode == 0, back.stderr
    assert Kafka(settings).pid() is not None
    manager.status(settings)


def test_storage_is_formatted_with_a_cluster_id_that_starts_with_a_dash(tmp_path, settings) -> None:
    """A random cluster id starts with "-" one time in 64; `kafka-storage format -t ID`
    then read it as an option and `stack up` failed (issue 13)."""
    import dataclasses

    mine = Kafka(dataclasses.replace(settings, state_dir=tmp_path))
    mine.lib = Kafka(settings).lib  # the jars the running stack resolved
    mine.data.mkdir(parents=True)
    mine.logs.mkdir(parents=True)
    mine._write_properties()
    mine._format_once(cluster_id="-GQcYbu2Tlyx1bZ2dYC9mQ")
    assert "cluster.id=-GQcYbu2Tlyx1bZ2dYC9mQ" in (mine.data / "meta.properties").read_text()
