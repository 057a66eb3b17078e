"""Co-partitioned inputs read in timestamp order (streams/fastlane.py Lane._aligned).

A worker that falls behind fetches whole runs of one topic: a reading processed before
the pledge produced ahead of it was dead-lettered `unpledged_machine` (issue 13), and a
ledger event before the program's signal `unknown_borrower`. The lane merges partition
n's records of its topics by timestamp, and holds them while a co-partitioned input may
still hold earlier records.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from aiokafka import TopicPartition

from streams.fastlane import MAX_HOLD_S, Lane


@dataclass
class Rec:
    topic: str
    offset: int
    timestamp: int


class Fetched:
    """What a lane needs to know of its consumer here: highwaters and positions."""

    def __init__(self, highwater: dict[TopicPartition, int | None], position: dict[TopicPartition, int]) -> None:
        self._highwater, self._position = highwater, position

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._highwater.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self._position[tp]

    def paused(self) -> set[TopicPartition]:
        return set()


TEL, PLG = TopicPartition("cs.telemetry", 0), TopicPartition("cs.pledges", 0)


def lane(tmp_path: Path, consumer: Fetched) -> Lane:
    lane = Lane("127.0.0.1:1", "t", tmp_path, {})
    lane.consumer = consumer  # type: ignore[assignment]
    lane.assigned = {TEL, PLG}
    return lane


def order(runs: list[tuple[TopicPartition, list[Rec]]]) -> list[tuple[str, int]]:
    return [(r.topic, r.offset) for _tp, recs in runs for r in recs]


def test_a_pledge_fetched_after_the_readings_is_processed_before_the_later_ones(tmp_path: Path) -> None:
    ln = lane(tmp_path, Fetched({TEL: 3, PLG: 1}, {TEL: 3, PLG: 1}))
    ln.buffers[TEL] = deque([Rec("tel", 0, 100), Rec("tel", 1, 300), Rec("tel", 2, 400)])
    ln.buffers[PLG] = deque([Rec("plg", 0, 200)])
    runs = asyncio.run(ln._aligned())
    assert order(runs) == [("tel", 0), ("plg", 0), ("tel", 1), ("tel", 2)]


def test_readings_wait_while_the_pledges_partition_has_records_not_yet_fetched(tmp_path: Path) -> None:
    # Pledges: highwater 5, position 2: three pledges not fetched yet, maybe earlier ones.
    ln = lane(tmp_path, Fetched({TEL: 2, PLG: 5}, {TEL: 2, PLG: 2}))
    ln.buffers[TEL] = deque([Rec("tel", 0, 100), Rec("tel", 1, 300)])
    assert asyncio.run(ln._aligned()) == []
    assert len(ln.buffers[TEL]) == 2  # held, not dropped


def test_readings_wait_for_pledges_as_long_as_a_loaded_worker_takes_to_fetch_them(tmp_path: Path) -> None:
    # A worker on a loaded 2-core box took 2.5-4.2 s to fetch the pledges; with a 2 s hold
    # the readings went on without them and 374 of 200,000 were dead-lettered
    # `unpledged_machine` (load bench, 2026-12-01).
    ln = lane(tmp_path, Fetched({TEL: 2, PLG: 5}, {TEL: 2, PLG: 2}))
    ln.buffers[TEL] = deque([Rec("tel", 0, 100), Rec("tel", 1, 300)])
    assert asyncio.run(ln._aligned()) == []
    ln.held_since[0] -= 5  # five seconds later, the pledges still not fetched
    assert asyncio.run(ln._aligned()) == []
    assert len(ln.buffers[TEL]) == 2


def test_nothing_is_held_for_an_input_with_no_fetch_answered_beyond_the_bound(tmp_path: Path) -> None:
    ln = lane(tmp_path, Fetched({TEL: 2}, {TEL: 2}))  # pledges: no fetch answered yet
    ln.buffers[TEL] = deque([Rec("tel", 0, 100), Rec("tel", 1, 300)])
    assert asyncio.run(ln._aligned()) == []
    ln.held_since[0] -= MAX_HOLD_S + 1  # an input that cannot be fetched at all
    assert order(asyncio.run(ln._aligned())) == [("tel", 0), ("tel", 1)]


def test_an_input_caught_up_does_not_hold_the_other(tmp_path: Path) -> None:
    ln = lane(tmp_path, Fetched({TEL: 2, PLG: 4}, {TEL: 2, PLG: 4}))
    ln.buffers[TEL] = deque([Rec("tel", 0, 100), Rec("tel", 1, 300)])
    assert order(asyncio.run(ln._aligned())) == [("tel", 0), ("tel", 1)]


def test_a_merge_stops_where_a_lagging_input_runs_dry(tmp_path: Path) -> None:
    # Pledges: one fetched (t=200), one more on the broker: readings after t=200 wait.
    ln = lane(tmp_path, Fetched({TEL: 3, PLG: 2}, {TEL: 3, PLG: 1}))
    ln.buffers[TEL] = deque([Rec("tel", 0, 100), Rec("tel", 1, 300), Rec("tel", 2, 400)])
    ln.buffers[PLG] = deque([Rec("plg", 0, 200)])
    assert order(asyncio.run(ln._aligned())) == [("tel", 0), ("plg", 0)]
    assert [r.offset for r in ln.buffers[TEL]] == [1, 2]


def test_revoked_partitions_leave_nothing_behind(tmp_path: Path) -> None:
    ln = lane(tmp_path, Fetched({}, {}))
    ln.buffers[TEL] = deque([Rec("tel", 0, 100)])
    ln._store_for_restore(0)
    ln._close([TEL, PLG])
    assert ln.buffers == {} and ln.stores == {} and ln.assigned == set()
