"""`creditstream parties sync`: registry.borrower events into the encrypted parties table.

Consumes ``cs.registry`` from the beginning as its own group; offsets are committed only
after the batch's rows are committed, and the upsert is idempotent, so a crash or a
redelivery loses and duplicates nothing. Other registry events are not about identities
and are passed over; a record that does not decode is passed over too, counted, because
the engine already dead-letters it with its reason and bytes (one dead letter per record).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from connectors.ledger.service import backoff_delay
from connectors.parties import store
from connectors.pg.errors import CONNECTION_ERRORS
from schemas import codec
from schemas.events import BorrowerRegistered
from schemas.topics import REGISTRY_TOPIC

log = logging.getLogger(__name__)
GROUP = "creditstream-parties"
TOPIC = REGISTRY_TOPIC


@dataclass
class Stats:
    records: int = 0
    parties: int = 0
    skipped_invalid: int = 0
    retries: int = 0


def plan(values: list[bytes], stats: Stats) -> list[BorrowerRegistered]:
    """The registrations among a batch of registry records, in log order."""
    out = []
    for value in values:
        try:
            event = codec.decode(value)
        except codec.DecodeError:
            stats.skipped_invalid += 1
            continue
        if isinstance(event, BorrowerRegistered):
            out.append(event)
    return out


class PartySync:
    """One consumer; ``run`` until ``stop`` is set."""

    def __init__(self, bootstrap: str, pg_url: str, *, group: str = GROUP, max_records: int = 500,
                 backoff_base: float = 0.2, backoff_cap: float = 10.0) -> None:
        self.bootstrap, self.pg_url, self.group = bootstrap, pg_url, group
        self.max_records, self.backoff_base, self.backoff_cap = max_records, backoff_base, backoff_cap
        self.stats = Stats()
        self._conn: asyncpg.Connection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=self.bootstrap, group_id=self.group,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=200, max_poll_records=self.max_records)
        await consumer.start()
        try:
            while not stop.is_set():
                polled = await consumer.getmany(timeout_ms=300, max_records=self.max_records)
                msgs = [(tp, m) for tp, batch in polled.items() for m in batch]
                if not msgs:
                    continue
                events = plan([m.value or b"" for _, m in msgs], self.stats)
                if events and not await self._write(events, stop):
                    return  # stopped while PostgreSQL was away: nothing committed
                self.stats.records += len(msgs)
                self.stats.parties += len(events)
                offsets: dict[TopicPartition, int] = {}
                for tp, m in msgs:
                    offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
                try:
                    await consumer.commit(offsets)
                except (CommitFailedError, KafkaError) as exc:
                    log.warning("parties: offset commit failed (%s); records will be re-read", exc)
        finally:
            await consumer.stop()
            if self._conn is not None:
                self._conn.terminate()

    async def _write(self, events: list[BorrowerRegistered], stop: asyncio.Event) -> bool:
        attempt = 0
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self.pg_url, timeout=5)
                await store.write(self._conn, events)
                return True
            except CONNECTION_ERRORS as exc:
                if self._conn is not None:
                    self._conn.terminate()
                self._conn = None
                delay = backoff_delay(attempt, self.backoff_base, self.backoff_cap)
                attempt += 1
                self.stats.retries += 1
                log.warning("parties: PostgreSQL unavailable (%s); retry %d in %.2fs", type(exc).__name__, attempt, delay)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    return False
                except TimeoutError:
                    pass
