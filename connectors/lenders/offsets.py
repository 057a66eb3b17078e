"""Which offset a consumer may commit while work from its records is still in flight."""

from __future__ import annotations

from collections import defaultdict

TP = tuple[str, int]


class OffsetTracker:
    """Per partition: records whose work is unfinished, and the highest offset seen.

    The committable offset is the lowest unfinished offset (or one past the highest seen
    when all are finished), so a restart re-reads everything not yet finished and
    nothing after a gap is lost.
    """

    def __init__(self) -> None:
        self._open: dict[TP, dict[int, int]] = defaultdict(dict)
        self._next: dict[TP, int] = {}

    def add(self, tp: TP, offset: int, jobs: int) -> None:
        """A record with ``jobs`` pieces of work (0: finished at once)."""
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)
        if jobs > 0:
            self._open[tp][offset] = jobs

    def done(self, tp: TP, offset: int) -> None:
        left = self._open[tp].get(offset, 0) - 1
        if left > 0:
            self._open[tp][offset] = left
        else:
            self._open[tp].pop(offset, None)

    def committable(self) -> dict[TP, int]:
        out = {}
        for tp, nxt in self._next.items():
            still = self._open.get(tp)
            out[tp] = min(still) if still else nxt
        return out

    def forget(self, tps: list[TP]) -> None:
        """Partitions this consumer lost: their work is re-read by the new owner."""
        for tp in tps:
            self._open.pop(tp, None)
            self._next.pop(tp, None)

    @property
    def pending(self) -> int:
        return sum(sum(v.values()) for v in self._open.values())
