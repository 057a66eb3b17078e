"""`creditstream stack up | down | status`: the local Kafka + PostgreSQL stack."""

from __future__ import annotations

import asyncio
import sys
import time

import orjson

from creditstream.config import Settings
from creditstream.stack.kafka import Kafka
from creditstream.stack.postgres import Postgres
from creditstream.stack.process import StackError

READY_TIMEOUT_S = 90.0


async def ensure_topics(bootstrap: str, extra: tuple[tuple[str, int], ...] = ()) -> list[str]:
    """Create every catalogue topic (and ``extra`` (name, partitions)) that is missing."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from schemas.topics import TOPICS

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(t.name, t.partitions, 1, topic_configs=t.kafka_config())
               for t in TOPICS if t.name not in existing]
        new += [NewTopic(name, n, 1, topic_configs={"retention.ms": str(7 * 24 * 3600 * 1000)})
                for name, n in extra if name not in existing]
        if new:
            await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def up(settings: Settings, timeout: float = READY_TIMEOUT_S) -> dict[str, object]:
    """Start what is not running, wait until both answer, create topics, migrate."""
    from connectors.pg.migrate import migrate

    t0 = time.monotonic()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    kafka, pg = Kafka(settings), Postgres(settings)
    started_kafka = kafka.start()
    _say(f"kafka: {'starting' if started_kafka else 'already running'} on {settings.kafka_bootstrap}")
    started_pg = pg.start()
    _say(f"postgres: {'started' if started_pg else 'already running' if not pg.external else 'using configured server'}")

    async def ready() -> tuple[list[str], list[str]]:
        await asyncio.gather(kafka.wait_ready(timeout), pg.wait_ready(timeout))
        topics = await ensure_topics(settings.kafka_bootstrap)
        migrations = await migrate(settings.pg_url)
        return topics, migrations

    topics, migrations = asyncio.run(ready())
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
                created = await ensure_topics(settings.kafka_bootstrap)
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
    kafka, pg = Kafka(settings), Postgres(settings)
    kafka.stop()
    _say("kafka: stopped")
    if not pg.external:
        pg.stop()
        _say("postgres: stopped")


def status(settings: Settings) -> list[dict[str, object]]:
    return [Kafka(settings).status(), Postgres(settings).status()]


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


__all__ = ["StackError", "up", "down", "status", "print_status", "ensure_topics"]
