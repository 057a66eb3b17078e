"""Peppol invoices and credit notes and Chinese VAT exports as they come
(tests/sources/samples/ubl/README.md, tests/sources/samples/vat/README.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.sources import invoices
from connectors.sources.credit_notes import InvoiceIndex

UBL = Path(__file__).parent / "samples" / "ubl"
VAT = Path(__file__).parent / "samples" / "vat"


def ubl(name: str, *replace: tuple[str, str]) -> bytes:
    body = (UBL / name).read_bytes()
    for old, new in replace:
        assert old.encode() in body, old
        body = body.replace(old.encode(), new.encode())
    return body


def one(body: bytes, **kw):
    out = invoices.parse_ubl(body, tenant="t", **kw)
    assert not out.rejected, out.rejected
    (e,) = out.events
    return e


def test_category_o_parties_without_vat_are_identified_by_endpoint_id() -> None:
    e = one(ubl("vat-category-O.xml"), party_map={"0088:7300010000001": "sup-se"})
    p = e.payload
    assert (p.invoice.seller_tax_id, p.seller_id, p.invoice.invoice_number) == ("00887300010000001", "sup-se", "Vat-O")
    assert p.buyer_id.startswith("0192") and p.invoice.total.amount == Decimal("3200.00")


@pytest.mark.parametrize("name", ["vat-category-E.xml", "vat-category-Z.xml"])
def test_exempt_and_zero_rated_buyers_without_vat_are_identified_by_endpoint_id(name: str) -> None:
    p = one(ubl(name), party_map={"0184:12345678": "buyer-gb"}).payload
    assert (p.invoice.seller_tax_id, p.buyer_id) == ("GB928741974", "buyer-gb")


def test_seller_with_a_tax_representative_is_identified_by_its_endpoint_id() -> None:
    number = "061828591|01/10/2020|0|1.1|0|1"
    p = one(ubl("GR-base-example-TaxRepresentative.xml", (number, "GR-2020-0001"))).payload
    assert p.invoice.seller_tax_id == "00881238764941386"  # not the representative's EL061828591


def test_greek_numbers_are_refused_with_our_own_short_text() -> None:
    out = invoices.parse_ubl(ubl("GR-base-example-correct.xml"), tenant="t")
    (r,) = out.rejected
    assert r.reason == "bad_invoice_number" and "'|'" in r.error
    assert "pydantic" not in r.error and "http" not in r.error and len(r.error) < 240


def test_contract_refusals_name_the_rule_without_the_library_message() -> None:
    out = invoices.parse_ubl(ubl("base-example.xml", ("1656.25</cbc:PayableAmount>", "1656.255</cbc:PayableAmount>")),
                             tenant="t")
    (r,) = out.rejected
    assert r.reason == "invalid_event" and r.error.startswith("invoice.total: EUR has 2 decimal places")
    assert "http" not in r.error and "validation error" not in r.error


def test_a_party_with_no_identifier_at_all_is_missing() -> None:
    body = ubl("vat-category-O.xml", ('<cbc:EndpointID schemeID="0088">7300010000001</cbc:EndpointID>', ""),
               ("<cbc:ID>7300010000001</cbc:ID>", ""))
    out = invoices.parse_ubl(body, tenant="t")
    assert [r.reason for r in out.rejected] == ["missing_field"]


def test_na_order_reference_is_no_purchase_order() -> None:
    assert one(ubl("sales-order-example.xml")).payload.po_id is None


def test_a_credit_note_for_the_whole_invoice_cancels_it() -> None:
    index = InvoiceIndex()
    issued = one(ubl("base-example.xml"), index=index)
    credit = one(ubl("base-creditnote-correction.xml"), index=index)
    assert credit.type == "invoice.cancelled"
    assert credit.payload.invoice.fingerprint() == issued.payload.invoice.fingerprint()
    assert (credit.payload.seller_id, credit.payload.buyer_id) == (issued.payload.seller_id, issued.payload.buyer_id)


def test_a_partial_credit_note_reduces_the_invoice_by_its_amount() -> None:
    index = InvoiceIndex()
    issued = one(ubl("base-example.xml"), index=index)
    credit = one(ubl("base-creditnote-correction.xml", ("1656.25</cbc:PayableAmount>", "400.00</cbc:PayableAmount>")),
                 index=index)
    assert credit.type == "invoice.partially_paid" and credit.payload.paid.amount == Decimal("400.00")
    assert credit.payload.invoice == issued.payload.invoice


@pytest.mark.parametrize(("replace", "reason"), [
    (("1656.25</cbc:PayableAmount>", "2000.00</cbc:PayableAmount>"), "credit_exceeds_invoice"),
    (("<cbc:ID>Snippet1</cbc:ID>\n        </cac:InvoiceDocumentReference>",
      "<cbc:ID>Snippet9</cbc:ID>\n        </cac:InvoiceDocumentReference>"), "unknown_invoice"),
    (('<cbc:PayableAmount currencyID="EUR">', '<cbc:PayableAmount currencyID="SEK">'), "currency_mismatch"),
])
def test_credit_notes_that_cannot_reduce_an_invoice_are_refused(replace: tuple[str, str], reason: str) -> None:
    index = InvoiceIndex()
    one(ubl("base-example.xml"), index=index)
    out = invoices.parse_ubl(ubl("base-creditnote-correction.xml", replace), tenant="t", index=index)
    assert [r.reason for r in out.rejected] == [reason]


def test_a_credit_note_without_the_invoice_seen_is_refused_not_guessed() -> None:
    out = invoices.parse_ubl(ubl("base-creditnote-correction.xml"), tenant="t")
    assert [r.reason for r in out.rejected] == ["unknown_invoice"] and "--invoice-index" in out.rejected[0].error


def test_pinyin_export_keys_are_read() -> None:
    out = invoices.parse_vat((VAT / "pinyin-export.json").read_bytes(), tenant="t")
    legacy, digital = (e.payload for e in out.events)
    assert (legacy.invoice.invoice_number, legacy.invoice.total.amount, legacy.invoice.issue_date) == (
        "4300231130-08812346", Decimal("56500.00"), date(2024, 3, 8))
    assert (legacy.seller_id, legacy.buyer_id) == ("91430100MA4L0XYZ2K", "91430100732857326L")
    assert (digital.invoice.invoice_number, digital.invoice.total.amount) == ("24312000000123456790", Decimal("10000.00"))
    assert [(r.origin, r.reason) for r in out.rejected] == [("vat#2", "total_mismatch")]
