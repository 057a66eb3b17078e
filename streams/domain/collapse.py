"""UTILISATION_COLLAPSE: a machine whose use falls far below its own recent level.

Judged in stage 2, per machine signal, because the measure is the program's season:
r7 is compared with the baseline times the season of the days it covers (season.py),
and only stage 2 knows the borrower's program. Stage 1 (keyed by machine) raised it
from raw hours until policy 2026.12-2, so a declared winter pause read as a collapse.
"""

from __future__ import annotations

from typing import Any

from streams.domain.signals import Output, alert

DAY = 86400.0
COLLAPSE_RATIO = 0.3
COLLAPSE_WINDOW_DAYS = 14


def check(state: dict[str, Any], mid: str, borrower_id: str, ratio: float | None, at: float,
          ids: list[str]) -> list[Output]:
    """UTILISATION_COLLAPSE when the r7 ratio falls below 0.3 x the machine's level (when
    that level was >= 0.5); raised on the transition, again only after r7 has recovered
    above 0.3 x the level. ``state`` is the machine's own: two numbers, not a history.

    The level is the highest ratio seen, held for COLLAPSE_WINDOW_DAYS days (then
    replaced by the current one), not the last value: compared with the last value, a
    machine that stops working declines day by day (7 days of r7 lose 1/7 each), every
    step looked "stable" and the alert never fired (issue 10.4: 9 days at 0 h)."""
    if ratio is None:
        return []
    day = int(at // DAY)
    if state.get("c7") == [day, ratio]:
        return []  # a heartbeat repeats the last check
    state["c7"] = [day, ratio]
    level = state.get("level")  # [ratio, day it was set]
    collapsed = (level is not None and level[0] >= 0.5 and day - level[1] < COLLAPSE_WINDOW_DAYS
                 and ratio < COLLAPSE_RATIO * level[0])
    if level is None or ratio >= level[0] or day - level[1] >= COLLAPSE_WINDOW_DAYS:
        state["level"] = [ratio, day]
    was = state.get("collapsed", False)
    state["collapsed"] = collapsed
    if not collapsed or was:
        return []
    return [alert("UTILISATION_COLLAPSE", "warning",
                  f"Machine {mid} now works {ratio:.0%} of its baseline, down from {level[0]:.0%} "  # type: ignore[index]
                  f"in the last {COLLAPSE_WINDOW_DAYS} days.", at, ids, borrower_id, mid)]
