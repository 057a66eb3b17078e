"""What the sinks share: one consume -> write -> commit loop and one backoff.

The ledger (cs.limits, cs.alerts -> PostgreSQL) and the parties sync (cs.registry ->
parties) write a polled batch, then commit its offsets: at-least-once, with idempotent
writes making a redelivery harmless. While PostgreSQL is unreachable they, and the
webhook dispatcher's bookkeeping, retry the same write after :func:`backoff_delay` and
commit nothing; a stop during the wait ends the loop with the batch uncommitted.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from connectors.errors import ConnectorError
from connectors.pg.errors import CONNECTION_ERRORS

log = logging.getLogger(__name__)
T = TypeVar("T")


class Stopped(ConnectorError):
    """Raised out of :func:`retry_unreachable` when the stop event is set while waiting."""


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)], where
    ``attempt`` counts the failures before this wait from 0 (AWS's "full jitter": retries
    of many clients spread out instead of arriving together)."""
    return (rng or random).uniform(0, min(cap, base * (2 ** min(attempt, 30))))


async def wait_or_stop(stop: asyncio.Event, delay: float) -> bool:
    """Wait ``delay`` seconds; True if ``stop`` was set first."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
        return True
    except TimeoutError:
        return False


async def retry_unreachable(call: Callable[[], Awaitable[T]], stop: asyncio.Event, *, name: str,
                            base: float = 0.2, cap: float = 10.0,
                            on_failure: Callable[[], None] | None = None) -> T:
    """``await call()`` until it does not fail with a connection error (the database is
    away); ``on_failure`` runs after each such failure (drop the connection, count it).
    Raises :class:`Stopped` if ``stop`` is set during a wait."""
    attempt = 0
    while True:
        try:
            return await call()
        except CONNECTION_ERRORS as exc:
            if on_failure is not None:
                on_failure()
            delay = backoff_delay(attempt, base, cap)
            attempt += 1
            log.warning("%s: PostgreSQL unavailable (%s: %s); retry %d in %.2fs",
                        name, type(exc).__name__, exc, attempt, delay)
            if await wait_or_stop(stop, delay):
                raise Stopped() from exc


def next_offsets(records: list[ConsumerRecord]) -> dict[TopicPartition, int]:
    """The offset to commit per partition after ``records``: the last one's, plus one."""
    out: dict[TopicPartition, int] = {}
    for m in records:
        tp = TopicPartition(m.topic, m.partition)
        out[tp] = max(out.get(tp, 0), m.offset + 1)
    return out


async def consume_batches(consumer: AIOKafkaConsumer, stop: asyncio.Event,
                          write: Callable[[list[ConsumerRecord]], Awaitable[None]], *,
                          name: str, max_records: int,
                          polled: Callable[[], None] | None = None,
                          committed: Callable[[], None] | None = None) -> None:
    """Poll a batch, ``write`` it, then commit its offsets, until ``stop`` is set.

    ``write`` raising :class:`Stopped` (stopped while the database was away) ends the
    loop with the batch uncommitted. ``polled`` runs after every poll (the ledger marks
    itself assigned), ``committed`` after every successful commit.
    """
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=300, max_records=max_records)
        if polled is not None:
            polled()
        records = [m for msgs in batch.values() for m in msgs]
        if not records:
            continue
        try:
            await write(records)
        except Stopped:
            return
        try:
            await consumer.commit(next_offsets(records))
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partitions: the new owner re-reads these records and
            # the idempotent writes make that harmless.
            log.warning("%s: offset commit failed (%s); records will be re-read", name, exc)
            continue
        if committed is not None:
            committed()
