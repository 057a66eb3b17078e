"""UBL credit notes: the invoice they credit is reduced, so its financing follows.

The contract has no credit event; a credit note is mapped onto the invoice lifecycle the
engine already follows (docs/connectors.md): crediting the whole invoice cancels it
(``invoice.cancelled``: nothing is left to finance and its fingerprint is freed), crediting
part of it is ``invoice.partially_paid`` with the credited amount (the outstanding amount,
and so the limit, goes down by it). A credit larger than the invoice is refused.

A credit note names its invoice only by number (``BillingReference/InvoiceDocumentReference``),
while the invoice's identity in the contract also holds its issue date and total. Those
come from :class:`InvoiceIndex`: every invoice this importer produced, kept in a JSON
file between runs (``--invoice-index``); a credit note for an invoice it has not seen is
refused ``unknown_invoice`` rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element

from connectors.sources import safexml, ubl_parties
from connectors.sources.common import SourceError, build_event, digest
from schemas.events import Envelope, InvoiceCancelled, InvoiceIssued, InvoicePartiallyPaid


@dataclass
class InvoiceIndex:
    """Invoices by (seller tax id, invoice number): what a credit note needs to name one."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @staticmethod
    def key(seller_tax_id: str, number: str) -> str:
        return f"{seller_tax_id}|{number}"

    def add(self, event: InvoiceIssued) -> None:
        p = event.payload
        self.entries[self.key(p.invoice.seller_tax_id, p.invoice.invoice_number)] = {
            "issue_date": p.invoice.issue_date.isoformat(), "amount": str(p.invoice.total.amount),
            "currency": p.invoice.total.currency, "seller_id": p.seller_id, "buyer_id": p.buyer_id}

    def get(self, seller_tax_id: str, number: str) -> dict[str, Any] | None:
        return self.entries.get(self.key(seller_tax_id, number))


def map_credit_note(root: Element, *, tenant: str, index: InvoiceIndex, parse_date: Any,
                    amount: Any) -> Envelope:
    """A parsed UBL ``CreditNote`` -> ``invoice.cancelled`` or ``invoice.partially_paid``.

    The parties are the invoice's (from the index), so the engine's check that a lifecycle
    event names the invoice's own seller and buyer holds. ``parse_date`` and ``amount`` are
    the invoice parser's, so both documents read dates and amounts alike.
    """
    number = safexml.text(root, "ID")
    if not number:
        raise SourceError("missing_field", "cbc:ID (credit note number) is required")
    refs = [r for r in safexml.children(root, "BillingReference")
            if safexml.child(r, "InvoiceDocumentReference") is not None]
    if not refs:
        raise SourceError("no_invoice_reference", f"credit note {number} names no invoice "
                          "(BillingReference/InvoiceDocumentReference): nothing to reduce")
    if len(refs) > 1:
        raise SourceError("several_invoices", f"credit note {number} credits {len(refs)} invoices: "
                          "the credit cannot be split between them")
    ref_number = safexml.text(refs[0], "InvoiceDocumentReference", "ID")
    if not ref_number:
        raise SourceError("no_invoice_reference", "InvoiceDocumentReference/ID is empty")
    seller = ubl_parties.identify(safexml.path(root, "AccountingSupplierParty", "Party"), "AccountingSupplierParty")
    invoice = index.get(seller.tax_id, ref_number)
    if invoice is None:
        raise SourceError("unknown_invoice", f"credit note {number} credits invoice {ref_number} of seller "
                          f"{seller.tax_id}, which this importer has not seen (import it first, or pass the "
                          "--invoice-index it was recorded in)")
    ref_date = safexml.text(refs[0], "InvoiceDocumentReference", "IssueDate")
    if ref_date is not None and parse_date(ref_date, "InvoiceDocumentReference/IssueDate").isoformat() != invoice["issue_date"]:
        raise SourceError("invoice_mismatch", f"credit note {number} gives invoice {ref_number} the issue date "
                          f"{ref_date}; it was issued on {invoice['issue_date']}")
    payable = safexml.path(root, "LegalMonetaryTotal", "PayableAmount")
    if payable is None or not (payable.text or "").strip():
        raise SourceError("missing_field", "LegalMonetaryTotal/PayableAmount is required")
    credit: Decimal = amount(payable.text, "PayableAmount")
    currency = payable.attrib.get("currencyID") or safexml.text(root, "DocumentCurrencyCode")
    if currency != invoice["currency"]:
        raise SourceError("currency_mismatch", f"credit note in {currency}, invoice {ref_number} in {invoice['currency']}")
    total = Decimal(invoice["amount"])
    if credit <= 0:
        raise SourceError("bad_amount", f"credit note {number} credits {credit}: nothing to reduce")
    if credit > total:
        raise SourceError("credit_exceeds_invoice", f"credit note {number} credits {credit} {currency}, "
                          f"more than invoice {ref_number}'s {total}")
    issued: date = parse_date(safexml.text(root, "IssueDate"), "IssueDate")
    ident = {"invoice": {"seller_tax_id": seller.tax_id, "invoice_number": ref_number,
                         "issue_date": invoice["issue_date"], "total": {"amount": invoice["amount"], "currency": currency}},
             "seller_id": invoice["seller_id"], "buyer_id": invoice["buyer_id"]}
    full = credit == total
    cls: type[Envelope] = InvoiceCancelled if full else InvoicePartiallyPaid
    payload = ident if full else ident | {"paid": {"amount": str(credit), "currency": currency}}
    return build_event(cls, event_id=f"ubl-cn-{digest(seller.tax_id, number, issued.isoformat(), size=32)}",
                       tenant=tenant, source="ubl", occurred_at=datetime.combine(issued, time(0), UTC),
                       payload=payload)
