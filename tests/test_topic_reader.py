"""TopicReader through the real broker: what the load tools and the chaos harness read with."""

from __future__ import annotations

import asyncio

import pytest

from connectors.kafka_io import TopicReader, ensure_topics, make_producer

pytestmark = pytest.mark.integration


async def test_read_to_end_returns_every_record_written_before_the_call(bootstrap: str, uid: str) -> None:
    # The chaos harness read the limits topic for a fixed 3 s after the engine caught up;
    # on a loaded machine (three workers rolling) it missed hundreds of updates and
    # reported them "lost". Reading to the end offsets of the call cannot miss one.
    topic = f"test-reader-{uid}"
    await ensure_topics(bootstrap, extra=((topic, 4),))
    producer = make_producer(bootstrap, linger_ms=20)
    await producer.start()
    try:
        async with TopicReader(bootstrap, topic) as reader:
            sends = [await producer.send(topic, b"x" * 200, key=str(i % 97).encode()) for i in range(30000)]
            await asyncio.gather(*sends)
            got = await reader.read_to_end(timeout=60)
    finally:
        await producer.stop()
    assert len(got) == 30000
    assert len({(r.partition, r.offset) for r in got}) == 30000


async def test_records_to_end_streams_a_topic_from_its_beginning(bootstrap: str, uid: str) -> None:
    """What `policy diff` over the topics and the shadow view read with: every record
    written before the call, one at a time, in order within each partition."""
    topic = f"test-reader-begin-{uid}"
    await ensure_topics(bootstrap, extra=((topic, 2),))
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for i in range(50):
            await producer.send_and_wait(topic, str(i).encode(), key=str(i % 5).encode())
    finally:
        await producer.stop()
    async with TopicReader(bootstrap, topic, from_beginning=True) as reader:
        got = [r async for r in reader.records_to_end(timeout=30)]
    assert sorted(int(r.value) for r in got) == list(range(50))
    for p in {r.partition for r in got}:
        values = [int(r.value) for r in got if r.partition == p]
        assert values == sorted(values)
