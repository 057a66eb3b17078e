"""The send schedule of an open-loop load run: fixed before the first event is sent.

A schedule is a list of segments, each a constant rate over a span of the run. Slot ``i``
is due at a time computed from the segments alone, never from how fast the broker or
the engine answered: a slow system cannot slow the load down (no coordinated omission).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

SCENARIOS = ("steady", "burst", "utilisation_drop", "core_default", "offline_region", "commodity_crash")
BURST_FACTOR = 10.0
BURST_S = 60.0


@dataclass(frozen=True)
class Segment:
    start_s: float
    duration_s: float
    rate: float  # events per second

    @property
    def count(self) -> int:
        return int(round(self.duration_s * self.rate))


@dataclass(frozen=True)
class Schedule:
    segments: tuple[Segment, ...]

    @classmethod
    def steady(cls, rate: float, duration_s: float) -> Schedule:
        return cls((Segment(0.0, duration_s, rate),))

    @classmethod
    def burst(cls, rate: float, duration_s: float, factor: float = BURST_FACTOR,
              burst_s: float = BURST_S) -> Schedule:
        """``rate``, then ``factor`` x ``rate`` for ``burst_s`` from a third of the run, then
        ``rate`` again. A run shorter than three bursts gets a burst of a third of it."""
        length = min(burst_s, duration_s / 3)
        at = duration_s / 3
        return cls((Segment(0.0, at, rate), Segment(at, length, rate * factor),
                    Segment(at + length, duration_s - at - length, rate)))

    def scaled(self, share: float) -> Schedule:
        """The same shape at ``share`` of the rate (a stream that is part of the load)."""
        return Schedule(tuple(Segment(s.start_s, s.duration_s, s.rate * share) for s in self.segments))

    @property
    def total(self) -> int:
        return sum(s.count for s in self.segments)

    @property
    def duration_s(self) -> float:
        last = self.segments[-1]
        return last.start_s + last.duration_s

    def rate_at(self, t: float) -> float:
        for s in self.segments:
            if s.start_s <= t < s.start_s + s.duration_s:
                return s.rate
        return 0.0

    def due(self, i: int) -> float:
        """Seconds from the start of the run at which slot ``i`` is to be sent."""
        base = 0
        for s in self.segments:
            if i < base + s.count:
                return s.start_s + (i - base) / s.rate
            base += s.count
        raise IndexError(f"slot {i} is beyond the schedule's {self.total} slots")

    def times(self) -> Iterator[float]:
        for s in self.segments:
            for k in range(s.count):
                yield s.start_s + k / s.rate


def for_scenario(scenario: str, rate: float, duration_s: float, burst_s: float = BURST_S) -> Schedule:
    if scenario == "burst":
        return Schedule.burst(rate, duration_s, burst_s=burst_s)
    return Schedule.steady(rate, duration_s)
