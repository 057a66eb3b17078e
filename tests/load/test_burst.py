"""The burst figure from a run's timeline (pure)."""

from __future__ import annotations

from load.burst import recovery

SEGMENTS = [{"start_s": 0.0, "duration_s": 10.0, "rate": 100.0},
            {"start_s": 10.0, "duration_s": 5.0, "rate": 1000.0},
            {"start_s": 15.0, "duration_s": 20.0, "rate": 100.0}]


def _timeline(lags: list[int]) -> list[dict]:
    return [{"t": float(t), "lag": lag} for t, lag in enumerate(lags)]


def test_drained_counts_from_the_end_of_the_burst_to_the_pre_burst_level() -> None:
    lags = [20] * 10 + [900, 1800, 2700, 3600, 4500] + [3000, 1500, 400, 150, 90, 50] + [30] * 14
    b = recovery(_timeline(lags), SEGMENTS, 100.0)
    assert b is not None
    # Level: the highest lag before the burst (20) plus one second of steady traffic (100).
    assert b["level"] == 120 and b["lag_peak"] == 4500 and b["factor"] == 10
    assert b["drained_after_s"] == 4.0 and b["ok"]  # t=19 (lag 90) is 4 s after t=15


def test_a_burst_never_absorbed_has_no_drain_time_and_fails() -> None:
    lags = [20] * 10 + [1000 * i for i in range(1, 26)]
    b = recovery(_timeline(lags), SEGMENTS, 100.0)
    assert b is not None and b["drained_after_s"] is None and not b["ok"]


def test_a_steady_schedule_has_no_burst() -> None:
    assert recovery(_timeline([0] * 5), [{"start_s": 0.0, "duration_s": 5.0, "rate": 100.0}], 100.0) is None
