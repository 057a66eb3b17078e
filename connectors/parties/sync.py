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
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from connectors.parties import store
from connectors.sink import consume_batches, retry_unreachable
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

        async def write(msgs: list[ConsumerRecord]) -> None:
            events = plan([m.value or b"" for m in msgs], self.stats)
            if events:
                await self._write(events, stop)
            self.stats.records += len(msgs)
            self.stats.parties += len(events)

        try:
            await consume_batches(consumer, stop, write, name="parties", max_records=self.max_records)
        finally:
            await consumer.stop()
            self._drop()

    async def _write(self, events: list[BorrowerRegistered], stop: asyncio.Event) -> None:
        """Upsert the registrations, retrying while PostgreSQL is away
        (:class:`connectors.sink.Stopped` if stopped first)."""
        async def attempt() -> None:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self.pg_url, timeout=5)
            await store.write(self._conn, events)

        def failed() -> None:
            self._drop()
            self.stats.retries += 1

        await retry_unreachable(attempt, stop, name="parties", base=self.backoff_base,
                                cap=self.backoff_cap, on_failure=failed)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()
