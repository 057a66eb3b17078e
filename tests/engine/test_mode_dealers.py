"""Sales-based dealer financing (以销定融, issue 16.1): a dealer's line follows verified
sell-through, bounded by the OEM's production plan, with the floor-plan rules (sold out
of trust, curtailment of aged units, a unit missing at audit). Offline through the
replay and through the real broker with a worker of this module."""

from __future__ import annotations

import pytest

from connectors.kafka_io import produce_events
from schemas import codec
from schemas.factory import EventFactory
from streams.replay import Replay
from tests.engine import scenarios as sc
from tests.engine.test_broker import Outputs, u
from tests.engine.test_scenarios import codes, last_for, run


def limits_at_marks(events, marks, borrower):
    r = Replay()
    current, at = None, {}
    inverse = {v: k for k, v in marks.items()}
    for i, e in enumerate(events, start=1):
        for out in r.feed(codec.encode(e)):
            if out.topic == "cs.limits" and out.key == borrower:
                current = out.value["payload"]
        if i in inverse:
            at[inverse[i]] = current
    return at


def test_the_line_follows_confirmed_sales_within_the_plan_and_the_floor_plan_rules() -> None:
    events, marks = sc.dealer_floor_plan("d1")
    _, alerts, dead = run(events)
    assert dead == []
    at = limits_at_marks(events, marks, "dlr-d1")
    assert {k: v["limit"]["amount"] for k, v in at.items()} == {
        "unconfirmed": "0.00", "confirmed": "2000000.00", "missing": "1500000.00", "out_of_trust": "0.00",
        "repaid": "1500000.00", "plan_cap": "1500000.00", "found": "2000000.00", "curtailed": "1900000.00"}
    assert "DEALER_SALES_UNCONFIRMED" in codes(at["unconfirmed"])
    line = at["confirmed"]["components"][0]
    assert line["kind"] == "dealer" and line["detail"]["sales_30d"] == "1500000.00"
    assert line["detail"]["sales_prior_30d"] == "1000000.00"
    # A unit missing at audit: its share frozen at once, shown as a frozen unit.
    assert at["missing"]["status"] == "partially_frozen" and "UNIT_MISSING_AT_AUDIT" in codes(at["missing"])
    assert [c["asset_id"] for c in at["missing"]["components"] if c["frozen"]] == ["U9-d1"]
    # Sold out of trust: the whole dealer line frozen until the unit is repaid.
    assert "SOLD_OUT_OF_TRUST" in codes(at["out_of_trust"])
    assert at["out_of_trust"]["components"][0]["frozen"] is True
    assert "SOLD_OUT_OF_TRUST" not in codes(at["repaid"])
    assert "sold units repaid" in at["repaid"]["reasons"][-1]["text"]
    assert "DEALER_PLAN_CAP" in codes(at["plan_cap"])
    assert at["found"]["status"] == "active"
    assert at["curtailed"]["components"][0]["detail"]["curtailed"] == "100000.00"
    assert "DEALER_CURTAILMENT" in codes(at["curtailed"])
    raised = [(a["code"], a.get("asset_id")) for a in alerts]
    assert raised == [("UNIT_MISSING_AT_AUDIT", "U9-d1"), ("SOLD_OUT_OF_TRUST", "U6-d1")]


def test_a_sale_before_its_pickup_waits_for_it_and_a_unit_financed_twice_counts_once() -> None:
    f = EventFactory("dlx", sc.WEEK0)
    d, oem = "dlr-x", "oem-x"
    events = [f.program("prg-x"), f.borrower(d, "prg-x", kind="dealer"), f.consent(d),
              f.dealer_plan(d, oem, "2026-03", "9000000", 9),
              f.pickup(d, oem, "VIN-1", "400000"), f.pickup(d, oem, "VIN-1", "400000"),
              f.retail_sale(d, "VIN-2"), f.unit_repaid(d, "VIN-2"), f.retail_sale(d, "VIN-1")]
    _, alerts, dead = run(events)
    assert [x["payload"]["reason"] for x in dead] == ["unit_already_sold"] or dead == []
    assert [a["code"] for a in alerts] == ["DUPLICATE_FINANCING"]
    r = Replay()
    for e in events:
        list(r.feed(codec.encode(e)))
    state = r.stores["dealers"][d]
    # VIN-2's sale and repayment wait for its pickup; only VIN-1 is financed.
    assert list(state["units"]) == ["VIN-1"] and state["early"] == {"VIN-2": {"sold": sc.WEEK0.timestamp(),
                                                                             "repaid": sc.WEEK0.timestamp()}}
    assert list(r.stores["facilities"][d]["assets"]["dealer"][d]["units"]) == ["VIN-1"]
    f2 = EventFactory("dly", sc.WEEK0)
    again = [*events, f2.retail_sale(d, "VIN-1")]
    assert [x["payload"]["reason"] for x in run(again)[2]] == ["unit_already_sold"]


def canonical(update: dict) -> tuple:
    """What materiality compares (docs/credit-policy.md section 4): a component's detail
    moving under the same rounded limit is not published, so it is not compared."""
    return (update["limit"], update["available"], update["outstanding"], update["status"],
            sorted(r["code"] for r in update["reasons"] if not r["code"].startswith("LIMIT_")))


