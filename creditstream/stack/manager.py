"""`creditstream stack up | down | status`: the local Kafka + PostgreSQL stack."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import sys
import time
import uuid

import orjson

from connectors.kafka_io import ensure_topics
from creditstream.stack.kafka import Kafka, kafka_nodes
from creditstream.stack.postgres import Postgres
from creditstream.stack.process import StackError
from schemas import config
from schemas.config import Settings

READY_TIMEOUT_S = 90.0


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def with_brokers(settings: Settings, brokers: int) -> Settings:
    """The settings of a stack of ``brokers`` nodes, recorded for every later command
    (workers, tests, tools read it through config.load()). Refused while a stack of
    another shape runs."""
    if brokers == settings.kafka_brokers:
        config.brokers_file(settings.state_dir).parent.mkdir(parents=True, exist_ok=True)
        config.brokers_file(settings.state_dir).write_text(f"{brokers}\n")
        return settings
    running = [k for k in kafka_nodes(settings) if k.pid()]
    if running:
        raise StackError(f"a {settings.kafka_brokers}-broker Kafka is running; "
                         "run `creditstream stack down` first")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    config.brokers_file(settings.state_dir).write_text(f"{brokers}\n")
    fresh = config.load()
    if fresh.kafka_brokers != brokers:  # CREDITSTREAM_KAFKA_BROKERS says otherwise
        raise StackError(f"CREDITSTREAM_KAFKA_BROKERS={fresh.kafka_brokers} contradicts --brokers {brokers}")
    return dataclasses.replace(fresh, state_dir=settings.state_dir)


def _cluster_id(settings: Settings) -> str | None:
    """One cluster id for all nodes of a cluster, kept beside them."""
    if settings.kafka_brokers == 1:
        return None
    path = settings.state_dir / "kafka-cluster" / "cluster.id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
    return path.read_text().strip()


def up(settings: Settings, timeout: float = READY_TIMEOUT_S) -> dict[str, object]:
    """Start what is not running, wait until both answer, create topics, migrate. If
    anything fails, what this call started is stopped again."""
    from connectors.pg.migrate import migrate

    t0 = time.monotonic()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    nodes, pg = kafka_nodes(settings), Postgres(settings)
    started: list[Kafka | Postgres] = []
    try:
        cluster_id = _cluster_id(settings)
        for kafka in nodes:
            if kafka.start(cluster_id):
                started.append(kafka)
        shape = f"{len(nodes)} brokers" if len(nodes) > 1 else "broker"
        _say(f"kafka ({shape}): {'starting' if started else 'already running'} on {settings.kafka_bootstrap}")
        if pg.start():
            started.append(pg)
            _say("postgres: started")
        else:
            _say(f"postgres: {'already running' if not pg.external else 'using configured server'}")

        async def ready() -> tuple[list[str], list[str]]:
            await asyncio.gather(*(k.wait_ready(timeout) for k in nodes), pg.wait_ready(timeout))
            topics = await ensure_topics(settings.kafka_bootstrap, replication=settings.kafka_replication,
                                         min_insync=settings.kafka_min_insync)
            migrations = await migrate(settings.pg_url)
            return topics, migrations

        topics, migrations = asyncio.run(ready())
    except BaseException:
        for service in reversed(started):
            service.stop()
        if started:
            _say("stack up failed: stopped what it had started")
        raise
    elapsed = time.monotonic() - t0
    _say(f"stack ready in {elapsed:.1f}s (topics created: {len(topics)}, migrations applied: {len(migrations)})")
    return {"ready_s": round(elapsed, 2), "topics_created": topics, "migrations_applied": migrations}


def init(settings: Settings, timeout: float = READY_TIMEOUT_S) -> None:
    """For servers run elsewhere (docker-compose): wait for them, create topics, migrate."""
    from connectors.pg.migrate import migrate

    async def run() -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                created = await ensure_topics(settings.kafka_bootstrap, replication=settings.kafka_replication,
                                              min_insync=settings.kafka_min_insync)
                break
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                if time.monotonic() > deadline:
                    raise StackError(f"Kafka at {settings.kafka_bootstrap} did not answer: {exc!r}") from exc
                await asyncio.sleep(1)
        applied = await migrate(settings.pg_url)
        _say(f"init: topics created {created}, migrations applied {applied}")

    asyncio.run(run())


def down(settings: Settings) -> None:
    """Stop what `up` started: our broker and our private PostgreSQL, nothing else."""
    pg = Postgres(settings)
    for kafka in kafka_nodes(settings):
        kafka.stop()
    _say("kafka: stopped")
    if not pg.external:
        pg.stop()
        _say("postgres: stopped")


def status(settings: Settings) -> list[dict[str, object]]:
    return [*(k.status() for k in kafka_nodes(settings)), Postgres(settings).status()]


def print_status(settings: Settings, as_json: bool = False) -> int:
    rows = status(settings)
    if as_json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    else:
        for r in rows:
            state = {True: "running", False: "stopped", None: "external"}[r["running"]]  # type: ignore[index]
            pid = f" pid {r['pid']}" if r.get("pid") else ""
            print(f"{r['service']:<9} {state:<8}{pid}  {r['address'] or '-'}  log: {r['log'] or '-'}")
    return 0


__all__ = ["StackError", "up", "down", "status", "print_status", "ensure_topics", "with_brokers"]
