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

    python -m load.earlywarning --worlds 30 --seed 101
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
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
            if out.topic == LIMITS_TOPIC and p.get("early_warning", {}).get("coverage", 0) >= MIN_COVERAGE:
                result.scored.add(b)
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


def row(name: str, f: Figures) -> str:
    lead = f"{f.median_lead:5.1f}" if f.leads else "    -"
    p10 = f"{sorted(f.leads)[len(f.leads) // 10]:5.1f}" if f.leads else "    -"
    return (f"| {name:<17} | {f.positives:>5} | {f.unscored:>5} | {f.warned_positives:>6} | {f.false_alarms:>5} | "
            f"{f.precision:9.2f} | {f.recall:6.2f} | {lead} | {p10} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m load.earlywarning", description=__doc__.split("\n\n")[0])
    ap.add_argument("--worlds", type=int, default=30, help="worlds per scenario")
    ap.add_argument("--seed", type=int, default=101, help="first seed (world k uses seed + k)")
    ap.add_argument("--days", type=int, default=70)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    opts = ap.parse_args(argv)
    t0 = time.monotonic()
    by: dict[str, list[WorldResult]] = {}
    for scenario in opts.scenarios.split(","):
        by[scenario] = [simulate(scenario, opts.seed + k, opts.days) for k in range(opts.worlds)]
    print(f"early warning over {opts.worlds} worlds per scenario, seeds {opts.seed}..{opts.seed + opts.worlds - 1}, "
          f"{opts.days} days each ({time.monotonic() - t0:.0f} s)")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
