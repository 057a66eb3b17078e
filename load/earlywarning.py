"""How early, and how right, the early warning is: many seeded worlds through the replay.

Each world is a small simulated supply chain (load/world.py) run for ``days`` of event
time through the engine's own processors (streams/replay.py, the code a worker runs),
under one distress scenario:

- ``gradual_decline``: a third of the tier-1 suppliers and contractors fade over 3-5
  weeks (fewer orders, late deliveries, more disputes, machines working less) and then
  default (a loan overdue: the facility freezes); one supplier and one contractor dip
  for 2-3 weeks and recover (they must not be warned);
- ``core_default``: a core enterprise is declared distressed and its dealers' loans go
  overdue the same day (the simulator's existing sudden default);
- ``utilisation_drop``: every machine falls to 10% of its hours at once (the existing
  sudden shock; distress = the machine's UTILISATION_COLLAPSE).

Ground truth is what the engine published: a borrower's distress time is its first
``frozen`` limit update (or, in ``utilisation_drop``, its first UTILISATION_COLLAPSE).
A borrower is warned when an EARLY_WARNING alert was raised for it before that time
(any time, for one with no distress). Lead time = distress - first warning, in days.

The scorecard's parameters were set on the tuning seeds 1-20 (``--seed 1``); the
figures of docs/credit-policy.md section 12.5 are on the held-out seeds 101 and up (the
default), which were not looked at while setting them. ``--misses`` lists every missed
distress and false alarm with the borrower's kind and its highest score in the 28 days
before (which indicators earned what): where to look when the figures move.

    python -m load.earlywarning                       # held out: 20 + 10 + 10 worlds
    python -m load.earlywarning --seed 1 --misses     # tuning seeds, with the misses
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from load.world import (
    DAY,
    BusinessSim,
    Plan,
    TelemetrySim,
    World,
    WorldConfig,
    decline_plan,
    to_record,
)
from schemas.topics import ALERTS_TOPIC, LIMITS_TOPIC
from streams.domain.early_warning import MIN_COVERAGE
from streams.replay import Replay

SCENARIOS = ("gradual_decline", "core_default", "utilisation_drop")
SUDDEN = ("core_default", "utilisation_drop")  # no precursor in the data: fewer worlds say enough
WINDOW_DAYS = 28  # a warning further ahead than twice the horizon predicted nothing


@dataclass
class WorldResult:
    scenario: str
    seed: int
    borrowers: int
    distress: dict[str, float] = field(default_factory=dict)   # borrower -> event time
    warned: dict[str, list[float]] = field(default_factory=dict)  # borrower -> its warnings
    texts: dict[str, str] = field(default_factory=dict)        # borrower -> its first warning's text
    scored: set[str] = field(default_factory=set)              # borrowers with enough data to score
    start: float = 0.0                                          # the world's first instant (event time)

    kinds: dict[str, str] = field(default_factory=dict)        # borrower -> supplier, contractor/<machine>, ...
    # borrower -> its scores (event time, score, the lines that earned points) while > 0
    scores: dict[str, list[tuple[float, int, str]]] = field(default_factory=dict)
    # utilisation_drop: borrowers without ground truth (left out), and those of them warned
    untold: set[str] = field(default_factory=set)
    untold_warned: set[str] = field(default_factory=set)

    def day(self, at: float) -> float:
        """Days since the world's start."""
        return (at - self.start) / DAY


def config(seed: int) -> WorldConfig:
    return WorldConfig(seed=seed, tag=f"ew{seed}", cores=2, tier1_per_core=3, tier2_per_tier1=1,
                       dealers_per_core=2, contractors=8, machines=8, cadence_s=14400, plan_months=4)


