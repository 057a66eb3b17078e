"""A lane with an outbox records its outputs with its states before it publishes them, and
the owner after a crash publishes what was recorded instead of deciding again: through
the real broker.

Chaos kill-each on the three-broker cluster with three workers, seed 8209: a worker was
SIGKILLed after it had published version 9 of a borrower (decided from a drawdown) and
before its states were written; the next owner decided the batch again, and this time
the signal of an earlier warehouse receipt, made by stage 1 meanwhile, came first:
version 9 once "limit 638,000" and once "limit 2,439,000". Stage 2 decides from inputs
produced independently (signals and the ledger), so the order it sees them in live is
not the order of a re-read.

The processor here makes the difference plain: each decision names the lane that made
it, as if every re-read came in another order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from connectors.kafka_io import TopicReader, make_producer
from schemas.topics import BY_NAME, LIMITS_TOPIC, SIGNALS_TOPIC, signals_topic
from streams.domain.signals import Output
from streams.fastlane import Lane
from streams.processors import Processor

pytestmark = pytest.mark.integration

KEYS = [f"b{i}" for i in range(6)]


class Tagged(Processor):
    """Version per key; each decision carries the deciding lane's tag."""

    name = "tagged"
    topics = (SIGNALS_TOPIC,)
    outbox = True

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def process(self, store: Any, topic: str, key: bytes | None, value: bytes,
                partition: int | None = None, offset: int | None = None, decoded: Any = None) -> list[Output]:
        assert key is not None
        k, event_id = key.decode(), value.decode()
        state = store.get(k) or {"version": 0, "seen": []}
        if event_id in state["seen"]:
            return []  # a re-read input: decided before
        state = {"version": state["version"] + 1, "seen": [*state["seen"], event_id]}
        store[k] = state
        return [Output(LIMITS_TOPIC, k, {"key": k, "version": state["version"], "decided_by": self.tag})]


class Crash(asyncio.CancelledError):
    """Ends a lane's run where it is, as a SIGKILL would: nothing after it happens."""


async def _topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, BY_NAME[SIGNALS_TOPIC].partitions, 1) for n in names])
    finally:
        await admin.close()


def _lane(bootstrap: str, app_id: str, data: Path, tag: str, out_topic: str) -> Lane:
    return Lane(bootstrap, app_id, data, {SIGNALS_TOPIC: signals_topic(app_id), LIMITS_TOPIC: out_topic},
                max_records=100, proc=Tagged(tag))


async def _run_until_crash(lane: Lane) -> None:
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(lane.run(), 60)


async def _decisions(bootstrap: str, out_topic: str, lane: Lane) -> dict[tuple[str, int], set[str]]:
    """Run ``lane`` (the next owner) until it published a version for every key."""
    reader = await TopicReader(bootstrap, out_topic, from_beginning=True).open()
    run = asyncio.create_task(lane.run())
    seen: dict[tuple[str, int], set[str]] = {}
    try:
        def complete(records: list[Any]) -> bool:
            for r in records:
                v = orjson.loads(r.value)
                seen.setdefault((v["key"], v["version"]), set()).add(v["decided_by"])
            return {k for k, _v in seen} == set(KEYS)

        await reader.read(complete, timeout=60)
        await asyncio.sleep(1.0)  # anything published twice arrives too
        complete(await reader.read(lambda _r: False, timeout=1.0))
    finally:
        await reader.close()
        await asyncio.wait_for(lane.stop(), 30)
        run.cancel()
    return seen


async def _produce(bootstrap: str, topic: str) -> None:
    producer = make_producer(bootstrap, linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, f"e-{k}".encode(), key=k.encode()) for k in KEYS])
    finally:
        await producer.stop()


