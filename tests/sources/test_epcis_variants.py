"""EPCIS 2.0 as GS1 publishes it (tests/sources/samples/epcis/README.md): aggregation,
single events, query results, events without party lists; bounded dead letters."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from connectors.sources import epcis
from connectors.sources.common import MAX_ITEM_BYTES, SourceError, dead_letter

SAMPLES = Path(__file__).parent / "samples" / "epcis"
# The standard's examples carry no party lists: a shipping read point of the supplier's
# site and the buyer's receiving dock are mapped to the supplier whose goods they see.
LOCATIONS = {"urn:epc:id:sgln:0614141.07346.0": "sup-acme", "urn:epc:id:sgln:0012345.11111.0": "sup-acme"}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_aggregation_event_with_a_po_and_party_lists_is_a_shipment() -> None:
    out = epcis.parse_document(sample("aggregation-receiving-po.jsonld"), tenant="t",
                               party_map={"urn:epc:id:pgln:4012345.00225": "sup-4012345"})
    assert not out.rejected
    (e,) = out.events
    p = e.payload
    assert (p.biz_step, p.disposition, p.po_id, p.supplier_id) == (
        "receiving", "in_progress", "0614141.00001.1618034", "sup-4012345")
    assert p.shipment_id == "urn:epc:id:sscc:0614141.1234567890"  # the pallet (parentID)


def test_single_event_without_a_document_is_accepted() -> None:
    (e,) = epcis.parse_document(sample("single-object-event.json"), tenant="t", location_map=LOCATIONS).events
    assert (e.payload.po_id, e.payload.supplier_id, e.payload.biz_step) == ("12345678", "sup-acme", "shipping")


def test_single_aggregation_event_is_judged_as_an_event_not_refused_as_not_epcis() -> None:
    out = epcis.parse_document(sample("single-aggregation-event.json"), tenant="t")
    assert [r.reason for r in out.rejected] == ["no_po_reference"]  # was not_epcis


def test_query_document_results_are_read() -> None:
    out = epcis.parse_document(sample("query-document.jsonld"), tenant="t", location_map=LOCATIONS)
    assert not out.rejected
    assert [(e.payload.biz_step, e.payload.po_id, e.payload.shipment_id) for e in out.events] == [
        ("shipping", "12345678", "urn:epc:id:sgtin:0614141.107346.2017"), ("receiving", "12345678", "1152")]


def test_events_without_party_lists_use_the_location_table_else_no_supplier() -> None:
    body = sample("example-9.6.1-object-events.jsonld")
    mapped = epcis.parse_document(body, tenant="t", location_map=LOCATIONS)
    assert [e.payload.supplier_id for e in mapped.events] == ["sup-acme", "sup-acme"]
    unmapped = epcis.parse_document(body, tenant="t")
    assert [r.reason for r in unmapped.rejected] == ["no_supplier", "no_supplier"]
    assert "--location-map" in unmapped.rejected[0].error


def test_the_same_event_from_a_document_and_a_query_has_one_id() -> None:
    a = epcis.parse_document(sample("example-9.6.1-object-events.jsonld"), tenant="t", location_map=LOCATIONS)
    b = epcis.parse_document(sample("query-document.jsonld"), tenant="t", location_map=LOCATIONS)
    assert [e.event_id for e in a.events] == [e.event_id for e in b.events]


@pytest.mark.parametrize("body", [b'[{"type": "Invoice"}]', b'{"type": "EPCISQueryDocument", "epcisBody": {}}'])
def test_other_json_is_still_not_epcis(body: bytes) -> None:
    with pytest.raises(SourceError) as exc:
        epcis.parse_document(body, tenant="t")
    assert exc.value.reason == "not_epcis"


def test_deeply_nested_refused_events_do_not_each_carry_the_whole_document() -> None:
    # Issue 11.4: 400 such events in a 267 KB file made 140 MB of dead letters.
    deep = b"[" * 300 + b'"x"' + b"]" * 300  # deeper than orjson writes (254): built as text
    event = (b'{"type": "ObjectEvent", "bizStep": "shipping", "action": "OBSERVE", "bizTransactionList": [], '
             b'"cs:deep": ' + deep + b"}")
    body = b'{"type": "EPCISDocument", "epcisBody": {"eventList": [' + b", ".join([event] * 400) + b"]}}"
    out = epcis.parse_document(body, tenant="t")
    assert [r.reason for r in out.rejected] == ["no_po_reference"] * 400
    letters = [dead_letter(r, tenant="t", stage="epcis") for r in out.rejected]
    sizes = [len(base64.b64decode(dl.payload.value_b64)) for dl in letters]
    assert max(sizes) <= MAX_ITEM_BYTES and sum(sizes) <= len(body)
    assert b"cut: nested deeper" in out.rejected[0].raw


def test_a_huge_refused_item_is_cut_to_the_item_bound_with_a_note() -> None:
    event = {"type": "ObjectEvent", "bizStep": "shipping", "action": "OBSERVE", "bizTransactionList": [],
             "cs:pad": "y" * (2 * MAX_ITEM_BYTES)}
    out = epcis.parse_document(orjson.dumps([event]), tenant="t")
    dl = dead_letter(out.rejected[0], tenant="t", stage="epcis")
    assert len(base64.b64decode(dl.payload.value_b64)) == MAX_ITEM_BYTES and "truncated" in dl.payload.error
