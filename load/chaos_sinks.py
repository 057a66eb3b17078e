"""What the sink faults share: the result line, consumer-group lag, waiting.

A sink fault (``pg`` in load/chaos_pg.py, ``webhook`` in load/chaos_webhook.py) runs the
engine harness of load/chaos.py with business events mixed into the telemetry, so limit
updates keep flowing while the sink is down, and checks the sink against what the engine
published on cs.limits in that run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from load.latency import LagSampler

SINK_FAULTS = ("pg", "webhook")
DEFAULT_OUTAGE_S = {"pg": 30.0, "webhook": 120.0}
# One business event per 50 readings (2%): about 130 limit updates in an 8,000-reading
# run, spread over the whole stream, so some are published while the sink is down.
BUSINESS_EVERY = 50


class ChaosError(RuntimeError):
    """A fault run that could not be carried out (not a failed check)."""


@dataclass
class SinkResult:
    fault: str
    outage_s: float
    events_in: int
    updates_out: int  # distinct (borrower, version) the sink had to receive
    borrowers: int
    lost: int
    duplicates: int  # (borrower, version) a lender would see with two different contents
    order_violations: int
    recover_s: float
    notes: dict[str, Any] = field(default_factory=dict)  # fault-specific figures
    failures: list[str] = field(default_factory=list)  # other checks that did not hold

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.order_violations == 0 and not self.failures

    def line(self) -> str:
        notes = "; ".join(f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in self.notes.items())
        failed = f" [{'; '.join(self.failures)}]" if self.failures else ""
        return (f"chaos {self.fault}: events in {self.events_in:,}, updates out {self.updates_out:,} "
                f"({self.borrowers} borrowers), lost {self.lost}, duplicates {self.duplicates}, "
                f"order violations {self.order_violations}, recovered in {self.recover_s:.1f} s "
                f"({notes}){failed} -> {'PASS' if self.ok else 'FAIL'}")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f} s"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def engine_failures(gaps: int, conflicting: int, mismatches: int) -> list[str]:
    """The engine's own checks (as in the engine faults), named when they fail."""
    out = []
    if gaps:
        out.append(f"engine version gaps {gaps}")
    if conflicting:
        out.append(f"engine conflicting re-publications {conflicting}")
    if mismatches:
        out.append(f"engine final mismatches vs replay {mismatches}")
    return out


async def group_at_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Make a new consumer group start at the current end of ``topics`` (shared topics
    carry other runs' history, which the sink under test must not wade through)."""
    from connectors.kafka_io import commit_group_offsets, end_offsets

    await commit_group_offsets(bootstrap, group, await end_offsets(bootstrap, topics))


class GroupLag(LagSampler):
    """Records one consumer group has not committed yet on ``topics``, from the broker."""

    def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
        super().__init__(bootstrap, group, groups=[group])
        self.topics = tuple(topics)

    async def __aenter__(self) -> GroupLag:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def lag(self) -> int:
        return (await self.sample()).lag


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str,
                alive: Callable[[], None] = lambda: None, every: float = 0.2) -> float:
    """Poll ``check`` until true; return the seconds it took. ``alive`` raises when the
    component waited on has died, so a crash is reported as such rather than a timeout."""
    t0 = time.monotonic()
    while not await check():
        alive()
        if time.monotonic() - t0 > timeout:
            raise ChaosError(f"{what} within {timeout:.0f} s")
        await asyncio.sleep(every)
    return time.monotonic() - t0


def task_alive(task: asyncio.Task[Any]) -> Callable[[], None]:
    """For :func:`until`: raise the task's exception if it ended."""
    def check() -> None:
        if task.done():
            exc = task.exception()
            raise ChaosError(f"{task.get_name()} stopped: {exc!r}") from exc
    return check