def events(world: World, plan: Plan, days: int, business_per_day: int, shock_day: int) -> Iterator[bytes]:
    """Setup, then telemetry at the world's cadence with business events spread over the
    same time and the scenario's distress events, in event-time order."""
    cfg = world.cfg
    for _, _, value in world.setup_records():
        yield value
    sim, biz = TelemetrySim(world, plan), BusinessSim(world, plan)
    every = DAY / business_per_day
    next_biz, shocked = 0.0, False
    for slot, recs in sim.slots(int(days * DAY // cfg.cadence_s) * cfg.machines):
        for _, _, value in recs:
            yield value
        clock = (slot // cfg.machines) * cfg.cadence_s
        while next_biz < clock:
            at = cfg.start + timedelta(seconds=next_biz)
            yield to_record(biz.next(at))[2]
            for e in biz.decline_defaults(at):
                yield to_record(e)[2]
            if plan.scenario == "core_default" and not shocked and next_biz >= shock_day * DAY:
                shocked = True
                for e in biz.core_default(at):
                    yield to_record(e)[2]
            next_biz += every


def simulate(scenario: str, seed: int, days: int = 70, business_per_day: int = 100,
             shock_day: int = 50) -> WorldResult:
    world = World(config(seed))
    if scenario == "gradual_decline":
        plan = decline_plan(world, days=days)
    elif scenario == "utilisation_drop":
        plan = Plan(scenario, drop_round=int(shock_day * DAY // world.cfg.cadence_s))
    else:
        plan = Plan(scenario)
    result = WorldResult(scenario, seed, len(world.borrowers))
    machines = {m.borrower_id: m.kind for m in world.machines}
    result.start = world.cfg.start.timestamp()
    result.kinds = {p.party_id: p.kind + (f"/{machines[p.party_id]}" if p.party_id in machines else "")
                    for p in world.borrowers}
    if scenario == "utilisation_drop":
        # Its distress is UTILISATION_COLLAPSE, which needs an hour meter: a borrower whose
        # machines are all electric trucks has no ground truth here. Left out of the figures
        # (counted apart), not called a false alarm for seeing the drop in its odometer.
        result.untold = {b for b, k in result.kinds.items() if k.endswith("/electric_truck")}
    replay = Replay()
    active: set[str] = set()
    for raw in events(world, plan, days, business_per_day, shock_day):
        for out in replay.feed(raw):
            if out.topic not in (LIMITS_TOPIC, ALERTS_TOPIC):
                continue
            p = out.value["payload"]
            at = datetime.fromisoformat(out.value["occurred_at"]).timestamp()
            b = p.get("borrower_id")
            if b is None:
                continue
            if b in result.untold:
                if out.topic == ALERTS_TOPIC and p["code"] == "EARLY_WARNING":
                    result.untold_warned.add(b)
                continue
            block = p.get("early_warning") or {}
            if out.topic == LIMITS_TOPIC and block.get("coverage", 0) >= MIN_COVERAGE:
                result.scored.add(b)
            if out.topic == LIMITS_TOPIC and block.get("score"):
                lines = ", ".join(f"{x['indicator']} +{x['points']}" for x in block["contributions"] if x["points"])
                result.scores.setdefault(b, []).append((at, block["score"], f"{lines} of {block['coverage']}"))
            if out.topic == LIMITS_TOPIC and p["status"] != "frozen":
                active.add(b)  # frozen before it was ever active: consent still on its way, not distress
            distress = ((out.topic == LIMITS_TOPIC and p["status"] == "frozen" and b in active)
                        if scenario != "utilisation_drop"
                        else (out.topic == ALERTS_TOPIC and p["code"] == "UTILISATION_COLLAPSE"))
            if distress:
                result.distress.setdefault(b, at)
            elif out.topic == ALERTS_TOPIC and p["code"] == "EARLY_WARNING" and b not in result.distress:
                result.warned.setdefault(b, []).append(at)
                result.texts.setdefault(b, p["text"])
    return result


@dataclass
class Figures:
    positives: int
    warned_positives: int
    false_alarms: int
    leads: list[float]
    unscored: int = 0  # distressed borrowers the engine never had data enough to score

    @property
    def precision(self) -> float:
        warned = self.warned_positives + self.false_alarms
        return self.warned_positives / warned if warned else float("nan")

    @property
    def recall(self) -> float:
        return self.warned_positives / self.positives if self.positives else float("nan")

    @property
    def median_lead(self) -> float:
        return statistics.median(self.leads) if self.leads else float("nan")


def figures(results: list[WorldResult]) -> Figures:
    """A distressed borrower is caught when a warning came in the ``WINDOW_DAYS`` before
    its distress (lead = distress - the earliest such warning); a borrower with a warning
    that no distress followed within ``WINDOW_DAYS`` is a false alarm (once per borrower)."""
    pos = caught = false = unscored = 0
    leads: list[float] = []
    for r in results:
        pos += len(r.distress)
        unscored += sum(1 for b in r.distress if b not in r.scored)
        for b, times in r.warned.items():
            end = r.distress.get(b)
            timely = [t for t in times if end is not None and end - WINDOW_DAYS * DAY <= t < end]
            if timely:
                caught += 1
                leads.append((end - min(timely)) / DAY)  # type: ignore[operator]
            if len(timely) < len(times):
                false += 1
    return Figures(pos, caught, false, leads, unscored)


def misses(results: list[WorldResult]) -> list[str]:
    """One line per missed distress and per false alarm: the borrower's kind and its
    highest score (with the lines that earned it) in the ``WINDOW_DAYS`` before its
    distress (before the distress, or the end of the run, for a false alarm)."""
    out = []
    for r in results:
        for b in sorted(set(r.distress) | set(r.warned)):
            end, times = r.distress.get(b), r.warned.get(b, [])
            timely = [t for t in times if end is not None and end - WINDOW_DAYS * DAY <= t < end]
            if end is not None and timely and len(timely) == len(times):
                continue  # caught, no false alarm
            what = "false alarm" if end is None or len(timely) < len(times) else "missed"
            lo = -float("inf") if what == "false alarm" else end - WINDOW_DAYS * DAY  # type: ignore[operator]
            hi = float("inf") if end is None else end
            peak = max((x for x in r.scores.get(b, []) if lo <= x[0] < hi), key=lambda x: x[1], default=None)
            seen = "never scored" if b not in r.scored else (
                "no score above 0" if peak is None else f"peak {peak[1]} on day {r.day(peak[0]):.1f}: {peak[2]}")
            at = f"distress day {r.day(end):.1f}" if end is not None else f"warned day {r.day(times[0]):.1f}"
            out.append(f"{r.scenario} seed {r.seed} {b} ({r.kinds.get(b, '?')}): {what}, {at}; {seen}")
    return out


def row(name: str, f: Figures) -> str:
    lead = f"{f.median_lead:5.1f}" if f.leads else "    -"
    p10 = f"{sorted(f.leads)[len(f.leads) // 10]:5.1f}" if f.leads else "    -"
    return (f"| {name:<17} | {f.positives:>5} | {f.unscored:>5} | {f.warned_positives:>6} | {f.false_alarms:>5} | "
            f"{f.precision:9.2f} | {f.recall:6.2f} | {lead} | {p10} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m load.earlywarning", description=__doc__.split("\n\n")[0])
    ap.add_argument("--worlds", type=int, default=20, help="worlds of gradual_decline")
    ap.add_argument("--sudden-worlds", type=int, default=10, help=f"worlds of each sudden scenario ({', '.join(SUDDEN)})")
    ap.add_argument("--seed", type=int, default=101,
                    help="first seed (world k uses seed + k); 101 and up are held out, 1-20 the tuning seeds")
    ap.add_argument("--days", type=int, default=70)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--jobs", type=int, default=1, help="worlds simulated at once (processes)")
    ap.add_argument("--misses", action="store_true", help="list the missed distresses and the false alarms")
    opts = ap.parse_args(argv)
    t0 = time.monotonic()
    runs = [(scenario, opts.seed + k, opts.days) for scenario in opts.scenarios.split(",")
            for k in range(opts.sudden_worlds if scenario in SUDDEN else opts.worlds)]
    if opts.jobs > 1:
        with ProcessPoolExecutor(opts.jobs) as pool:
            done = list(pool.map(simulate, *zip(*runs, strict=True)))
    else:
        done = [simulate(*run) for run in runs]
    by: dict[str, list[WorldResult]] = {}
    for result in done:
        by.setdefault(result.scenario, []).append(result)
    counts = ", ".join(f"{len(rs)} of {s} (seeds {rs[0].seed}..{rs[-1].seed})" for s, rs in by.items())
    print(f"early warning over {counts}, {opts.days} days each ({time.monotonic() - t0:.0f} s)")
    print("| scenario          | distressed | of them unscored | caught | false alarms | precision | recall "
          "| median lead (days) | 10th pct lead |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario, results in by.items():
        print(row(scenario, figures(results)))
    print(row("all", figures([r for rs in by.values() for r in rs])))
    for scenario, results in by.items():
        f = figures(results)
        if f.unscored:
            print(f"{scenario}: recall among the distressed borrowers the engine could score: "
                  f"{f.warned_positives}/{f.positives - f.unscored} = "
                  f"{f.warned_positives / max(1, f.positives - f.unscored):.2f}")
    for scenario, results in by.items():
        untold = sum(len(r.untold) for r in results)
        if untold:
            print(f"{scenario}: {untold} borrowers whose machines are electric trucks left out (no hour meter, so no "
                  f"UTILISATION_COLLAPSE: no ground truth); {sum(len(r.untold_warned) for r in results)} of them "
                  f"warned (from the odometer)")
    if opts.misses:
        for line in misses(done):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
