"""Stage 1 for invoices, keyed by fingerprint: lifecycle and the duplicate-financing registry.

The first seller to issue an invoice owns its fingerprint for the invoice's whole life
and after it: paid and cancelled invoices keep their state (it is never deleted). Any
later ``invoice.issued`` with the same fingerprint, by the same or another seller, live
or closed, is a re-presentation: it raises DUPLICATE_FINANCING and is not counted. A
fingerprint is one real invoice (seller tax id, number, amount, currency, issue date),
and an invoice once paid or cancelled is never legitimately financed again (a corrected
invoice gets a new number), so there is no age after which forgetting it would be safe.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas import events as ev
from streams.domain.duplicates import duplicate_financing
from streams.domain.signals import Output, Rejected, first_time, signal, tax_ref

State = dict[str, Any]
LIVE = {"issued", "confirmed", "disputed", "partially_paid"}


def new_state(fingerprint: str) -> State:
    return {"fp": fingerprint, "status": None, "seen": [], "seq": 0}


def on_event(state: State, event: ev.Envelope) -> list[Output]:
    if not first_time(state, event):
        return []
    p = event.payload  # type: ignore[attr-defined]
    at = event.occurred_at.timestamp()
    ids = [event.event_id]
    fp = state["fp"]
    if isinstance(event, ev.InvoiceIssued):
        if state["status"] is not None:
            return [duplicate_financing(f"Invoice {p.invoice.invoice_number}", "seller", state["seller_id"],
                                        p.seller_id, state["status"], state["status"] in LIVE, at, ids, fp,
                                        event.tenant)]
        state.update(status="issued", seller_id=p.seller_id, buyer_id=p.buyer_id,
                     seller_tax_ref=tax_ref(p.invoice.seller_tax_id),
                     number=p.invoice.invoice_number, amount=str(p.invoice.total.amount),
                     currency=p.invoice.total.currency, paid="0",
                     issue_date=p.invoice.issue_date.isoformat(), due_date=p.due_date.isoformat(),
                     po_id=p.po_id, ids=ids)
        return [_signal(state, at, ids)]
    if state["status"] is None:
        raise Rejected("unknown_invoice", f"{event.type} for invoice {p.invoice.invoice_number} "
                       "that was never issued")
    if p.buyer_id != state["buyer_id"] or p.seller_id != state["seller_id"]:
        raise Rejected("party_mismatch", f"{event.type} names seller {p.seller_id} / buyer {p.buyer_id}, "
                       f"the invoice is from {state['seller_id']} to {state['buyer_id']}")
    if state["status"] in ("paid", "cancelled"):
        raise Rejected("invoice_closed", f"{event.type} for invoice already {state['status']}")
    if isinstance(event, ev.InvoiceConfirmed):
        # A dispute resolved by a fresh confirmation makes the invoice eligible again.
        if state["status"] in ("issued", "disputed"):
            state["status"] = "confirmed"
    elif isinstance(event, ev.InvoiceDisputed):
        state["status"] = "disputed"
    elif isinstance(event, ev.InvoicePaid):
        state["status"], state["paid"] = "paid", state["amount"]
    elif isinstance(event, ev.InvoicePartiallyPaid):
        paid = Decimal(state["paid"]) + p.paid.amount
        state["paid"] = str(min(paid, Decimal(state["amount"])))
        if paid >= Decimal(state["amount"]):
            state["status"] = "paid"
    elif isinstance(event, ev.InvoiceCancelled):
        state["status"] = "cancelled"
    return [_signal(state, at, ids)]


def _signal(state: State, at: float, ids: list[str]) -> Output:
    state["seq"] += 1
    outstanding = Decimal(state["amount"]) - Decimal(state["paid"])
    return signal("receivable", state["seller_id"], state["fp"], state["seq"], at, ids,
                  status=state["status"], buyer_id=state["buyer_id"], number=state["number"],
                  outstanding=str(outstanding), currency=state["currency"],
                  issue_date=state["issue_date"], due_date=state["due_date"], po_id=state["po_id"],
                  seller_tax_ref=state.get("seller_tax_ref"))
