"""Invoices to ``invoice.issued`` events (pure): UBL 2.1 / Peppol BIS 3.0 XML, Chinese VAT JSON.

Parties become creditstream party ids through a party map keyed by tax id (the id both
sides of an invoice agree on); without an entry the tax id itself is the party id. UBL
parties without a VAT number are identified by their Peppol ids (``ubl_parties``). A
missing due date is the issue date plus the payment terms (``terms_days``, default 30).
Event ids derive from the invoice fingerprint, so importing a file twice is harmless.
UBL credit notes reduce the invoice they credit (``credit_notes``). Refusal texts are
our own: a value the contract cannot carry is named with the rule it breaks, never with
the validation library's message.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element

import orjson

from connectors.sources import safexml, ubl_parties, vat_keys
from connectors.sources.common import Outcome, RejectedItem, SourceError, build_event, item_rejected
from connectors.sources.credit_notes import InvoiceIndex, map_credit_note
from schemas.events import InvoiceIssued

CHINA = timezone(timedelta(hours=8))
DEFAULT_TERMS_DAYS = 30
INVOICE_NUMBER = re.compile(r"[A-Za-z0-9\-/]{1,32}")  # schemas.events.InvoiceRef.invoice_number
# Peppol's "no purchase order" placeholder: OrderReference/ID is mandatory when a sales
# order is referenced, so "NA" stands in for the purchase order that does not exist.
NO_ORDER = frozenset({"NA", "N/A"})


def _tax_id(value: Any, what: str) -> str:
    if value is None or value == "":
        raise SourceError("missing_field", f"{what} tax id is required")
    tid = re.sub(r"[\s.\-]", "", str(value)).upper()
    if not re.fullmatch(r"[A-Z0-9]{8,20}", tid):
        raise SourceError("bad_tax_id", f"{what} tax id {value!r} is not 8-20 letters and digits")
    return tid


def _date(value: Any, what: str) -> date:
    if not isinstance(value, str):
        raise SourceError("missing_field", f"{what} is required")
    # Exports often give the issue time too ("2024-03-06 10:22:33"): the day is the date.
    v = value.strip().split(" ")[0].split("T")[0]
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%Y年%m月%d日"):
        try:
            return datetime.strptime(v, fmt).date()
        except ValueError:
            continue
    raise SourceError("bad_date", f"{what} {value!r} is not a date (YYYY-MM-DD)")


def _amount(value: Any, what: str) -> Decimal:
    if isinstance(value, bool | float) or value is None:
        raise SourceError("bad_amount", f"{what} must be a decimal string or integer, got {value!r}")
    try:
        out = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise SourceError("bad_amount", f"{what} {value!r} is not a decimal number") from None
    if not out.is_finite():
        raise SourceError("bad_amount", f"{what} must be finite")
    return out


def _event(*, tenant: str, source: str, number: str, seller_tax: str, seller_id: str,
           buyer_id: str, issue: date, due: date, total: Decimal, currency: str, po_id: str | None,
           tz: timezone) -> InvoiceIssued:
    from pydantic import ValidationError

    from schemas.codec import errors_of
    from schemas.events import InvoiceRef  # fingerprint lives on the contract model

    if not INVOICE_NUMBER.fullmatch(number):
        raise SourceError("bad_invoice_number", f"invoice number {number[:64]!r} cannot be carried: at most "
                          "32 letters, digits, '-' or '/' (country formats such as Greece's '|'-separated "
                          "numbers are not supported)")
    invoice = {"seller_tax_id": seller_tax, "invoice_number": number, "issue_date": issue,
               "total": {"amount": str(total), "currency": currency}}
    try:
        fingerprint = InvoiceRef.model_validate(invoice).fingerprint()
    except ValidationError as exc:
        detail = "; ".join(f"invoice.{e['field']}: {e['rule']}" for e in errors_of(exc))
        raise SourceError("invalid_event", detail) from None
    payload = {"invoice": invoice, "seller_id": seller_id, "buyer_id": buyer_id, "due_date": due, "po_id": po_id}
    return build_event(  # type: ignore[return-value]
        InvoiceIssued, event_id=f"{source}-{fingerprint}", tenant=tenant, source=source,
        occurred_at=datetime.combine(issue, time(0), tz),
        payload={k: v for k, v in payload.items() if v is not None})


# ---------------------------------------------------------------- UBL 2.1 / Peppol BIS 3.0
def _order(root: Element) -> str | None:
    po = safexml.text(root, "OrderReference", "ID")
    return None if po is None or po.strip().upper() in NO_ORDER else po


def map_ubl(root: Element, *, tenant: str, party_map: dict[str, str] | None = None,
            terms_days: int = DEFAULT_TERMS_DAYS) -> InvoiceIssued:
    """A parsed UBL ``Invoice`` -> ``invoice.issued``; raise :class:`SourceError` if unusable."""
    name = safexml.local(root.tag) if isinstance(root.tag, str) else "?"
    if name != "Invoice":
        raise SourceError("not_an_invoice", f"root element is <{name}>, not a UBL <Invoice>")
    number = safexml.text(root, "ID")
    if not number:
        raise SourceError("missing_field", "cbc:ID (invoice number) is required")
    issue = _date(safexml.text(root, "IssueDate"), "IssueDate")
    due_text = safexml.text(root, "DueDate") or safexml.text(root, "PaymentMeans", "PaymentDueDate")
    due = _date(due_text, "DueDate") if due_text else issue + timedelta(days=terms_days)
    currency = safexml.text(root, "DocumentCurrencyCode")
    payable = safexml.path(root, "LegalMonetaryTotal", "PayableAmount")
    if payable is None or not (payable.text or "").strip():
        raise SourceError("missing_field", "LegalMonetaryTotal/PayableAmount is required")
    amount_currency = payable.attrib.get("currencyID")
    if currency and amount_currency and amount_currency != currency:
        raise SourceError("currency_mismatch", f"PayableAmount is in {amount_currency}, "
                          f"the document in {currency}")
    currency = currency or amount_currency
    if not currency:
        raise SourceError("missing_field", "DocumentCurrencyCode is required")
    seller = ubl_parties.identify(safexml.path(root, "AccountingSupplierParty", "Party"), "AccountingSupplierParty")
    buyer = ubl_parties.identify(safexml.path(root, "AccountingCustomerParty", "Party"), "AccountingCustomerParty")
    pm = party_map or {}
    return _event(tenant=tenant, source="ubl", number=number, seller_tax=seller.tax_id,
                  seller_id=ubl_parties.party_id(seller, pm), buyer_id=ubl_parties.party_id(buyer, pm),
                  issue=issue, due=due, total=_amount(payable.text, "PayableAmount"),
                  currency=currency, po_id=_order(root), tz=UTC)


def document_kind(body: bytes) -> str:
    """The root element's local name (``Invoice``, ``CreditNote``), or "" when unreadable."""
    try:
        root = safexml.parse(body)
    except SourceError:
        return ""
    return safexml.local(root.tag) if isinstance(root.tag, str) else ""


