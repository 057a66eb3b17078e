"""UBL 2.1 / Peppol BIS 3.0 and Chinese VAT invoices to invoice.issued; safe XML."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sources import invoices
from connectors.sources.common import SourceError

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
UBL = (EXAMPLES / "ubl-invoice.xml").read_bytes()
VAT = orjson.loads((EXAMPLES / "vat-invoices.json").read_bytes())["invoices"]


def test_ubl_example_maps_every_field() -> None:
    out = invoices.parse_ubl(UBL, tenant="oem", party_map={"DE811907980": "sup-hwg", "DE129273398": "bm-ag"})
    assert not out.rejected
    (e,) = out.events
    p = e.payload
    assert (p.invoice.invoice_number, p.invoice.seller_tax_id, p.invoice.issue_date) == (
        "INV-2024-00871", "DE811907980", date(2024, 3, 4))
    assert (p.invoice.total.amount, p.invoice.total.currency) == (Decimal("23800.00"), "EUR")
    assert (p.seller_id, p.buyer_id, p.due_date, p.po_id) == ("sup-hwg", "bm-ag", date(2024, 5, 3), "PO-2024-0117")
    assert e.event_id == f"ubl-{p.invoice.fingerprint()}" and e.occurred_at.date() == date(2024, 3, 4)


def _ubl(old: str, new: str) -> bytes:
    assert old.encode() in UBL
    return UBL.replace(old.encode(), new.encode())


def test_ubl_without_due_date_uses_payment_terms() -> None:
    (e,) = invoices.parse_ubl(_ubl("<cbc:DueDate>2024-05-03</cbc:DueDate>", ""), tenant="t", terms_days=45).events
    assert e.payload.due_date == date(2024, 3, 4) + timedelta(days=45)


@pytest.mark.parametrize(("old", "new", "reason"), [
    ('<cbc:PayableAmount currencyID="EUR">', '<cbc:PayableAmount currencyID="USD">', "currency_mismatch"),
    ("<cbc:IssueDate>2024-03-04</cbc:IssueDate>", "<cbc:IssueDate>4 March</cbc:IssueDate>", "bad_date"),
    ("<cbc:CompanyID>DE811907980</cbc:CompanyID>", "<cbc:CompanyID>DE 81#1907980</cbc:CompanyID>", "bad_tax_id"),
    ("23800.00</cbc:PayableAmount>", "23800.001</cbc:PayableAmount>", "invalid_event"),
    ("<cbc:ID>INV-2024-00871</cbc:ID>", "<cbc:ID>INV 2024 #871</cbc:ID>", "bad_invoice_number"),
    ("<Invoice xmlns=", "<CreditNote xmlns=", "no_invoice_reference"),
])
def test_bad_ubl_invoices_are_refused(old: str, new: str, reason: str) -> None:
    body = _ubl(old, new)
    if new.startswith("<CreditNote"):
        body = body.replace(b"</Invoice>", b"</CreditNote>")
    out = invoices.parse_ubl(body, tenant="t")
    assert not out.events and [r.reason for r in out.rejected] == [reason], out.rejected
    assert out.rejected[0].raw == body


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>&lol3;</ID></Invoice>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>&xxe;</ID></Invoice>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE])
def test_xml_bombs_and_external_entities_get_a_clear_error(body: bytes) -> None:
    out = invoices.parse_ubl(body, tenant="t")
    (r,) = out.rejected
    assert r.reason == "xml_forbidden" and "entity expansion and external entities are not allowed" in r.error


def test_vat_example_fully_digital_and_legacy_invoices() -> None:
    out = invoices.parse_vat(orjson.dumps({"invoices": VAT}), tenant="sany",
                             party_map={"91430100732857326L": "sany-heavy"})
    assert not out.rejected
    digital, legacy = (e.payload for e in out.events)
    assert (digital.invoice.invoice_number, digital.invoice.total.amount, digital.buyer_id) == (
        "24312000000123456789", Decimal("100000.00"), "sany-heavy")
    assert (digital.due_date, digital.po_id, digital.seller_id) == (date(2024, 6, 3), "PO-2024-0117", "91430100MA4L0XYZ2K")
    assert (legacy.invoice.invoice_number, legacy.invoice.issue_date, legacy.invoice.total.amount) == (
        "4300231130-08812345", date(2024, 3, 6), Decimal("30000.00"))
    assert legacy.due_date == date(2024, 4, 5)  # issue date + 30 days of default terms
    assert out.events[0].occurred_at == datetime(2024, 3, 5, tzinfo=timezone(timedelta(hours=8)))


@pytest.mark.parametrize(("change", "reason"), [
    ({"tax": "11504.43"}, "total_mismatch"),
    ({"invoice_number": "123"}, "bad_invoice_number"),
    ({"invoice_code": "4300231130"}, "bad_invoice_number"),
    ({"amount": 88495.58}, "bad_amount"),
    ({"seller": {"name": "X", "tax_id": "9143#0100"}}, "bad_tax_id"),
    ({"buyer": {"name": "Sany Heavy"}}, "missing_field"),
    ({"issue_date": "next week"}, "bad_date"),
])
def test_bad_vat_invoices_are_refused_one_by_one(change: dict, reason: str) -> None:
    out = invoices.parse_vat(orjson.dumps([VAT[0] | change, VAT[1]]), tenant="t")
    assert len(out.events) == 1 and [r.reason for r in out.rejected] == [reason]


def test_vat_file_that_is_not_json_is_refused() -> None:
    out = invoices.parse_vat(b"<xml/>", tenant="t")
    assert [r.reason for r in out.rejected] == ["malformed_json"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.text(max_size=200).map(lambda s: UBL.replace(b"INV-2024-00871", s.encode("utf-8", "replace"))),
                 st.integers(0, len(UBL)).map(lambda n: UBL[:n])))
def test_fuzz_ubl_parser_only_refuses(body: bytes) -> None:
    out = invoices.parse_ubl(body, tenant="t")
    assert len(out.events) + len(out.rejected) == 1


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(VAT[1])), st.one_of(st.none(), st.text(max_size=24), st.integers(-10**6, 10**6)), max_size=5))
def test_fuzz_vat_parser_only_refuses(change: dict) -> None:
    with contextlib.suppress(SourceError):
        invoices.parse_vat(orjson.dumps(VAT[1] | change), tenant="t")
