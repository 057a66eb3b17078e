"""`python -m load.rollover`: the window that opens a day of event time is where every
machine signals (utilisation over complete days, and the heartbeat counted from it)."""

from __future__ import annotations

from load.rollover import measure
from load.world import WorldConfig


def test_every_machine_signals_in_the_window_that_opens_a_day() -> None:
    cfg = WorldConfig(seed=1, tag="Lrt", machines=40, contractors=4, cadence_s=900)
    got = measure(cfg, days=2.1)
    days = got["rollover_windows"]  # 03-03 and 03-04, 00:00: the day boundaries after the first day
    assert len(days) == 2 and all(w["window"] % 86400 == 0 for w in days)
    for w in days:  # (nearly) one signal per machine: utilisation and the heartbeats move together
        assert w["events"] >= 40 and w["signals"] >= 0.9 * 40, w
    assert got["steady"]["windows"] > 100 and got["steady"]["median_signals"] <= 1
