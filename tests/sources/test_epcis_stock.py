"""EPCIS 2.0 events naming a warehouse receipt to ``receipt.stock_moved`` (issue 16.2):
the mapping rules, the refusals, and a movement out of a pledged receipt through the
engine (the limit falls and STOCK_OUT_UNDER_PLEDGE is raised)."""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
from hypothesis import strategies as st

from connectors.sources import epcis
from connectors.sources.common import SourceError
from schemas import codec
from schemas.factory import EventFactory
from streams.replay import Replay
from tests.twins import given_twice

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "epcis-warehouse-stock.jsonld"
STORED, DEPARTED = orjson.loads(EXAMPLE.read_bytes())["epcisBody"]["eventList"]


def doc(*events: dict) -> bytes:
    return orjson.dumps({"type": "EPCISDocument", "schemaVersion": "2.0", "epcisBody": {"eventList": list(events)}})


def test_the_example_maps_storing_in_and_departing_out() -> None:
    out = epcis.parse_document(EXAMPLE.read_bytes(), tenant="wh-yangshan")
    assert not out.rejected and not out.notes
    stored, departed = (e.payload for e in out.events)
    assert [e.type for e in out.events] == ["receipt.stock_moved"] * 2
    assert (stored.warehouse_id, stored.receipt_id, stored.direction, stored.quantity, stored.unit) == (
        "6901234000036", "WR-2026-0311", "in", Decimal("12.5"), "t")
    assert stored.key() == departed.key() == "6901234000036:WR-2026-0311"  # one receipt, one partition
    assert (departed.direction, departed.quantity, departed.unit) == ("out", Decimal("10"), "t")
    assert out.events[1].occurred_at == datetime(2026, 3, 21, 7, 40, tzinfo=UTC)
    again = epcis.parse_document(EXAMPLE.read_bytes(), tenant="wh-yangshan")
    assert [e.event_id for e in again.events] == [e.event_id for e in out.events]  # re-imports are idempotent


def test_movements_that_cannot_be_stock_are_refused_with_a_reason() -> None:
    def variant(**change: object) -> dict:
        e = copy.deepcopy(DEPARTED)
        for k, v in change.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    cases = {
        "no_stock_direction": variant(action="OBSERVE", bizStep="urn:epcglobal:cbv:bizstep:inspecting"),
        "no_warehouse": variant(**{"cs:warehouseId": None}),
        "no_quantity": variant(quantityList=None),
        "mixed_units": variant(quantityList=[{"quantity": 1, "uom": "TNE"}, {"quantity": 1, "uom": "KGM"}]),
        "bad_quantity": variant(quantityList=[{"quantity": "lots", "uom": "TNE"}]),
    }
    out = epcis.parse_document(doc(*cases.values()), tenant="wh")
    assert [r.reason for r in out.rejected] == list(cases)
    assert out.events == []


def test_an_epcis_departure_under_a_pledged_receipt_lowers_the_limit() -> None:
    start = datetime(2026, 3, 19, tzinfo=UTC)
    f = EventFactory("eps", start)
    prg, t, wh, cu = "prg-eps", "trd-eps", "6901234000036", "cu-eps"
    events = [f.program(prg, cap="20000000", commodity_haircuts={cu: "0.30"}), f.borrower(t, prg), f.consent(t), f.price(cu, "70000"),
              f.receipt_issued(wh, "WR-2026-0311", t, cu, "100"), f.receipt_pledged(wh, "WR-2026-0311", t)]
    moved = epcis.parse_document(EXAMPLE.read_bytes(), tenant="wh-yangshan").events
    f.now = start + timedelta(days=3)
    kg = epcis.parse_document(doc(dict(copy.deepcopy(DEPARTED), eventID="e-kg",
                                       quantityList=[{"quantity": 5, "uom": "KGM"}])), tenant="wh").events
    r = Replay()
    outs = [o for e in [*events, *moved, *kg] for o in r.feed(codec.encode(e))]
    limits = [o.value["payload"]["limit"]["amount"] for o in outs if o.topic == "cs.limits"]
    # 100 t x 70,000 x 0.70 = 4.9m; +12.5 t = 5,512,500 -> 5,512,000; -10 t: 102.5 t = 5,022,500 -> 5,022,000
    assert limits[-3:] == ["4900000.00", "5512000.00", "5022000.00"]
    assert [o.value["payload"]["code"] for o in outs if o.topic == "cs.alerts"] == ["STOCK_OUT_UNDER_PLEDGE"]
    assert [o.value["payload"]["reason"] for o in outs if o.topic == "cs.deadletter"] == ["unit_mismatch"]


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=20),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
                           max_leaves=20)


def _stock_events_raise_only_source_errors(change: dict, quantity: dict) -> None:
    event = copy.deepcopy(DEPARTED) | change
    if "quantityList" not in change:
        event["quantityList"] = [DEPARTED["quantityList"][0] | quantity]
    with contextlib.suppress(SourceError):
        epcis.parse_document(doc(event), tenant="t")


(test_fuzz_stock_events_raise_only_source_errors,
 test_fuzz_stock_events_raise_only_source_errors_full) = given_twice(
    _stock_events_raise_only_source_errors,
    st.dictionaries(st.sampled_from(sorted(DEPARTED)), json_values, max_size=6),
    st.dictionaries(st.sampled_from(["quantity", "uom", "epcClass"]), json_values, max_size=3),
    full=300, deadline=None)
