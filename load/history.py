"""A simulated history as an NDJSON event log: what a policy diff is measured on.

The world's setup (registry, pledges, dealer plans), then ``days`` of telemetry at the
world's cadence with business events spread over the same time, in event-time order,
one envelope per line. The same config always writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from load.world import DAY, BusinessSim, Plan, TelemetrySim, World, WorldConfig, to_record


def history(cfg: WorldConfig, days: float, business_per_day: int = 0) -> Iterator[bytes]:
    """Event bytes, one envelope each; ``business_per_day`` defaults to one per machine-week."""
    world = World(cfg)
    for _, _, value in world.setup_records():
        yield value
    rounds = int(days * DAY // cfg.cadence_s)
    sim = TelemetrySim(world, Plan())
    biz = BusinessSim(world)
    per_day = business_per_day or max(1, cfg.machines // 7)
    every = max(1.0, DAY / per_day)  # seconds of event time between business events
    next_biz = 0.0
    for slot, recs in sim.slots(rounds * cfg.machines):
        for _, _, value in recs:
            yield value
        # Business events keep pace with the telemetry round (a machine's phase aside).
        clock = (slot // cfg.machines) * cfg.cadence_s
        while next_biz < clock:
            yield to_record(biz.next(cfg.start + timedelta(seconds=next_biz)))[2]
            next_biz += every


def write(path: str, cfg: WorldConfig, days: float, business_per_day: int = 0) -> int:
    n = 0
    with open(path, "wb") as f:
        for value in history(cfg, days, business_per_day):
            f.write(value + b"\n")
            n += 1
    return n