def test_the_final_line_does_not_depend_on_the_order_of_the_dealer_events() -> None:
    """Pickups (the OEM's system) and sales, repayments, audits (the dealer system) come
    from two publishers: read in any order, the dealer ends with the same decision."""
    import random

    events, _ = sc.dealer_floor_plan("d3")
    head, dealer = events[:3], events[3:]
    want = canonical(last_for(run(events)[0], "dlr-d3"))
    assert want[0]["amount"] == "1900000.00"
    pickups_last = [e for e in dealer if e.type != "dealer.unit_picked_up"] + [
        e for e in dealer if e.type == "dealer.unit_picked_up"]
    orders = [pickups_last] + [random.Random(seed).sample(dealer, len(dealer)) for seed in range(5)]
    for order in orders:
        limits, _, dead = run(head + order)
        assert dead == []
        assert canonical(last_for(limits, "dlr-d3")) == want


def test_no_plan_no_sales_line_and_a_program_may_allow_more_days_to_repay() -> None:
    events, marks = sc.dealer_floor_plan("d2")
    no_plan = [e for e in events if e.type != "dealer.plan"]
    limits, _, _ = run(no_plan)
    assert last_for(limits, "dlr-d2")["limit"]["amount"] == "0.00"
    assert "DEALER_NO_PLAN" in codes(last_for(limits, "dlr-d2"))
    program = events[0].payload  # type: ignore[attr-defined]
    lenient = events[0].model_copy(update={"payload": program.model_copy(update={
        "parameters": program.parameters.model_copy(update={"dealer_repay_days": 20})})})
    at = limits_at_marks([lenient, *events[1:]], marks, "dlr-d2")
    assert at["out_of_trust"]["limit"]["amount"] == "1500000.00"
    assert "SOLD_OUT_OF_TRUST" not in codes(at["out_of_trust"])


# ---------------------------------------------------------------- through a real worker
@pytest.mark.integration
async def test_dealer_floor_plan_through_the_broker(producer, outputs: Outputs, mine, my_alerts) -> None:
    uid = u()
    events, _ = sc.dealer_floor_plan(uid)
    d = f"dlr-{uid}"
    expected = [x["payload"]["limit"]["amount"] for x in run(events)[0] if x["payload"]["borrower_id"] == d]

    # The registry first, answered by this worker (other engines on the broker answer
    # too, and may be faster): then its dealer events, which share one partition, so
    # the worker decides exactly the replay's sequence, time-driven alerts included.
    registry = [e for e in events if e.type.startswith("registry.")]
    await produce_events(producer, registry)
    await outputs.wait(lambda rs: len(mine(rs, d)) >= 2, timeout=240)
    await produce_events(producer, [e for e in events if e not in registry])
    await outputs.wait(lambda rs: [x["limit"]["amount"] for x in mine(rs, d)] == expected
                       and len(my_alerts(rs, d)) == 2, timeout=240)
    final = mine(outputs.records, d)[-1]
    assert final["limit"]["amount"] == "1900000.00" and final["policy_version"] == "2026.12-3"
    assert sorted(a["code"] for a in my_alerts(outputs.records, d)) == ["SOLD_OUT_OF_TRUST", "UNIT_MISSING_AT_AUDIT"]


def test_a_winter_lull_in_sales_is_judged_against_the_season() -> None:
    """Sales of 500k on 5 and 15 November, 250k on 10 December (the program expects 25%
    of the usual sales in December). On 25 December the last 30 days hold 250k / 0.25 =
    1m and the 30 before 1m: the line stays at 1m x 2.0 = 2m. Without a profile the same
    sales give min(250k, 1m) x 2.0 = 500k."""
    from datetime import UTC, datetime, timedelta

    def story(seasonal: bool) -> dict:
        f = EventFactory(f"dws{int(seasonal)}", datetime(2026, 11, 1, tzinfo=UTC))
        d, oem = "dlr-ws", "oem-ws"
        params = {"seasonal_profile": list(sc.WINTER_PROFILE)} if seasonal else {}
        events = [f.program("prg-ws", **params), f.borrower(d, "prg-ws", kind="dealer"), f.consent(d)]
        events += [f.dealer_plan(d, oem, m, "5000000", 10) for m in ("2026-11", "2026-12")]
        events += [f.pickup(d, oem, "A", "500000"), f.pickup(d, oem, "B", "500000"), f.pickup(d, oem, "C", "250000"),
                   f.pickup(d, oem, "D", "500000")]
        start = f.now
        for unit, day in (("A", 4), ("B", 14), ("C", 39)):
            f.now = start + timedelta(days=day)
            events += [f.retail_sale(d, unit), f.unit_repaid(d, unit)]
        f.now = start + timedelta(days=54)
        events.append(f.stock_audit(d, "aud-ws", ["D"]))
        limits, _, dead = run(events)
        assert dead == []
        return last_for(limits, d)

    seasonal, flat = story(True), story(False)
    assert seasonal["limit"]["amount"] == "2000000.00"
    assert seasonal["components"][0]["detail"]["sales_30d"] == "1000000.00"
    assert "Sales are judged against the season: in December your program expects 25% of the usual sales." in [
        r["text"] for r in seasonal["reasons"]]
    assert flat["limit"]["amount"] == "500000.00"
