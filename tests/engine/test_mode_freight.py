"""Freight receivables (issue 16.3): a carrier's completed waybill counts against its
shipper once the truck's own trajectory corroborates the delivery (a position inside
the consignee's geofence within the waybill's window); a waybill whose truck never got
there does not count and raises WAYBILL_NOT_CORROBORATED. The waybills are keyed by
truck and meet its positions in the machines lane (streams/domain/freight.py), so the
verdict does not depend on which of the two topics is read first. Offline through the
replay and through the real broker with a worker of this module."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from connectors.kafka_io import produce_events
from schemas import codec
from schemas.factory import EventFactory
from streams.replay import Replay
from tests.engine import scenarios as sc
from tests.engine.test_broker import Outputs, u
from tests.engine.test_mode_dealers import canonical, limits_at_marks
from tests.engine.test_scenarios import codes, last_for, run


def test_a_corroborated_waybill_counts_and_one_whose_truck_never_arrived_does_not() -> None:
    events, marks = sc.freight_waybills("f1")
    _, alerts, dead = run(events)
    assert dead == []
    at = limits_at_marks(events, marks, "car-f1")
    assert {k: v["limit"]["amount"] for k, v in at.items()} == {
        "w1": "16000.00", "w2_awaiting": "16000.00", "w2_failed": "16000.00", "w3": "40000.00", "paid": "24000.00"}
    w1 = at["w1"]["components"][0]
    assert w1["kind"] == "freight" and w1["asset_id"] == "W1-f1"
    # Reached at 10:00 on day 0: the truck is inside the 1 km fence from then to 11:00.
    assert w1["detail"] == {"shipper": "shp-f1", "truck": "trk-f1", "buyer_factor": "1.0",
                            "reached_at": (sc.WEEK0 + timedelta(hours=10)).isoformat()}
    assert "FREIGHT_UNCORROBORATED" in codes(at["w2_awaiting"])
    assert "FREIGHT_NOT_DELIVERED" in codes(at["w2_failed"]) and "FREIGHT_UNCORROBORATED" not in codes(at["w2_failed"])
    assert [c["asset_id"] for c in at["w3"]["components"]] == ["W1-f1", "W3-f1"]
    assert [(a["code"], a["borrower_id"], a["asset_id"]) for a in alerts] == [
        ("WAYBILL_NOT_CORROBORATED", "car-f1", "W2-f1")]


def test_the_verdict_does_not_depend_on_how_waybills_and_positions_interleave() -> None:
    """cs.waybills and cs.telemetry are two topics of one lane partition: a worker may
    read a waybill before, between or after the positions that judge it."""
    events, _ = sc.freight_waybills("f2")
    head, body = events[:5], events[5:]
    want_limits, want_alerts, _ = run(events)
    want = canonical(last_for(want_limits, "car-f2"))
    assert want[0]["amount"] == "24000.00"
    positions = [e for e in body if e.type.startswith("telemetry.")]
    waybills = [e for e in body if e.type.startswith("freight.")]
    orders = [positions + waybills, waybills[:-1] + positions + waybills[-1:]]
    for seed in range(6):  # random merges that keep each topic's own order
        rng, p, w, merged = random.Random(seed), list(positions), list(waybills), []
        while p or w:
            merged.append((p if p and (not w or rng.random() < 0.9) else w).pop(0))
        orders.append(merged)
    for order in orders:
        limits, alerts, dead = run(head + order)
        assert dead == []
        assert canonical(last_for(limits, "car-f2")) == want
        assert [a["alert_id"].rsplit("-", 1)[1] for a in alerts] == [a["alert_id"].rsplit("-", 1)[1]
                                                                     for a in want_alerts]
        assert [a["code"] for a in alerts] == ["WAYBILL_NOT_CORROBORATED"]


def test_waybills_are_refused_for_trucks_not_enrolled_and_outside_the_rules() -> None:
    f = EventFactory("fwr", sc.WEEK0)
    c, other, shp, trk = "car-fwr", "car2-fwr", "shp-fwr", "trk-fwr"
    window = (sc.WEEK0, sc.WEEK0 + timedelta(hours=10))
    due = (sc.WEEK0 + timedelta(days=30)).date()
    dest = sc.CONSIGNEE
    events = [f.program("prg-fwr"), f.borrower(c, "prg-fwr", kind="fleet_operator"), f.consent(c),
              f.equipment(trk, 10.0, lat=28.2, lon=112.9),  # neither pledged nor enrolled
              f.waybill_completed("W0", trk, c, shp, dest, window, "1000", due),
              f.truck_enrolled(trk, c),
              f.waybill_completed("W1", trk, other, shp, dest, window, "1000", due),
              f.waybill_completed("W2", trk, c, shp, dest, (sc.WEEK0, sc.WEEK0 + timedelta(days=3)), "1000", due),
              f.waybill_paid("W9", trk, c)]
    f.advance(days=3)
    events.append(f.waybill_completed("W3", trk, c, shp, dest, window, "1000", due))  # 3 days after its window
    f.now = sc.WEEK0 + timedelta(hours=1)
    events += [f.waybill_completed("W4", trk, c, shp, dest, window, "1000", due),
               f.waybill_completed("W4", trk, c, shp, dest, window, "1000", due)]
    _, alerts, dead = run(events)
    assert [d["payload"]["reason"] for d in dead] == ["unpledged_machine", "unknown_truck", "carrier_mismatch",
                                                      "window_too_long", "unknown_waybill", "waybill_out_of_window"]
    assert [a["code"] for a in alerts] == ["DUPLICATE_FINANCING"]


def test_a_pledged_truck_can_carry_freight_too() -> None:
    """A truck pledged as equipment and enrolled for freight: its telemetry feeds both."""
    f = EventFactory("fwp", sc.WEEK0)
    c, shp, trk = "car-fwp", "shp-fwp", "trk-fwp"
    events = [f.program("prg-fwp"), f.borrower(c, "prg-fwp", kind="fleet_operator"), f.consent(c),
              f.pledge(trk, c, "prg-fwp", price="500000", kind="electric_truck"), f.truck_enrolled(trk, c)]
    for h in range(0, 12):
        f.now = sc.WEEK0 + timedelta(hours=h)
        lat = 28.60 if 9 <= h <= 10 else 28.20
        events.append(f.equipment(trk, 100.0 + h, lat=lat, lon=112.9))
    events.append(f.waybill_completed("WP", trk, c, shp, sc.CONSIGNEE, (sc.WEEK0, sc.WEEK0 + timedelta(hours=11)),
                                      "10000", (sc.WEEK0 + timedelta(days=30)).date()))
    limits, _, dead = run(events)
    assert dead == []
    final = last_for(limits, c)
    assert {c["kind"] for c in final["components"]} == {"equipment", "freight"}
    assert [c["contribution"]["amount"] for c in final["components"] if c["kind"] == "freight"] == ["8000.00"]
    r = Replay()
    for e in events:
        list(r.feed(codec.encode(e)))
    assert len(r.stores["machines"][trk]["trail"]) == 12


# ---------------------------------------------------------------- through a real worker
@pytest.mark.integration
async def test_freight_waybills_through_the_broker(producer, outputs: Outputs, mine, my_alerts) -> None:
    """All of the scenario's waybills and positions at once after the registration: the
    worker reads the two topics in its own interleaving and ends with the replay's
    decision and alert."""
    uid = u()
    events, _ = sc.freight_waybills(uid)
    c = f"car-{uid}"
    want = canonical(last_for(run(events)[0], c))

    # The registration and the truck's enrolment first (like a pledge, the enrolment
    # must precede the truck's telemetry, which is refused without it).
    registry = [e for e in events if e.type.startswith("registry.") or e.type == "freight.truck_enrolled"]
    await produce_events(producer, registry)
    await outputs.wait(lambda rs: len(mine(rs, c)) >= 1, timeout=240)
    await produce_events(producer, [e for e in events if e not in registry])
    await outputs.wait(lambda rs: bool(mine(rs, c)) and canonical(mine(rs, c)[-1]) == want
                       and len(my_alerts(rs, c)) >= 1, timeout=240)
    assert [a["code"] for a in my_alerts(outputs.records, c)] == ["WAYBILL_NOT_CORROBORATED"]
    assert [x["asset_id"] for x in mine(outputs.records, c)[-1]["components"]] == [f"W3-{uid}"]


def test_paid_waybills_leave_the_facility_and_a_failed_one_is_said_for_30_days() -> None:
    events, _ = sc.freight_waybills("f5")
    f = EventFactory("fw5-late", sc.WEEK0 + timedelta(days=33))
    events.append(f.waybill_paid("W3-f5", "trk-f5", "car-f5"))  # 32 days after W2 failed
    r = Replay()
    limits = [o.value["payload"] for e in events for o in r.feed(codec.encode(e)) if o.topic == "cs.limits"]
    assert limits[-1]["limit"]["amount"] == "0.00"
    assert "FREIGHT_NOT_DELIVERED" not in codes(limits[-1])
    assert "FREIGHT_NOT_DELIVERED" in codes(limits[-2])
    # W1 and W3 paid: gone from stage 2; W2 (failed) stays until 60 days after it.
    assert list(r.stores["facilities"]["car-f5"]["assets"]["freight"]) == ["W2-f5"]
