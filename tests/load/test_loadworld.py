"""The load world: deterministic, valid for the contract and plausible for the engine."""

from __future__ import annotations

import re
from datetime import timedelta

import orjson
import pytest

from load.world import (
    BusinessSim,
    Plan,
    TelemetrySim,
    World,
    WorldConfig,
    plan_for,
    to_record,
    vin_check_digit,
)
from schemas import codec
from schemas import events as ev
from schemas.topics import route
from streams.domain.geo import haversine_km
from streams.replay import Replay

CFG = WorldConfig(seed=7, tag="Ltest", machines=60, contractors=6, cadence_s=3600)


def telemetry(world: World, plan: Plan, slots: int, n: int = 1) -> list[tuple[str, bytes, bytes]]:
    out = []
    for p in range(n):
        sim = TelemetrySim(world, plan, n, p)
        out += [r for _, recs in sim.slots(slots) for r in recs]
    return out


def business(world: World, k: int) -> list[ev.Envelope]:
    b = BusinessSim(world)
    return [b.next(world.cfg.start + timedelta(minutes=10 * i)) for i in range(k)]


def test_same_seed_same_events_other_seed_other_events() -> None:
    a, b = World(CFG), World(CFG)
    assert list(a.setup_records()) == list(b.setup_records())
    assert telemetry(a, Plan(), 300) == telemetry(b, Plan(), 300)
    assert [to_record(e) for e in business(a, 80)] == [to_record(e) for e in business(b, 80)]
    other = World(WorldConfig(**{**CFG.__dict__, "seed": 8}))
    assert telemetry(other, Plan(), 300) != telemetry(a, Plan(), 300)
    assert [m.site for m in other.machines] != [m.site for m in a.machines]


def test_every_event_decodes_and_is_routed_by_the_catalogue() -> None:
    world = World(CFG)
    recs = list(world.setup_records()) + telemetry(world, plan_for("offline_region", world, 600, 10), 600)
    biz = BusinessSim(world)
    recs += [to_record(biz.next(world.cfg.start + timedelta(hours=i))) for i in range(150)]
    recs += [to_record(e) for e in biz.core_default(world.cfg.start + timedelta(days=2))]
    types = set()
    for topic, key, value in recs:
        event = codec.decode(value)  # raises DecodeError on anything invalid
        assert route(event) == (topic, key)
        types.add(event.type)
    assert {"registry.program", "registry.borrower", "registry.consent_granted", "registry.supply_relationship",
            "registry.pledge", "telemetry.equipment", "telemetry.battery", "invoice.issued", "invoice.confirmed",
            "invoice.paid", "po.issued", "po.confirmed", "shipment.observed", "ledger.drawdown",
            "ledger.repayment", "registry.party_status", "ledger.overdue"} <= types


def test_parties_programs_and_vins_are_valid() -> None:
    world = World(CFG)
    kinds = {p.kind for p in world.borrowers} | {p.kind for p in world.cores}
    assert kinds == {"core_enterprise", "supplier", "dealer", "contractor"}
    assert {p.tier for p in world.suppliers} == {1, 2}
    for e in world.registry_events():
        if isinstance(e, ev.ProgramRegistered):
            shares = [lender.share for lender in e.payload.lenders]
            assert sum(shares) == 1 and min(shares) >= 0.30
    trucks = [m for m in world.machines if m.kind == "electric_truck"]
    assert trucks and len(trucks) < len(world.machines)
    for m in trucks:
        assert m.vin and re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", m.vin)
        assert m.vin[8] == vin_check_digit(m.vin)
    assert vin_check_digit("1M8GDM9AXKP042788") == "X"  # the textbook example


def test_readings_move_forward_within_wall_time_and_the_fence() -> None:
    world = World(CFG)
    fences = {m.machine_id: m.fence for m in world.machines}
    last: dict[str, tuple[float, float | None]] = {}
    for _, _, value in telemetry(world, Plan(), 60 * 30, n=3):
        e = codec.decode(value)
        p = e.payload
        at = e.occurred_at.timestamp()
        lat, lon, radius = fences[p.machine_id]
        assert haversine_km(lat, lon, p.location.lat, p.location.lon) <= radius
        hours = getattr(p, "cumulative_operating_hours", None)
        if p.machine_id in last:
            prev_at, prev_hours = last[p.machine_id]
            assert at > prev_at
            if hours is not None:
                assert 0 <= hours - prev_hours <= (at - prev_at) / 3600
        last[p.machine_id] = (at, hours)
    assert len(last) == CFG.machines


def test_processes_split_the_slots_exactly() -> None:
    world = World(CFG)
    slots = 60 * 5 + 17
    seen = []
    for p in range(4):
        seen += [j for j, _ in TelemetrySim(world, Plan(), 4, p).slots(slots)]
    assert sorted(seen) == list(range(slots))
    assert sorted(telemetry(world, Plan(), slots, n=4)) == sorted(telemetry(world, Plan(), slots, n=1))


def test_utilisation_drop_cuts_working_hours() -> None:
    world = World(CFG)
    rounds = 48
    plan = plan_for("utilisation_drop", world, rounds * CFG.machines, 60)
    assert plan.drop_round == rounds // 2

    def worked(p: Plan) -> tuple[float, float]:
        hours: dict[str, list[float]] = {}
        for _, _, v in telemetry(world, p, rounds * CFG.machines):
            pl = orjson.loads(v)["payload"]
            if "cumulative_operating_hours" in pl:
                hours.setdefault(pl["machine_id"], []).append(pl["cumulative_operating_hours"])
        half = rounds // 2
        before = sum(h[half - 1] - h[0] for h in hours.values())
        after = sum(h[-1] - h[half - 1] for h in hours.values())
        return before, after

    before, after = worked(plan)
    steady_before, steady_after = worked(Plan())
    assert before == pytest.approx(steady_before)
    assert after < 0.2 * steady_after


