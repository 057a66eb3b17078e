"""Stage 2's cost per machine signal against the size of the borrower's fleet (pure, no
broker): ``python -m load.decidebench``.

One contractor of the load world with 10 machines and one with 1,000, reporting every 10
minutes of event time; stage 1 (the same processors the worker runs) turns their
readings into machine signals, which are then fed to stage 2 one by one. For each
signal it times the decision (``policy.decide``) with the fleet kept per machine
(``fleet.equipment``, what the worker runs) and valued whole (``policy.equipment``), and
the whole of stage 2 per signal (fold, decide, publish when material). Prints JSON; the
figure that matters is the ratio of 1,000 to 10 machines (1.0 = independent of the fleet).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from load.world import Plan, TelemetrySim, World, WorldConfig
from schemas.topics import LIMITS_TOPIC, SIGNALS_TOPIC
from streams.domain import facility, fleet
from streams.domain.policy import PolicyParams, decide
from streams.processors import FacilityProcessor, all_processors, processor_for

if TYPE_CHECKING:
    from streams.domain.facility import FacilityState
    from streams.domain.signals import SignalRecord


def signals(machines: int, rounds: int) -> list[bytes]:
    """The stage-2 input (signal records) of one contractor with ``machines`` machines,
    for its registration, pledges and ``rounds`` rounds of readings."""
    world = World(WorldConfig(seed=3, tag=f"Ldb{machines}", cores=1, contractors=1, machines=machines,
                              cadence_s=600, dealer_share=0))
    procs = [p for p in all_processors() if not isinstance(p, FacilityProcessor)]
    stores: dict[str, dict[str, Any]] = {p.name: {} for p in procs}
    out: list[bytes] = []
    records = list(world.setup_records())
    records += [r for _slot, recs in TelemetrySim(world, Plan()).slots(machines * rounds) for r in recs]
    for topic, key, value in records:
        try:
            proc = processor_for(topic, procs)
        except KeyError:
            continue
        for o in proc.process(stores[proc.name], topic, key, value):
            if o.topic == SIGNALS_TOPIC and o.value["borrower_id"] == world.contractors[0].party_id:
                out.append(orjson.dumps(o.value))
    return out


def _per_signal(sigs: list[bytes], warm: int, step: Callable[[FacilityState, SignalRecord], float]) -> float:
    """Median seconds of ``step`` over the signals after the first ``warm`` (applied untimed)."""
    state: FacilityState | None = None
    times = []
    for i, raw in enumerate(sigs):
        sig = orjson.loads(raw)
        state = state or facility.new_state(sig["borrower_id"])
        t = step(state, sig)
        if i >= warm:
            times.append(t)
    return statistics.median(times)


def decide_step(kept: bool) -> Callable[[FacilityState, SignalRecord], float]:
    def step(state: FacilityState, sig: SignalRecord) -> float:
        facility.apply_signal(state, sig)
        if state["program"] is None:
            return 0.0
        params = PolicyParams.for_program(state["program"])
        t0 = time.perf_counter()
        decide(state, params, fleet.equipment(state, params) if kept else None)
        return time.perf_counter() - t0
    return step


def stage2(sigs: list[bytes], warm: int, kept: bool) -> tuple[float, int]:
    """Median seconds of FacilityProcessor.process per signal after ``warm``; updates published."""
    store: dict[str, Any]
    proc, store = FacilityProcessor(), {}
    real = fleet.equipment
    if not kept:
        fleet.equipment = lambda state, params: None  # type: ignore[assignment,return-value]
    try:
        times, updates = [], 0
        for i, raw in enumerate(sigs):
            t0 = time.perf_counter()
            outs = proc.process(store, SIGNALS_TOPIC, None, raw)
            if i >= warm:
                times.append(time.perf_counter() - t0)
                updates += sum(o.topic == LIMITS_TOPIC for o in outs)
        return statistics.median(times), updates
    finally:
        fleet.equipment = real


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m load.decidebench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10,1000", help="fleet sizes (machines of one borrower)")
    ap.add_argument("--readings", type=int, default=8000,
                    help="readings per fleet (at least 8 rounds); the first half of its signals warm up")
    ap.add_argument("--timed", type=int, default=400, help="signals timed per fleet (after the warm-up)")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"cadence_s": 600, "sizes": {}}
    for n in (int(x) for x in args.sizes.split(",")):
        sigs = signals(n, max(8, args.readings // n))
        warm = len(sigs) // 2  # every machine pledged and valued before timing
        sigs = sigs[:warm + args.timed]
        kept_s, kept_updates = stage2(sigs, warm, kept=True)
        whole_s, whole_updates = stage2(sigs, warm, kept=False)
        result["sizes"][n] = {
            "signals_timed": len(sigs) - warm,
            "decide_kept_us": round(_per_signal(sigs, warm, decide_step(True)) * 1e6, 1),
            "decide_whole_us": round(_per_signal(sigs, warm, decide_step(False)) * 1e6, 1),
            "stage2_kept_us": round(kept_s * 1e6, 1),
            "stage2_whole_us": round(whole_s * 1e6, 1),
            "updates_published": kept_updates,
        }
        assert kept_updates == whole_updates
    sizes = sorted(result["sizes"])
    lo, hi = result["sizes"][sizes[0]], result["sizes"][sizes[-1]]
    for k in ("decide_kept_us", "decide_whole_us", "stage2_kept_us", "stage2_whole_us"):
        result[f"ratio_{k[:-3]}"] = round(hi[k] / lo[k], 2)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
