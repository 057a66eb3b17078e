"""A lane's graceful stop through the real broker: it ends between two batches with every
processed record committed.

Before, a worker's stop cancelled the lanes' run() wherever it was: after a batch's outputs
were published and before its offsets were committed, the partitions' next owner decided
the batch again from inputs it could read in another order, and a borrower's version was
published twice with different content (chaos churn on the three-broker cluster, seeds
2307 and 2311: a leaving worker's last batch).
"""

from __future__ import annotations

import asyncio

import pytest

from connectors.kafka_io import committed_offsets, make_producer, start_at_end
from load.chaos import build_traffic
from schemas.topics import SIGNALS_TOPIC, signals_topic
from streams.fastlane import Lane
from streams.processors import MachineProcessor

pytestmark = pytest.mark.integration


async def machine_lane(bootstrap: str, app_id: str, tmp_path, uid: str, *, seed: int, machines: int,
                       events: int) -> tuple[Lane, dict, list[tuple[str, bytes, bytes]]]:
    """A machines lane of its own engine id (batches of 200), its group's start at the
    current end of its topics, and a load-world stream of the records it reads."""
    lane = Lane(bootstrap, app_id, tmp_path, {SIGNALS_TOPIC: signals_topic(app_id)},
                source=f"creditstream.engine.{app_id}", max_records=200, proc=MachineProcessor())
    start = await start_at_end(bootstrap, [lane.group], topics=lane.topics)
    traffic = build_traffic(uid, seed=seed, machines=machines, events=events)
    return lane, start, [r for r in (*traffic.setup, *traffic.stream) if r[0] in lane.topics]


async def test_a_stopped_lane_has_committed_every_record_it_processed(bootstrap: str, uid: str, tmp_path) -> None:
    lane, start, records = await machine_lane(bootstrap, f"cs-stop-{uid}", tmp_path, uid, seed=11, machines=60,
                                              events=6000)
    run = asyncio.create_task(lane.run())
    producer = make_producer(bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i, (topic, key, value) in enumerate(records):
            await producer.send(topic, value, key=key)
            if i % 200 == 0:
                await asyncio.sleep(0.02)  # a stream, not one burst: batches keep coming
            if lane.processed >= len(records) // 3:
                break
        # Stop while records keep arriving and batches are in flight.
        await producer.flush()
        await asyncio.wait_for(lane.stop(), 60)
    finally:
        await producer.stop()
        if not run.done():
            run.cancel()
    assert run.done() and run.exception() is None
    assert lane.processed > 0
    committed = await committed_offsets(bootstrap, lane.group)
    done = sum(off - start.get(tp, 0) for tp, off in committed.items() if tp in start)
    assert done == lane.processed, f"processed {lane.processed}, committed {done}"