def test_offline_region_delivers_its_day_late_in_one_batch() -> None:
    world = World(WorldConfig(**{**CFG.__dict__, "cadence_s": 7200}))
    slots = 40 * world.cfg.machines
    plan = plan_for("offline_region", world, slots, 60)
    r0, r1 = plan.offline_rounds or (0, 0)
    assert r1 - r0 == 12  # a day of two-hourly readings
    offline = {m.index for m in world.machines if m.region == plan.offline_region}
    sim = TelemetrySim(world, plan)
    batches = [(j, recs) for j, recs in sim.slots(slots)]
    empty = [j for j, recs in batches if not recs]
    big = [(j, recs) for j, recs in batches if len(recs) > 1]
    assert len(empty) == len(offline) * (r1 - r0)
    assert len(big) == 1 and big[0][0] == r1 * world.cfg.machines
    late = [orjson.loads(v) for _, _, v in big[0][1][:-1]]
    assert len(late) == len(empty)
    assert all(e["payload"].get("reissued", True) for e in late)
    assert sum(len(recs) for _, recs in batches) == slots  # nothing lost, nothing doubled


def test_the_engine_accepts_the_world_without_dead_letters_or_implausibility() -> None:
    world = World(CFG)
    r = Replay()
    outs = []
    for _, _, value in list(world.setup_records()) + telemetry(world, Plan(), 24 * 3 * CFG.machines):
        outs += list(r.feed(value))
    biz = BusinessSim(world)
    for i in range(200):
        outs += list(r.feed(to_record(biz.next(world.cfg.start + timedelta(hours=72, minutes=5 * i)))[2]))
    assert not [o for o in outs if o.topic == "cs.deadletter"]
    codes = {o.value["payload"]["code"] for o in outs if o.topic == "cs.alerts"}
    assert not codes & {"HOUR_METER_BACKWARDS", "HOUR_METER_TOO_FAST", "LOCATION_JUMP", "GEOFENCE_BREACH"}
    limited = {o.key for o in outs if o.topic == "cs.limits"}
    assert {c.party_id for c in world.contractors} <= limited


def replay(world: World, plan: Plan, rounds: int) -> list:
    r = Replay()
    outs = []
    for _, _, value in list(world.setup_records()) + telemetry(world, plan, rounds * world.cfg.machines):
        outs += list(r.feed(value))
    return outs


def test_utilisation_drop_lowers_equipment_limits_in_the_engine() -> None:
    """Four-hourly readings over 16 simulated days; the fleet idles from day 8."""
    world = World(WorldConfig(seed=3, tag="Ldrop", machines=12, contractors=3, cadence_s=4 * 3600, truck_share=0))
    rounds = 16 * 6
    plan = plan_for("utilisation_drop", world, rounds * world.cfg.machines, 60)

    def final_limits(p: Plan) -> dict[str, tuple[float, set[str]]]:
        out = {}
        for o in replay(world, p, rounds):
            if o.topic == "cs.limits":
                pl = o.value["payload"]
                out[o.key] = (float(pl["limit"]["amount"]), {r["code"] for r in pl["reasons"]})
        return out

    dropped, steady = final_limits(plan), final_limits(Plan())
    for c in world.contractors:
        assert "UTILISATION_LOW" in dropped[c.party_id][1]
        assert dropped[c.party_id][0] < 0.5 * steady[c.party_id][0]


def test_core_default_reaches_suppliers_and_dealers_in_the_engine() -> None:
    world = World(CFG)
    r = Replay()
    biz = BusinessSim(world)
    limits: dict[str, dict] = {}
    for value in [v for _, _, v in world.setup_records()] + [
            to_record(biz.next(world.cfg.start + timedelta(minutes=10 * i)))[2] for i in range(300)]:
        limits.update({o.key: o.value["payload"] for o in r.feed(value) if o.topic == "cs.limits"})
    before = {k: float(v["limit"]["amount"]) for k, v in limits.items()}
    after = []
    for e in biz.core_default(world.cfg.start + timedelta(days=3)):
        after += list(r.feed(to_record(e)[2]))
    codes = {o.value["payload"]["code"] for o in after if o.topic == "cs.alerts"}
    assert {"BUYER_DISTRESS", "OVERDUE"} <= codes
    latest = {o.key: o.value["payload"] for o in after if o.topic == "cs.limits"}
    core = world.cores[0].party_id
    tier1 = {s.party_id for s in world.suppliers if s.buyer_id == core}
    exposed = [s.party_id for s in world.suppliers if (s.buyer_id == core or s.buyer_id in tier1)
               and before.get(s.party_id, 0) > 0]
    assert exposed, "the business events gave core 0's suppliers no receivables"
    for s in exposed:  # tier 1 and, one hop further, tier 2 lose limit
        assert float(latest[s]["limit"]["amount"]) < before[s]
    dealers = [d.party_id for d in world.dealers if d.buyer_id == core]
    assert all(latest[d]["status"] == "frozen" for d in dealers)
