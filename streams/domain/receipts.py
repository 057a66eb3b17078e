"""Stage 1 for warehouse receipts (仓单): issued, pledged, released, and the stock under them.

State per receipt, keyed by its identity (warehouse and receipt number, see
schemas.events.receipt_key), so every event of one receipt, from the warehouse, the
borrower's platform or an EPCIS feed, meets in one partition. That is the invoices'
duplicate guard (duplicates.py): the first pledge owns the receipt for its whole life;
a second pledge of it, by the same or another borrower, while pledged or after its
release, raises DUPLICATE_FINANCING and counts for nothing. A release ends the
receipt's financing for good (released goods leave the warehouse; new goods get a new
receipt), as a paid invoice is never financed again.

Stage 1 records quantities, not values: the receipt's signal carries commodity,
quantity and unit, and stage 2 values it at the latest price of the program's price
feed with the program's haircut (inventory_policy.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas import events as ev
from streams.domain.duplicates import duplicate_financing
from streams.domain.signals import Output, Rejected, alert, first_time, signal

State = dict[str, Any]
SEEN_IDS = 32


def new_state(key: str) -> State:
    return {"key": key, "status": None, "seen": [], "seq": 0}


def on_event(state: State, event: ev.Envelope) -> list[Output]:
    """Apply one receipt event; refusals raise before any change that matters (the
    processor works on a copy)."""
    if not first_time(state, event, SEEN_IDS):
        return []
    p = event.payload  # type: ignore[attr-defined]
    at = event.occurred_at.timestamp()
    ids = [event.event_id]
    name = f"Warehouse receipt {p.receipt_id} of {p.warehouse_id}"
    if isinstance(event, ev.ReceiptIssued):
        if state["status"] is not None:
            raise Rejected("receipt_exists", f"{name} was issued already")
        state.update(status="issued", warehouse_id=p.warehouse_id, receipt_id=p.receipt_id, owner=p.owner_id,
                     commodity=p.commodity, quantity=str(p.quantity), unit=p.unit, borrower=None)
        return []
    if state["status"] is None:
        # Stock movements count from the receipt's issue, whose quantity is what the
        # warehouse holds then: one before it would be counted twice or not at all.
        raise Rejected("unknown_receipt", f"{event.type} for {name}, which was never issued")
    if isinstance(event, ev.StockMoved):
        if p.unit is not None and p.unit != state["unit"]:
            raise Rejected("unit_mismatch", f"a movement in {p.unit} for {name}, which is kept in {state['unit']}")
        return _move(state, p.direction.value, p.quantity, at, ids, event.tenant)
    if isinstance(event, ev.ReceiptPledged):
        if state["status"] in ("pledged", "released"):
            return [duplicate_financing(name, "borrower", state["borrower"], p.borrower_id, state["status"],
                                        state["status"] == "pledged", at, ids, state["key"], event.tenant)]
        if p.borrower_id != state["owner"]:
            raise Rejected("not_receipt_owner", f"{name} was issued to {state['owner']}, not {p.borrower_id}")
        state["status"], state["borrower"] = "pledged", p.borrower_id
        return [_signal(state, at, ids)]
    # ReceiptReleased
    if state["status"] != "pledged" or state["borrower"] != p.borrower_id:
        raise Rejected("not_pledged", f"{name} is not pledged by {p.borrower_id}")
    state["status"] = "released"
    return [_signal(state, at, ids)]


def _move(state: State, direction: str, quantity: Decimal, at: float, ids: list[str],
          tenant: str | None) -> list[Output]:
    held = Decimal(state["quantity"])
    if direction == "out" and quantity > held:
        raise Rejected("stock_below_zero", f"{quantity} {state['unit']} out of receipt {state['receipt_id']}, "
                       f"which holds {held}")
    state["quantity"] = str(held + quantity if direction == "in" else held - quantity)
    if state["status"] != "pledged":
        return []
    outs = []
    if direction == "out":
        # Goods leaving the warehouse under a pledged receipt: the pledge must be released
        # (or the loan repaid) first. The value falls at once; the lender is told.
        outs.append(alert("STOCK_OUT_UNDER_PLEDGE", "critical",
                          f"{quantity} {state['unit']} of {state['commodity']} left warehouse "
                          f"{state['warehouse_id']} under pledged receipt {state['receipt_id']}; "
                          f"{state['quantity']} {state['unit']} remain and count.",
                          at, ids, state["borrower"], state["key"], tenant))
    return [*outs, _signal(state, at, ids)]


def _signal(state: State, at: float, ids: list[str]) -> Output:
    state["seq"] += 1
    return signal("receipt", state["borrower"], state["key"], state["seq"], at, ids, status=state["status"],
                  warehouse_id=state["warehouse_id"], receipt_id=state["receipt_id"],
                  commodity=state["commodity"], quantity=state["quantity"], unit=state["unit"])
