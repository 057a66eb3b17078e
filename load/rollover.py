"""The engine's cost per reading across a day of event time (pure, no broker):
``python -m load.rollover``.

Utilisation (r7, w1, w2) is averaged over complete UTC days, so a machine's first
reading of a new day changes its utilisation summary, and stage 1 signals it; the daily
heartbeat, counted from that signal, comes due at the same time of day. So every
machine signals within one reporting interval after midnight, and stage 2 decides once
per reading for that interval, while the rest of the day about one reading in 500 makes
a signal (2,000 machines: docs/performance.md). This replays the load world's history (the same processors as the
worker, stage 2 fed at once as in ``creditstream replay``) and prints, per 15 minutes of
event time, the readings, the signals, the outputs and the CPU time per reading, as
JSON: ``rollover`` are the windows that open a day, ``steady`` the others.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from load.history import history
from load.world import WorldConfig
from schemas.topics import SIGNALS_TOPIC
from streams.domain.signals import Output
from streams.replay import Replay

WINDOW_S = 900


class _Counted(Replay):
    """A replay that counts the signals stage 1 hands to stage 2 (the replay feeds them
    on at once and yields only what leaves the engine)."""

    signals = 0

    def _run(self, topic: str, key: bytes, raw: bytes) -> Iterator[Output]:
        self.signals += topic == SIGNALS_TOPIC
        return super()._run(topic, key, raw)


def measure(cfg: WorldConfig, days: float) -> dict[str, Any]:
    """Per window of :data:`WINDOW_S` seconds of event time, what the engine did and what
    it cost; the first day (registration, pledges, first readings) is left out."""
    replay = _Counted()
    windows: dict[int, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])  # events, signals, outputs, s
    first = int(cfg.start.timestamp()) + 86400
    for raw in history(cfg, days):
        signals, began = replay.signals, time.perf_counter()
        outs = list(replay.feed(raw))
        spent = time.perf_counter() - began
        t = int(datetime.fromisoformat(orjson.loads(raw)["occurred_at"]).timestamp())
        if t < first:
            continue
        w = windows[t - t % WINDOW_S]
        w[0] += 1
        w[1] += replay.signals - signals
        w[2] += len(outs)
        w[3] += spent
    rows = [{"window": w, "events": int(n), "signals": int(s), "outputs": int(o), "us_per_event": round(1e6 * c / n, 1)}
            for w, (n, s, o, c) in sorted(windows.items()) if n]
    roll = [r for r in rows if r["window"] % 86400 == 0]
    steady = [r for r in rows if r["window"] % 86400 != 0]

    def summary(part: list[dict[str, Any]]) -> dict[str, Any]:
        return {"windows": len(part), "median_us_per_event": statistics.median(r["us_per_event"] for r in part),
                "median_signals": statistics.median(r["signals"] for r in part),
                "median_outputs": statistics.median(r["outputs"] for r in part),
                "median_events": statistics.median(r["events"] for r in part)}

    return {"machines": cfg.machines, "cadence_s": cfg.cadence_s, "days": days,
            "rollover": summary(roll), "steady": summary(steady),
            "rollover_windows": roll}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m load.rollover", description=__doc__.split("\n\n")[0])
    ap.add_argument("--machines", type=int, default=2000)
    ap.add_argument("--contractors", type=int, default=100)
    ap.add_argument("--cadence", type=int, default=900, help="seconds of event time between readings")
    ap.add_argument("--days", type=float, default=4.0)
    a = ap.parse_args(argv)
    cfg = WorldConfig(seed=1, tag="Lro", machines=a.machines, contractors=a.contractors, cadence_s=a.cadence)
    sys.stdout.write(orjson.dumps(measure(cfg, a.days), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
