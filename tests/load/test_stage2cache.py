"""load/stage2cache.py: stage 2 on a real partition store gives the same outputs whatever
the size of its cache of decoded states (the figure it prints is only the time)."""

from __future__ import annotations

from load.stage2cache import run_stage2, stage2_inputs


def test_the_cache_changes_the_time_not_the_outputs() -> None:
    inputs = stage2_inputs(contractors=4, days=2)
    assert sum(topic.startswith("cs.signals") for topic, _k, _v in inputs) >= 4 * 50 * 2  # pledges and readings
    none, small, ample = (run_stage2(inputs, cache) for cache in (0, 40_000, 64 * 2**20))
    assert none["limit_updates"] > 0
    assert none["outputs_sha256"] == small["outputs_sha256"] == ample["outputs_sha256"]
    assert none["cached_mb"] == 0 and ample["cached_mb"] > small["cached_mb"]
