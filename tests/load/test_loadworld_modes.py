"""The load world's warehouse receipts and freight (issue 16.2, 16.3) and the
``commodity_crash`` scenario: halfway, every commodity is quoted 20% lower at once, and
traders drawn close to their limits get a margin call (offline, through the replay)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta

from load.generator import GenSpec, items
from load.schedule import SCENARIOS, Schedule
from load.world import BusinessSim, World, WorldConfig, plan_for, to_record
from schemas import codec
from streams.replay import Replay

CFG = WorldConfig(seed=11, tag="Lcrash", machines=20, contractors=4)


def test_the_crash_is_a_scenario_sent_halfway_by_generator_0() -> None:
    assert "commodity_crash" in SCENARIOS
    world = World(CFG)
    plan = plan_for("commodity_crash", world, 200, 60)
    assert plan.price_crash_at_s == 30
    spec = GenSpec(bootstrap="-", world=CFG, plan=plan, telemetry=Schedule.steady(10, 60),
                   business=Schedule.steady(2, 60), time_scale=600)
    crash = [(t, codec.decode(v)) for t, recs in items(spec, 0) for _, _, v in recs
             if codec.decode(v).type == "market.price" and t == 30]
    assert sorted(e.payload.commodity for _, e in crash) == sorted(world.receipts.commodities)
    two = dataclasses.replace(spec, processes=2)  # only generator 0 sends business events
    assert [e for _, recs in items(two, 1) for _, _, v in recs if (e := codec.decode(v)).type == "market.price"] == []


def test_a_crash_lowers_the_traders_limits_and_calls_margins() -> None:
    world = World(CFG)
    r = Replay()
    biz = BusinessSim(world)
    limits: dict[str, dict] = {}
    types: Counter[str] = Counter()
    records = [v for _, _, v in world.setup_records()]
    for i in range(600):
        e = biz.next(world.cfg.start + timedelta(minutes=10 * i))
        types[e.type] += 1
        records.append(to_record(e)[2])
    for value in records:
        limits.update({o.key: o.value["payload"] for o in r.feed(value) if o.topic == "cs.limits"})
    assert types["receipt.pledged"] and types["freight.waybill_completed"] and types["telemetry.equipment"]
    traders = [t.party_id for t in world.receipts.traders]
    before = {t: float(limits[t]["limit"]["amount"]) for t in traders if t in limits}
    held = [t for t, v in before.items() if v > 0]
    assert held, "the business events gave the traders no receipts"
    after = []
    for e in world.receipts.crash(biz.mk, world.cfg.start + timedelta(minutes=10 * 600)):
        after += list(r.feed(to_record(e)[2]))
    latest = {o.key: o.value["payload"] for o in after if o.topic == "cs.limits"}
    for t in held:
        assert float(latest[t]["limit"]["amount"]) < before[t]
        assert "INVENTORY_PRICE_FALL" in {x["code"] for x in latest[t]["reasons"]}
    calls = [o.value["payload"] for o in after
             if o.topic == "cs.alerts" and o.value["payload"]["code"] == "INVENTORY_MARGIN_CALL"]
    assert calls and {c["borrower_id"] for c in calls} <= set(held)
    assert all("Repay " in c["text"] for c in calls)
    assert [o for o in after if o.topic == "cs.deadletter"] == []
