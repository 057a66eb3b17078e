"""Invoices to ``invoice.issued`` events (pure): UBL 2.1 / Peppol BIS 3.0 XML, Chinese VAT JSON.

Parties become creditstream party ids through a party map keyed by tax id (the id both
sides of an invoice agree on); without an entry the tax id itself is the party id. A
missing due date is the issue date plus the payment terms (``terms_days``, default 30).
Event ids derive from the invoice fingerprint, so importing a file twice is harmless.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element

import orjson

from connectors.sources import safexml
from connectors.sources.common import Outcome, Rejected, SourceError, build_event, item_rejected
from schemas.events import InvoiceIssued

CHINA = timezone(timedelta(hours=8))
DEFAULT_TERMS_DAYS = 30


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
    v = value.strip()
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


def _event(*, tenant: str, source: str, number: str, seller_tax: str, buyer_tax: str,
           issue: date, due: date, total: Decimal, currency: str, po_id: str | None,
           party_map: dict[str, str], tz: timezone) -> InvoiceIssued:
    from schemas.events import InvoiceRef  # fingerprint lives on the contract model

    invoice = {"seller_tax_id": seller_tax, "invoice_number": number, "issue_date": issue,
               "total": {"amount": str(total), "currency": currency}}
    try:
        fingerprint = InvoiceRef.model_validate(invoice).fingerprint()
    except ValueError as exc:
        raise SourceError("invalid_event", str(exc).replace("\n", " ")) from None
    payload = {"invoice": invoice, "seller_id": party_map.get(seller_tax, seller_tax),
               "buyer_id": party_map.get(buyer_tax, buyer_tax), "due_date": due, "po_id": po_id}
    return build_event(  # type: ignore[return-value]
        InvoiceIssued, event_id=f"{source}-{fingerprint}", tenant=tenant, source=source,
        occurred_at=datetime.combine(issue, time(0), tz),
        payload={k: v for k, v in payload.items() if v is not None})


# ---------------------------------------------------------------- UBL 2.1 / Peppol BIS 3.0
def _party_tax(party: Element | None) -> str | None:
    if party is None:
        return None
    for scheme in safexml.children(party, "PartyTaxScheme"):
        if (v := safexml.text(scheme, "CompanyID")) is not None:
            return v
    return safexml.text(party, "PartyLegalEntity", "CompanyID")


def map_ubl(root: Element, *, tenant: str, party_map: dict[str, str] | None = None,
            terms_days: int = DEFAULT_TERMS_DAYS) -> InvoiceIssued:
    """A parsed UBL ``Invoice`` -> ``invoice.issued``; raise :class:`SourceError` if unusable."""
    name = safexml.local(root.tag) if isinstance(root.tag, str) else "?"
    if name == "CreditNote":
        raise SourceError("unsupported_document", "a CreditNote reduces an invoice; import invoices only")
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
    seller = _tax_id(_party_tax(safexml.path(root, "AccountingSupplierParty", "Party")), "AccountingSupplierParty")
    buyer = _tax_id(_party_tax(safexml.path(root, "AccountingCustomerParty", "Party")), "AccountingCustomerParty")
    return _event(tenant=tenant, source="ubl", number=number, seller_tax=seller, buyer_tax=buyer,
                  issue=issue, due=due, total=_amount(payable.text, "PayableAmount"),
                  currency=currency, po_id=safexml.text(root, "OrderReference", "ID"),
                  party_map=party_map or {}, tz=UTC)


def parse_ubl(body: bytes, *, tenant: str, origin: str = "ubl", party_map: dict[str, str] | None = None,
              terms_days: int = DEFAULT_TERMS_DAYS) -> Outcome:
    """One UBL XML document (parsed safely) -> an outcome with its event or its refusal."""
    out = Outcome()
    try:
        root = safexml.parse(body)
        out.events.append(map_ubl(root, tenant=tenant, party_map=party_map, terms_days=terms_days))
    except SourceError as exc:
        out.rejected.append(Rejected(origin, exc.reason, exc.message, body))
    return out


# ---------------------------------------------------------------- Chinese VAT invoices (JSON)
# English keys, or the pinyin abbreviations of the tax bureau's verification services.
ALIASES = {
    "invoice_code": ("invoice_code", "fpdm"), "invoice_number": ("invoice_number", "fphm"),
    "issue_date": ("issue_date", "kprq"), "seller_name": ("seller_name", "xfmc"),
    "seller_tax_id": ("seller_tax_id", "xfsbh", "xfnsrsbh"), "buyer_name": ("buyer_name", "gfmc"),
    "buyer_tax_id": ("buyer_tax_id", "gfsbh", "gfnsrsbh"), "amount": ("amount", "je", "hjje"),
    "tax": ("tax", "se", "hjse"), "total": ("total", "jshj"), "currency": ("currency",),
    "due_date": ("due_date",), "po_id": ("po_id",),
}


def _field(inv: dict[str, Any], name: str) -> Any:
    for key in ALIASES[name]:
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
    for side in ("seller", "buyer"):
        if not _field(inv, f"{side}_name"):
            raise SourceError("missing_field", f"{side} name is required")
    due_raw = _field(inv, "due_date")
    due = _date(due_raw, "due_date") if due_raw else issue + timedelta(days=terms_days)
    po = _field(inv, "po_id")
    return _event(tenant=tenant, source="vat", number=invoice_number,
                  seller_tax=_tax_id(_field(inv, "seller_tax_id"), "seller"),
                  buyer_tax=_tax_id(_field(inv, "buyer_tax_id"), "buyer"), issue=issue, due=due,
                  total=total, currency=str(_field(inv, "currency") or "CNY"),
                  po_id=str(po) if po else None, party_map=party_map or {}, tz=CHINA)


def parse_vat(body: bytes, *, tenant: str, origin: str = "vat", party_map: dict[str, str] | None = None,
              terms_days: int = DEFAULT_TERMS_DAYS) -> Outcome:
    """A JSON file of one invoice, a list, or ``{"invoices": [...]}`` -> events and refusals."""
    out = Outcome()
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        out.rejected.append(Rejected(origin, "malformed_json", f"not JSON: {exc}", body))
        return out
    items = doc.get("invoices") if isinstance(doc, dict) and "invoices" in doc else doc
    for n, inv in enumerate(items if isinstance(items, list) else [items]):
        try:
            out.events.append(map_vat(inv, tenant=tenant, party_map=party_map, terms_days=terms_days))
        except SourceError as exc:
            out.rejected.append(item_rejected(f"{origin}#{n}", exc, inv))
    return out
