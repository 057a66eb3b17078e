"""The load world produces the issue-16 modes: dealer flows (sales-based dealer
financing) and equipment programs with a construction season, and the engine takes
them without dead letters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from load.world import BusinessSim, Plan, TelemetrySim, World, WorldConfig, to_record
from schemas import codec
from streams.replay import Replay

# The dealer and season tests run the world as it was before the inventory and freight
# modes (their flows take business steps, so the dealers' story would move); the modes'
# test turns them on at their defaults.
CFG = WorldConfig(seed=5, tag="Lmode", machines=12, contractors=3, cadence_s=4 * 3600, truck_share=0,
                  receipt_share=0, freight_share=0)


def business(world: World, steps: int = 1500) -> tuple[list, set[str]]:
    """The world's registrations, then ``steps`` business events two hours apart, through
    the replay: every output, and the types of the business events."""
    r = Replay()
    outs = [o for _, _, value in world.setup_records() for o in r.feed(value)]
    biz = BusinessSim(world)
    types = set()
    for i in range(steps):
        e = biz.next(world.cfg.start + timedelta(hours=2 * i))
        types.add(e.type)
        outs += list(r.feed(to_record(e)[2]))
    return outs, types


def test_the_world_finances_dealers_against_their_sales() -> None:
    world = World(CFG)
    outs, types = business(world)
    assert {"dealer.plan", "dealer.unit_picked_up", "dealer.retail_sale", "dealer.unit_repaid",
            "dealer.stock_audit"} <= types | {codec.decode(v).type for _, _, v in world.setup_records()}
    assert [o.value["payload"]["reason"] for o in outs if o.topic == "cs.deadletter"] == []
    latest = {o.key: o.value["payload"] for o in outs if o.topic == "cs.limits"}
    lines = [c for d in world.dealers for c in latest[d.party_id]["components"] if c["kind"] == "dealer"]
    assert len(lines) == len(world.dealers)
    assert any(float(c["contribution"]["amount"]) > 0 for c in lines)
    codes = {o.value["payload"]["code"] for o in outs if o.topic == "cs.alerts"}
    assert {"SOLD_OUT_OF_TRUST", "UNIT_MISSING_AT_AUDIT"} <= codes


def test_a_winter_run_is_judged_against_the_construction_season() -> None:
    """A fortnight from 1 December: the machines work 80% of their baseline, as the
    equipment programs' season says; their utilisation is not low."""
    world = World(WorldConfig(**{**CFG.__dict__, "start": datetime(2026, 12, 1, tzinfo=UTC), "dealer_share": 0}))
    r = Replay()
    latest = {}
    sim = TelemetrySim(world, Plan())
    recs = list(world.setup_records()) + [x for _, rs in sim.slots(14 * 6 * CFG.machines) for x in rs]
    for _, _, value in recs:
        latest.update({o.key: o.value["payload"] for o in r.feed(value) if o.topic == "cs.limits"})
    for c in world.contractors:
        reasons = {x["code"] for x in latest[c.party_id]["reasons"]}
        assert "SEASONAL_BASELINE" in reasons and "UTILISATION_LOW" not in reasons
        assert all(x["detail"]["season"] == "0.800" for x in latest[c.party_id]["components"])


def test_the_world_finances_warehouse_receipts_and_corroborated_freight() -> None:
    """Traders pledge receipts valued from the world's price feed (a second pledge of one
    is refused, goods sometimes leave under a pledge); carriers' trucks make trips whose
    positions corroborate their waybills, 1 in 10 never reaching the consignee."""
    defaults = WorldConfig()
    world = World(WorldConfig(**{**CFG.__dict__, "receipt_share": defaults.receipt_share,
                                 "freight_share": defaults.freight_share}))
    outs, types = business(world)
    assert {"receipt.issued", "receipt.pledged", "receipt.released", "receipt.stock_moved", "market.price",
            "freight.waybill_completed", "freight.waybill_paid"} <= types
    assert [o.value["payload"]["reason"] for o in outs if o.topic == "cs.deadletter"] == []
    kinds = {(o.key[:9], c["kind"]) for o in outs if o.topic == "cs.limits"
             for c in o.value["payload"]["components"] if float(c["contribution"]["amount"]) > 0}
    assert {("Lmode-trd", "inventory"), ("Lmode-car", "freight")} <= kinds
    codes = {o.value["payload"]["code"] for o in outs if o.topic == "cs.alerts"}
    assert {"WAYBILL_NOT_CORROBORATED", "DUPLICATE_FINANCING", "STOCK_OUT_UNDER_PLEDGE"} <= codes
