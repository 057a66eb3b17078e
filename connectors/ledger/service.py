"""The ledger process: consume cs.limits and cs.alerts, write batches, then commit offsets.

At-least-once end to end: offsets are committed only after the batch's transaction has
committed, and every write is idempotent (primary keys, version guard), so a crash or a
redelivery never loses or duplicates a row. While PostgreSQL is unreachable the batch is
retried with capped exponential backoff and nothing is committed (connectors/sink.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from connectors.kafka_io import make_producer
from connectors.ledger import batch as plan_mod
from connectors.ledger import store
from connectors.pg.errors import CONNECTION_ERRORS
from connectors.sink import consume_batches, retry_unreachable
from schemas.codec import encode
from schemas.outputs import DeadLetter
from schemas.topics import ALERTS_TOPIC, LIMITS_TOPIC, route

log = logging.getLogger(__name__)
GROUP = "creditstream-ledger"
TOPICS = (LIMITS_TOPIC, ALERTS_TOPIC)


@dataclass
class Stats:
    records: int = 0
    batches: int = 0
    dead_letters: int = 0
    retries: int = 0
    commits: int = 0
    errors: list[str] = field(default_factory=list)


class Ledger:
    """One ledger consumer. ``run`` until ``stop`` is set; ``stats`` for tests and logs."""

    def __init__(self, bootstrap: str, pg_url: str, *, group: str = GROUP,
                 max_records: int = 1000, backoff_base: float = 0.2, backoff_cap: float = 10.0,
                 connect_timeout: float = 5.0) -> None:
        self.bootstrap = bootstrap
        self.pg_url = pg_url
        self.group = group
        self.max_records = max_records
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.connect_timeout = connect_timeout
        self.stats = Stats()
        self.assigned = asyncio.Event()  # set once the group gave this consumer partitions
        self._conn: asyncpg.Connection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(*TOPICS, bootstrap_servers=self.bootstrap, group_id=self.group,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=200, max_poll_records=self.max_records)
        producer = make_producer(self.bootstrap)
        await producer.start()
        await consumer.start()
        def polled() -> None:
            if consumer.assignment():
                self.assigned.set()

        def committed() -> None:
            self.stats.commits += 1

        async def write(msgs: list[ConsumerRecord]) -> None:
            records = [plan_mod.RawRecord(m.topic, m.partition, m.offset, m.key, m.value or b"") for m in msgs]
            await self._handle(records, producer, stop)

        try:
            await consume_batches(consumer, stop, write, name="ledger", max_records=self.max_records,
                                  polled=polled, committed=committed)
        finally:
            await consumer.stop()
            await producer.stop()
            self._drop()

    async def _handle(self, records: list[plan_mod.RawRecord], producer: AIOKafkaProducer,
                      stop: asyncio.Event) -> None:
        """Write the batch (:class:`connectors.sink.Stopped` if stopped while PostgreSQL is
        away), then send its dead letters and wait for their acks."""
        planned = plan_mod.plan(records)
        rejected = await self._write_retrying(planned, stop)
        dead = planned.dead_letters + rejected
        if dead:
            futures = []
            for dl in dead:
                topic, key = route(dl)
                futures.append(await producer.send(topic, encode(dl), key=key))
            await asyncio.gather(*futures)  # acknowledged before the offsets move on
            self.stats.dead_letters += len(dead)
            for dl in dead:
                log.warning("ledger: dead-lettered %s-%s@%s: %s", dl.payload.topic,
                            dl.payload.partition, dl.payload.offset, dl.payload.error)
        self.stats.records += len(records)
        self.stats.batches += 1

    async def _write_retrying(self, planned: plan_mod.Batch, stop: asyncio.Event) -> list[DeadLetter]:
        """Write until it succeeds (:class:`connectors.sink.Stopped` when stopped first).
        Returns dead letters for records PostgreSQL itself refuses (found by retrying them
        one at a time)."""
        async def attempt() -> list[DeadLetter]:
            conn = await self._connection()
            try:
                await store.write(conn, planned)
                return []
            except asyncpg.PostgresError as exc:
                if isinstance(exc, CONNECTION_ERRORS):
                    raise
                log.error("ledger: batch refused (%s); writing record by record", exc)
                return await self._write_singly(conn, planned)

        def failed() -> None:
            self._drop()
            self.stats.retries += 1

        return await retry_unreachable(attempt, stop, name="ledger", base=self.backoff_base,
                                       cap=self.backoff_cap, on_failure=failed)

    async def _write_singly(self, conn: asyncpg.Connection, planned: plan_mod.Batch) -> list[DeadLetter]:
        out = []
        for rec, single in planned.singles():
            try:
                await store.write(conn, single)
            except asyncpg.PostgresError as exc:
                if isinstance(exc, CONNECTION_ERRORS):
                    raise
                out.append(plan_mod.dead_letter(rec, "ledger_rejected", f"{type(exc).__name__}: {exc}"))
        return out

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.pg_url, timeout=self.connect_timeout)
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()  # never wait on a socket that may be dead
