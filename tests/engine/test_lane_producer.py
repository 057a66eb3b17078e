"""A lane whose producer the broker refuses for good gets a new one, through the real broker.

Chaos run 3314 (one broker stopped for 10 s): after the restart, the dealers lane's
idempotent producer was answered OutOfOrderSequenceNumber for every batch. That error is
fatal to the producer (the broker will not take its next sequence number on that
partition, ever), and the lane re-read the batch and sent it again with the same
producer, forever: the engine never caught up.

The test puts a running lane's producer in that state the way the restart did, by moving
its sequence numbers past the ones the broker expects, and the real broker answers with
the real error. The lane must then publish every output and commit every input.
"""

from __future__ import annotations

import asyncio

import pytest

from connectors.kafka_io import committed_offsets, make_producer
from tests.engine.test_lane_stop import machine_lane

pytestmark = pytest.mark.integration


async def _wait_until(check, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.2)


async def test_a_lane_replaces_a_producer_the_broker_refuses(bootstrap: str, uid: str, tmp_path) -> None:
    lane, start, records = await machine_lane(bootstrap, f"cs-oos-{uid}", tmp_path, uid, seed=13, machines=40,
                                              events=4000)
    half = len(records) // 2
    run = asyncio.create_task(lane.run())
    producer = make_producer(bootstrap, linger_ms=5)
    await producer.start()

    async def committed_all(n: int) -> bool:
        committed = await committed_offsets(bootstrap, lane.group)
        return sum(off - start.get(tp, 0) for tp, off in committed.items() if tp in start) >= n

    try:
        for topic, key, value in records[:half]:
            await producer.send(topic, value, key=key)
        await producer.flush()
        await _wait_until(lambda: committed_all(half), 60, "the first half was not committed")
        first = lane.producer
        assert first is not None
        # What the broker restart left behind: the producer's next sequence numbers are
        # ahead of what the broker has, on every partition it wrote to.
        sequences = first._txn_manager._sequence_numbers  # noqa: SLF001 - the fault itself
        assert sequences, "the lane's producer wrote nothing"
        for tp in list(sequences):
            sequences[tp] += 1000
        for topic, key, value in records[half:]:
            await producer.send(topic, value, key=key)
        await producer.flush()
        await _wait_until(lambda: committed_all(len(records)), 60,
                          "the lane did not commit the second half after its producer was refused")
        assert lane.producer is not first, "the refused producer is still in use"
        assert not run.done()
        await asyncio.wait_for(lane.stop(), 60)
    finally:
        await producer.stop()
        if not run.done():
            run.cancel()
    assert run.exception() is None
