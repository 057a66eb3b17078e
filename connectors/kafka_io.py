"""Thin aiokafka helpers shared by connectors, tools and tests.

Producers use acks=all with idempotence: a record acknowledged to a caller is on the
broker's log, and a retried send does not write it twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import GroupCoordinatorNotAvailableError, NotCoordinatorForGroupError
from aiokafka.structs import OffsetAndMetadata

from schemas.codec import encode
from schemas.events import Envelope
from schemas.topics import INPUT_TOPICS, TOPICS, route


def make_producer(bootstrap: str, **overrides: object) -> AIOKafkaProducer:
    conf: dict[str, object] = {"bootstrap_servers": bootstrap, "acks": "all",
                               "enable_idempotence": True, "linger_ms": 5,
                               "max_batch_size": 256 * 1024, "compression_type": None}
    conf.update(overrides)
    return AIOKafkaProducer(**conf)


async def group_offsets(admin: Any, group: str, timeout: float = 60.0,
                        pause: float = 0.5) -> dict[TopicPartition, OffsetAndMetadata]:
    """``group``'s committed offsets (empty when it has none), through a started
    ``AIOKafkaAdminClient``, retrying while the coordinator is not available, up to
    ``timeout`` seconds (then the error is raised).

    On a new broker the group coordinator (the ``__consumer_offsets`` topic) is created on
    first use and answers "not available" for a few seconds; a worker or a tool started
    with the broker must wait for it, not fail. This is the one place that waits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            offsets: dict[TopicPartition, OffsetAndMetadata] = await admin.list_consumer_group_offsets(group)
            return offsets
        except (GroupCoordinatorNotAvailableError, NotCoordinatorForGroupError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(pause)


async def produce_events(producer: AIOKafkaProducer, events: Iterable[Envelope],
                         headers: list[tuple[str, bytes]] | None = None) -> int:
    """Send events to their catalogue topics keyed by the catalogue rule; wait for acks."""
    futures = []
    for event in events:
        topic, key = route(event)
        futures.append(await producer.send(topic, encode(event), key=key, headers=headers))
    await asyncio.gather(*futures)
    return len(futures)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int


class TopicReader:
    """Reads what is written to topics after the reader was opened (tests, tail, load).

    ``open()`` pins the current end offsets, so records produced earlier are not seen;
    with ``from_beginning`` it reads the topics from their first record instead.
    ``fetch_bytes``: the most fetched per partition at once (large logs read faster).
    """

    def __init__(self, bootstrap: str, *topics: str, from_beginning: bool = False,
                 fetch_bytes: int = 1 << 20) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.from_beginning = from_beginning
        self.fetch_bytes = fetch_bytes
        self.consumer: AIOKafkaConsumer | None = None

    async def open(self) -> TopicReader:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    group_id=None, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=100, max_partition_fetch_bytes=self.fetch_bytes)
        await consumer.start()
        cluster = await consumer._client.fetch_all_metadata()  # noqa: SLF001 - no public API
        tps = [TopicPartition(t, p) for t in self.topics
               for p in sorted(cluster.partitions_for_topic(t) or ())]
        if len({tp.topic for tp in tps}) != len(set(self.topics)):
            await consumer.stop()
            raise LookupError(f"unknown topic among {self.topics}: run `creditstream stack up`")
        consumer.assign(tps)
        if self.from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            for tp, off in (await consumer.end_offsets(tps)).items():
                consumer.seek(tp, off)
        self.consumer = consumer
        return self

    async def close(self) -> None:
        if self.consumer:
            await self.consumer.stop()

    async def __aenter__(self) -> TopicReader:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def read(self, until: Callable[[list[Record]], bool], timeout: float = 20.0) -> list[Record]:
        """Collect records until ``until(records)`` holds or the timeout passes."""
        assert self.consumer is not None, "open() first"
        got: list[Record] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await self.consumer.getmany(timeout_ms=200)
            for tp, msgs in batch.items():
                for m in msgs:
                    got.append(Record(tp.topic, tp.partition, m.offset, m.key, m.value,
                                      dict(m.headers or ()), m.timestamp))
            if until(got):
                break
        return got

    async def read_to_end(self, timeout: float = 60.0) -> list[Record]:
        """Collect every record up to the end offsets of now: all that was written before
        the call, however long fetching it takes (a fixed read time drops the tail of a
        backlog on a loaded machine). Raises TimeoutError if the end is not reached."""
        return [r async for r in self.records_to_end(timeout)]

    async def records_to_end(self, timeout: float | None = None) -> AsyncIterator[Record]:
        """``read_to_end`` one record at a time, for a log too large to hold: every record
        up to the end offsets of now (and any written meanwhile that came in the same
        fetch), in fetch order. With ``timeout``, raises TimeoutError if the end is not
        reached by then."""
        assert self.consumer is not None, "open() first"
        tps = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(tps)
        deadline = None if timeout is None else time.monotonic() + timeout
        while behind := {tp: ends[tp] - pos for tp in tps
                         if (pos := await self.consumer.position(tp)) < ends[tp]}:
            if deadline is not None and time.monotonic() > deadline:
                left = {f"{tp.topic}-{tp.partition}": n for tp, n in behind.items()}
                raise TimeoutError(f"records not read within {timeout:.0f} s: {left}")
            batch = await self.consumer.getmany(timeout_ms=200)
            for tp, msgs in batch.items():
                for m in msgs:
                    yield Record(tp.topic, tp.partition, m.offset, m.key, m.value,
                                 dict(m.headers or ()), m.timestamp)


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    """The current end offset of every partition of ``topics``."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        cluster = await c._client.fetch_all_metadata()  # noqa: SLF001 - no public API
        tps = [TopicPartition(t, p) for t in topics for p in cluster.partitions_for_topic(t) or ()]
        return await c.end_offsets(tps)
    finally:
        await c.stop()


async def commit_group_offsets(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Set a consumer group's committed offsets (the group must have no active members)."""
    from aiokafka.structs import OffsetAndMetadata

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        c.assign(list(offsets))
        await c.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await c.stop()


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """A consumer group's committed offset per partition (empty when it has none)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {tp: meta.offset for tp, meta in (await group_offsets(admin, group)).items()}
    finally:
        await admin.close()


async def group_has_offsets(bootstrap: str, group: str, timeout: float = 60.0) -> bool:
    """Whether a consumer group has committed offsets (waiting, up to ``timeout``, for a
    new broker's group coordinator: group_offsets)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return bool(await group_offsets(admin, group, timeout))
    finally:
        await admin.close()


async def start_at_end(bootstrap: str, groups: Iterable[str],
                       topics: Iterable[str] = INPUT_TOPICS) -> dict[TopicPartition, int]:
    """Commit the end of ``topics`` for each of ``groups`` that has no committed offsets:
    a new engine id (a test, a shadow, a load run) starts from now instead of replaying
    the history of the shared topics, and a group that already read keeps its place.
    Returns the end offsets it read."""
    ends = await end_offsets(bootstrap, list(topics))
    for group in groups:
        if not await group_has_offsets(bootstrap, group):
            await commit_group_offsets(bootstrap, group, ends)
    return ends


async def ensure_topics(bootstrap: str, extra: tuple[tuple[str, int], ...] = (),
                        replication: int = 1, min_insync: int = 1) -> list[str]:
    """Create every catalogue topic (and ``extra`` (name, partitions)) that is missing,
    with ``replication`` replicas of which ``min_insync`` acknowledge a write. The
    production worker calls it before its agents subscribe, and so does the local stack."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        isr = {"min.insync.replicas": str(min_insync)}
        new = [NewTopic(t.name, t.partitions, replication, topic_configs=t.kafka_config() | isr)
               for t in TOPICS if t.name not in existing]
        new += [NewTopic(name, n, replication, topic_configs={"retention.ms": str(7 * 24 * 3600 * 1000)} | isr)
                for name, n in extra if name not in existing]
        if new:
            await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()
