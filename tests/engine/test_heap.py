"""The worker sets the collector for a heap of cached states (streams/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams import heap


@pytest.fixture
def restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_the_collector_runs_far_less_often_and_skips_what_start_up_built(restored: None) -> None:
    kept = [{"state": i} for i in range(1000)]
    heap.tune_collector()
    assert gc.get_threshold() == heap.THRESHOLDS and heap.THRESHOLDS[0] >= 50 * 700
    assert gc.get_freeze_count() >= len(kept)  # frozen: never walked again