async def test_a_crash_while_the_states_are_written_publishes_nothing_decided_twice(
        bootstrap: str, uid: str, tmp_path: Path) -> None:
    app_id, out_topic = f"cs-outbox-a-{uid}", signals_topic(f"cs-outbox-a-{uid}-out")
    await _topics(bootstrap, [signals_topic(app_id), out_topic])
    first = _lane(bootstrap, app_id, tmp_path / "w1", "first", out_topic)

    async def crash(touched: set[int]) -> Any:
        raise Crash()

    first._write_changelog = crash  # type: ignore[method-assign]
    await _produce(bootstrap, signals_topic(app_id))
    await _run_until_crash(first)
    seen = await _decisions(bootstrap, out_topic, _lane(bootstrap, app_id, tmp_path / "w2", "next", out_topic))
    twice = {k: tags for k, tags in seen.items() if len(tags) > 1}
    assert not twice, f"versions published with two different contents: {twice}"
    assert all(tags == {"next"} for tags in seen.values()), seen


async def test_a_crash_before_the_outputs_are_sent_publishes_the_recorded_ones(
        bootstrap: str, uid: str, tmp_path: Path) -> None:
    app_id, out_topic = f"cs-outbox-b-{uid}", signals_topic(f"cs-outbox-b-{uid}-out")
    await _topics(bootstrap, [signals_topic(app_id), out_topic])
    first = _lane(bootstrap, app_id, tmp_path / "w1", "first", out_topic)
    written = first._write_changelog

    async def then_crash(touched: set[int]) -> Any:
        # The states and the outputs recorded with them are in the changelog; the lane
        # dies before the first output is sent.
        done = await written(touched)
        for p, (items, next_offset) in done.items():
            first.stores[p].commit(items, next_offset)
        raise Crash()

    first._write_changelog = then_crash  # type: ignore[method-assign]
    await _produce(bootstrap, signals_topic(app_id))
    await _run_until_crash(first)
    seen = await _decisions(bootstrap, out_topic, _lane(bootstrap, app_id, tmp_path / "w2", "next", out_topic))
    assert set(seen) == {(k, 1) for k in KEYS}
    assert all(tags == {"first"} for tags in seen.values()), f"decided again instead of sent: {seen}"


class Bulky(Tagged):
    """Tagged, with decisions the size of a large fleet's (200 KB each)."""

    def process(self, store: Any, topic: str, key: bytes | None, value: bytes,
                partition: int | None = None, offset: int | None = None, decoded: Any = None) -> list[Output]:
        outs = super().process(store, topic, key, value, partition, offset, decoded)
        return [Output(o.topic, o.key, {**o.value, "components": "c" * 200_000}) for o in outs]


async def test_a_batch_whose_outputs_outgrow_a_broker_message_is_published(
        bootstrap: str, uid: str, tmp_path: Path) -> None:
    """60 decisions of 200 KB in one partition's batch: 12 MB of outbox, three times the
    broker's message.max.bytes. Kept as one changelog record it was refused every time
    and the lane re-read the batch forever (load bench, 3 workers, 10,000 machines)."""
    app_id, out_topic = f"cs-outbox-c-{uid}", signals_topic(f"cs-outbox-c-{uid}-out")
    await _topics(bootstrap, [signals_topic(app_id), out_topic])
    producer = make_producer(bootstrap, linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(signals_topic(app_id), f"e-{i}".encode(), key=b"big")
                               for i in range(60)])
    finally:
        await producer.stop()
    lane = Lane(bootstrap, app_id, tmp_path / "w", {SIGNALS_TOPIC: signals_topic(app_id), LIMITS_TOPIC: out_topic},
                max_records=100, proc=Bulky("only"))
    reader = await TopicReader(bootstrap, out_topic, from_beginning=True).open()
    run = asyncio.create_task(lane.run())
    versions: set[int] = set()
    try:
        def complete(records: list[Any]) -> bool:
            versions.update(orjson.loads(r.value)["version"] for r in records)
            return len(versions) == 60

        await reader.read(complete, timeout=60)
    finally:
        await reader.close()
        await asyncio.wait_for(lane.stop(), 30)
        run.cancel()
    assert versions == set(range(1, 61))
