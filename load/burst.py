"""How fast the engine absorbed a burst: lag back to its pre-burst level after it ended.

Pure: it reads a load run's timeline (one row per second, ``t`` counted from slot 0, the
sampled consumer lag ``lag``) and the schedule's segments, and does no I/O.
"""

from __future__ import annotations

from typing import Any

# The target of issue 5: a 10x burst over 60 s, lag drained within 60 s after it ends.
DRAIN_LIMIT_S = 60.0


def recovery(timeline: list[dict[str, Any]], segments: list[dict[str, Any]], rate: float) -> dict[str, Any] | None:
    """The burst's figures, or None when the schedule has no burst (three segments, the
    middle one faster). ``drained_after_s`` is the seconds from the burst's end until
    the lag is back to its highest level before the burst, plus one second of steady
    traffic (the lag is sampled once a second, so a steady engine shows up to that
    much); None when it never got back there during the run."""
    if len(segments) != 3 or segments[1]["rate"] <= segments[0]["rate"]:
        return None
    start = segments[1]["start_s"]
    end = start + segments[1]["duration_s"]
    lags = [(r["t"], r["lag"]) for r in timeline if r.get("lag") is not None]
    before = max((lag for t, lag in lags if t < start), default=0)
    level = before + rate
    during = [lag for t, lag in lags if start <= t <= end]
    after = [(t, lag) for t, lag in lags if t >= end]
    back = next((t for t, lag in after if lag <= level), None)
    drained = None if back is None else round(max(0.0, back - end), 1)
    return {"start_s": start, "end_s": end, "factor": round(segments[1]["rate"] / segments[0]["rate"], 1),
            "lag_before_max": before,
            "lag_peak": max(during + [lag for _t, lag in after], default=0),
            "level": level, "drained_after_s": drained,
            "ok": drained is not None and drained <= DRAIN_LIMIT_S}