def parse_ubl(body: bytes, *, tenant: str, origin: str = "ubl", party_map: dict[str, str] | None = None,
              terms_days: int = DEFAULT_TERMS_DAYS, index: InvoiceIndex | None = None) -> Outcome:
    """One UBL XML document (parsed safely) -> an outcome with its event or its refusal.

    An ``Invoice`` is added to ``index`` once mapped; a ``CreditNote`` is looked up in it.
    """
    out = Outcome()
    index = index if index is not None else InvoiceIndex()
    try:
        root = safexml.parse(body)
        if isinstance(root.tag, str) and safexml.local(root.tag) == "CreditNote":
            out.events.append(map_credit_note(root, tenant=tenant, index=index, parse_date=_date, amount=_amount))
        else:
            event = map_ubl(root, tenant=tenant, party_map=party_map, terms_days=terms_days)
            index.add(event)
            out.events.append(event)
    except SourceError as exc:
        out.rejected.append(RejectedItem(origin, exc.reason, exc.message, body))
    return out


# ---------------------------------------------------------------- Chinese VAT invoices (JSON)
def _field(inv: dict[str, Any], name: str) -> Any:
    for key in vat_keys.ALIASES[name]:
        if key in inv:
            return inv[key]
    nested = {"seller_name": ("seller", "name"), "seller_tax_id": ("seller", "tax_id"),
              "buyer_name": ("buyer", "name"), "buyer_tax_id": ("buyer", "tax_id")}.get(name)
    if nested and isinstance(inv.get(nested[0]), dict):
        return inv[nested[0]].get(nested[1])
    return None


