"""EPCIS 2.0 JSON-LD documents to shipment events: mapping rules and refusals."""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import strategies as st

from connectors.sources import epcis
from connectors.sources.common import SourceError
from tests.twins import given_twice

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "epcis-shipments.jsonld"
CN = timezone(timedelta(hours=8))


def doc(*events: dict) -> bytes:
    return orjson.dumps({"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
                        "type": "EPCISDocument", "schemaVersion": "2.0",
                        "epcisBody": {"eventList": list(events)}})


SHIP = orjson.loads(EXAMPLE.read_bytes())["epcisBody"]["eventList"][0]


def test_example_document_maps_shipping_and_receiving() -> None:
    out = epcis.parse_document(EXAMPLE.read_bytes(), tenant="sany", party_map={
        "urn:epc:id:pgln:0614141.00001": "sup-hunan-01"})
    assert not out.rejected and "AggregationEvent with bizStep 'packing' and no purchase order skipped" in out.notes[0]
    ship, recv = (e.payload for e in out.events)
    assert (ship.po_id, ship.shipment_id, ship.supplier_id, ship.biz_step, ship.disposition) == (
        "PO-2024-0117", "DA-88121", "sup-hunan-01", "shipping", "in_transit")
    assert ship.actual_at == datetime(2024, 3, 1, 9, 30, tzinfo=CN) and ship.actual_at.utcoffset() == timedelta(hours=8)
    assert ship.planned_at == datetime(2024, 3, 1, 12, tzinfo=CN) and ship.site_id == "urn:epc:id:sgln:0614141.00777.0"
    assert (recv.biz_step, recv.disposition, recv.supplier_id) == ("receiving", "in_progress", "sup-hunan-01")
    assert out.events[0].occurred_at == ship.actual_at


def test_event_ids_are_deterministic_per_tenant() -> None:
    a = epcis.parse_document(EXAMPLE.read_bytes(), tenant="sany").events
    b = epcis.parse_document(EXAMPLE.read_bytes(), tenant="sany").events
    c = epcis.parse_document(EXAMPLE.read_bytes(), tenant="xcmg").events
    assert [e.event_id for e in a] == [e.event_id for e in b] != [e.event_id for e in c]


@pytest.mark.parametrize(("step", "disp", "expected"), [
    ("https://ref.gs1.org/cbv/BizStep-shipping", None, ("shipping", "in_transit")),
    ("urn:epcglobal:cbv:bizstep:receiving", "urn:epcglobal:cbv:disp:sellable_accessible", ("receiving", "delivered")),
    ("arriving", None, ("arriving", "in_progress")),
    ("receiving", "https://ref.gs1.org/cbv/Disp-delivered", ("receiving", "delivered")),
])
def test_cbv_uris_bare_words_and_derived_dispositions(step, disp, expected) -> None:
    e = copy.deepcopy(SHIP) | {"bizStep": step}
    e.pop("disposition")
    if disp:
        e["disposition"] = disp
    (ev,) = epcis.parse_document(doc(e), tenant="t").events
    assert (ev.payload.biz_step, ev.payload.disposition) == expected


def test_missing_plan_defaults_to_actual_with_a_note_and_utc_time_is_shifted() -> None:
    e = copy.deepcopy(SHIP)
    del e["cs:plannedAt"]
    e["eventTime"], e["eventTimeZoneOffset"] = "2024-03-01T23:30:00Z", "+08:00"
    out = epcis.parse_document(doc(e), tenant="t")
    p = out.events[0].payload
    assert p.actual_at == p.planned_at == datetime(2024, 3, 1, 23, 30, tzinfo=UTC)
    assert p.actual_at.isoformat() == "2024-03-02T07:30:00+08:00" and "planned_at = actual_at" in out.notes[0]


def test_geo_read_point_becomes_a_location() -> None:
    e = copy.deepcopy(SHIP) | {"readPoint": {"id": "geo:28.2282,112.9388"}}
    (ev,) = epcis.parse_document(doc(e), tenant="t").events
    assert ev.payload.location is not None and (ev.payload.location.lat, ev.payload.location.lon) == (28.2282, 112.9388)


@pytest.mark.parametrize(("change", "reason"), [
    ({"bizTransactionList": []}, "no_po_reference"),
    ({"action": "DELETE"}, "unsupported_action"),
    ({"eventTime": "yesterday"}, "bad_datetime"),
    ({"eventTimeZoneOffset": "CET"}, "bad_offset"),
    ({"sourceList": []}, "no_supplier"),
    ({"cs:plannedAt": "soon"}, "bad_datetime"),
    ({"cs:shipmentId": "has spaces!"}, "invalid_event"),
])
def test_bad_shipment_events_are_refused_one_by_one(change: dict, reason: str) -> None:
    bad = copy.deepcopy(SHIP) | change
    out = epcis.parse_document(doc(SHIP, bad), tenant="t")
    assert len(out.events) == 1 and [r.reason for r in out.rejected] == [reason]
    assert orjson.loads(out.rejected[0].raw) == bad


@pytest.mark.parametrize("body", [b"{", b'{"type": "Invoice"}', b'{"type": "EPCISDocument", "epcisBody": {}}'])
def test_documents_that_are_not_epcis_raise(body: bytes) -> None:
    with pytest.raises(SourceError):
        epcis.parse_document(body, tenant="t")


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
                           max_leaves=20)


def _events_raise_only_source_errors(change: dict) -> None:
    with contextlib.suppress(SourceError):
        epcis.parse_document(doc(copy.deepcopy(SHIP) | change), tenant="t")


test_fuzz_events_raise_only_source_errors, test_fuzz_events_raise_only_source_errors_full = given_twice(
    _events_raise_only_source_errors, st.dictionaries(st.sampled_from(sorted(SHIP)), json_values, max_size=8),
    full=300, deadline=None)


def test_a_packing_aggregation_for_an_order_is_a_shipment_observation() -> None:
    """Issue 12: AggregationEvents packing goods for a purchase order were skipped as
    "not shipments"; they are the order's goods observed at the supplier (in progress)."""
    packing = orjson.loads((EXAMPLE.parent / "epcis-shipments.jsonld").read_bytes())["epcisBody"]["eventList"][1]
    packing = {**packing, "bizTransactionList": SHIP["bizTransactionList"],
               "sourceList": SHIP.get("sourceList", [])}
    out = epcis.parse_document(doc(packing), tenant="sany", party_map={
        "urn:epc:id:pgln:0614141.00001": "sup-hunan-01"})
    assert not out.rejected and "skipped" not in " ".join(out.notes), out.notes
    (event,) = out.events
    p = event.payload
    assert (p.biz_step, p.disposition, p.po_id, p.supplier_id) == ("packing", "in_progress", "PO-2024-0117",
                                                                  "sup-hunan-01")
