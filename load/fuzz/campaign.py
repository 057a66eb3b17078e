"""Run the targets in-process under hypothesis and tally what each decoder did.

Hypothesis generates the inputs; the check of each input never raises into hypothesis
(a failure is recorded and the campaign goes on), so one run reports every failure and
exact counts: inputs tried, accepted, refused by reason, failures.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from load.fuzz.targets import Target, all_targets

MAX_FAILURES_KEPT = 20


@dataclass
class Failure:
    target: str
    error: str
    sample: str
    where: str


@dataclass
class Tally:
    """What one decoder did with its inputs (records, for the multi-record targets)."""

    name: str
    examples: int = 0
    tried: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    failed: int = 0
    seconds: float = 0.0
    slowest: tuple[float, str] = (0.0, "")

    def to_json(self) -> dict[str, Any]:
        return {"decoder": self.name, "examples": self.examples, "tried": self.tried, "accepted": self.accepted,
                "refused": sum(self.refused.values()), "refused_by_reason": dict(self.refused.most_common()),
                "failures": self.failed, "seconds": round(self.seconds, 2),
                "slowest_input": {"seconds": round(self.slowest[0], 3), "sample": self.slowest[1]},
                "failure_samples": [f.__dict__ for f in self.failures]}


def sample_of(value: Any, limit: int = 300) -> str:
    """A short printable sample of an input, for failure reports."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def run_target(target: Target, examples: int, seed: int | None = None) -> Tally:
    """Generate ``examples`` inputs for ``target`` and check each one."""
    tally = Tally(target.name)
    target.reset()

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(target.inputs)
    def one(value: Any) -> None:
        tally.examples += 1
        t0 = time.perf_counter()
        try:
            verdicts = target.check(value)
        except Exception as exc:  # noqa: BLE001 - every escape is a finding, recorded
            tally.tried += 1
            tally.failed += 1
            if len(tally.failures) < MAX_FAILURES_KEPT:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                tally.failures.append(Failure(target.name, f"{type(exc).__name__}: {exc}"[:500],
                                              sample_of(value), f"{where.filename}:{where.lineno}"))
            return
        spent = time.perf_counter() - t0
        if spent > tally.slowest[0]:
            tally.slowest = (spent, sample_of(value, 200))
        for v in verdicts:
            tally.tried += 1
            if v.accepted:
                tally.accepted += 1
            else:
                tally.refused[v.reason] += 1

    if seed is not None:
        one = hypothesis_seed(seed)(one)
    started = time.perf_counter()
    one()
    tally.seconds = time.perf_counter() - started
    return tally


def run(examples: int, seed: int | None = None, only: list[str] | None = None,
        progress: Any = None) -> list[Tally]:
    """Every target (or those named in ``only``), ``examples`` inputs each."""
    tallies = []
    for target in all_targets():
        if only and target.name not in only:
            continue
        tally = run_target(target, examples, seed)
        if progress:
            progress(tally)
        tallies.append(tally)
    return tallies


def _reasons(counter: Counter[str], width: int = 70) -> str:
    text = ", ".join(f"{r} {n}" for r, n in counter.most_common())
    return text if len(text) <= width else text[: width - 3] + "..."


def table(tallies: list[Tally]) -> str:
    """The campaign as a fixed-width table, with a total line."""
    head = f"{'decoder':<16} {'tried':>7} {'accepted':>8} {'refused':>7} {'failures':>8} {'s':>6}  refused by reason"
    lines = [head, "-" * len(head)]
    for t in tallies:
        lines.append(f"{t.name:<16} {t.tried:>7} {t.accepted:>8} {sum(t.refused.values()):>7} {t.failed:>8} "
                     f"{t.seconds:>6.1f}  {_reasons(t.refused)}")
    total = Tally("total", tried=sum(t.tried for t in tallies), accepted=sum(t.accepted for t in tallies),
                  failed=sum(t.failed for t in tallies), seconds=sum(t.seconds for t in tallies))
    refused = sum(sum(t.refused.values()) for t in tallies)
    lines += ["-" * len(head), f"{'total':<16} {total.tried:>7} {total.accepted:>8} {refused:>7} "
              f"{total.failed:>8} {total.seconds:>6.1f}"]
    return "\n".join(lines)


def failures_report(tallies: list[Tally]) -> str:
    out = []
    for t in tallies:
        for f in t.failures:
            out.append(f"FAIL {f.target}: {f.error}\n     at {f.where}\n     input {f.sample}")
    return "\n".join(out)
