"""Seasonality: what share of its usual work a machine is expected to do in a season.

Agricultural and construction borrowers work in cycles: a contractor idle in the winter
months is not in decline. A program may declare a seasonal profile (one factor per
calendar month, 1.0 = the pledge's baseline hours); utilisation is then judged against
the same season's expectation, not against a flat baseline. Pure: the windows are
derived from the machine's own last reading (event time), never from a clock.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

DAY = 86400.0
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

Profile = tuple[float, ...]  # 12 factors, January first; empty = no seasonality


def month_of(day: int) -> int:
    """The calendar month (1-12) of an epoch day number (``ts // 86400``)."""
    return date.fromordinal(_EPOCH_ORDINAL + day).month


@lru_cache(maxsize=1 << 12)
def expected_share(profile: Profile, first: int, last: int) -> float:
    """Mean of the profile over the epoch days ``first..last`` (inclusive): a window that
    spans two months expects a mix of both (7 days, 3 of them in December at 0.25 and 4
    in November at 1.0, expect (3 x 0.25 + 4 x 1.0) / 7 of the baseline)."""
    if not profile or last < first:
        return 1.0
    return sum(profile[month_of(d) - 1] for d in range(first, last + 1)) / (last - first + 1)


def window_shares(profile: Profile, last_seen: float, first_day: int | None = None) -> tuple[float, float, float]:
    """The expected shares of the three utilisation windows (r7, w1, w2) of a machine
    whose last reading is at ``last_seen``: the same windows stage 1 averages over
    (machines.utilisation). r7 starts after ``first_day``, the machine's first (partial)
    day of observation, as in stage 1: a young machine's r7 covers fewer than 7 days and
    is judged against their season only (signals from before 2026.12-2 lack it: 7 days)."""
    if not profile:
        return 1.0, 1.0, 1.0
    today = int(last_seen // DAY)
    week = today // 7
    r7_start = today - 7 if first_day is None else max(today - 7, first_day + 1)
    return (expected_share(profile, r7_start, today - 1),
            expected_share(profile, (week - 1) * 7, week * 7 - 1),
            expected_share(profile, (week - 2) * 7, (week - 1) * 7 - 1))