def map_vat(inv: Any, *, tenant: str, party_map: dict[str, str] | None = None,
            terms_days: int = DEFAULT_TERMS_DAYS) -> InvoiceIssued:
    """One VAT invoice object -> ``invoice.issued``; raise :class:`SourceError` if unusable.

    Legacy invoices have a 10- or 12-digit code and an 8-digit number (the invoice number
    becomes ``<code>-<number>``); fully digital invoices have a 20-digit number and no code.
    """
    if not isinstance(inv, dict):
        raise SourceError("not_an_invoice", "a VAT invoice is a JSON object")
    code = str(_field(inv, "invoice_code") or "").strip()
    number = str(_field(inv, "invoice_number") or "").strip()
    if re.fullmatch(r"\d{20}", number) and not code:
        invoice_number = number
    elif re.fullmatch(r"\d{10}|\d{12}", code) and re.fullmatch(r"\d{8}", number):
        invoice_number = f"{code}-{number}"
    else:
        raise SourceError("bad_invoice_number", f"invoice code {code!r} and number {number!r}: expected a "
                          "10/12-digit code with an 8-digit number, or a 20-digit fully digital number")
    issue = _date(_field(inv, "issue_date"), "issue_date")
    amount = _amount(_field(inv, "amount"), "amount")
    tax = _amount(_field(inv, "tax"), "tax")
    total = _amount(_field(inv, "total"), "total") if _field(inv, "total") is not None else amount + tax
    if amount + tax != total:
        raise SourceError("total_mismatch", f"amount {amount} + tax {tax} != total {total}")
    # Names are not required: the tax ids identify the parties, and exports often omit names.
    due_raw = _field(inv, "due_date")
    due = _date(due_raw, "due_date") if due_raw else issue + timedelta(days=terms_days)
    po = _field(inv, "po_id")
    seller, buyer = _tax_id(_field(inv, "seller_tax_id"), "seller"), _tax_id(_field(inv, "buyer_tax_id"), "buyer")
    pm = party_map or {}
    return _event(tenant=tenant, source="vat", number=invoice_number, seller_tax=seller,
                  seller_id=pm.get(seller, seller), buyer_id=pm.get(buyer, buyer), issue=issue, due=due,
                  total=total, currency=str(_field(inv, "currency") or "CNY"),
                  po_id=str(po) if po else None, tz=CHINA)


def parse_vat(body: bytes, *, tenant: str, origin: str = "vat", party_map: dict[str, str] | None = None,
              terms_days: int = DEFAULT_TERMS_DAYS) -> Outcome:
    """A JSON file of one invoice, a list, or ``{"invoices": [...]}`` -> events and refusals."""
    out = Outcome()
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        out.rejected.append(RejectedItem(origin, "malformed_json", f"not JSON: {exc}", body))
        return out
    items = doc.get("invoices") if isinstance(doc, dict) and "invoices" in doc else doc
    for n, inv in enumerate(items if isinstance(items, list) else [items]):
        try:
            out.events.append(map_vat(inv, tenant=tenant, party_map=party_map, terms_days=terms_days))
        except SourceError as exc:
            out.rejected.append(item_rejected(f"{origin}#{n}", exc, inv))
    return out
