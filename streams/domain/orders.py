"""Stage 1 for purchase orders and their shipments, keyed by PO id.

Emits the order's state to its supplier, and one delivery observation (on time or late)
when the goods are received: stage 2 turns those into the fulfilment score.

Orders and shipments are separate topics, and Kafka orders records within a partition
only: when both topics are backlogged a worker may read a delivery before the
confirmation that preceded it. The lifecycle is therefore kept as facts that only ever
become true (confirmed, cancelled, delivered), and the status a signal carries is a
function of those facts alone, never of the order in which they arrived:

    delivered  if the goods were received   (whatever else is true)
    cancelled  if the buyer cancelled       (and nothing was received)
    confirmed  if the supplier confirmed    (and neither of the above)
    issued     otherwise

So a confirmation read after the delivery cannot make a delivered order count again
(issue 19: six of 34 borrowers over-lent after a 5 s pause of the worker).
"""

from __future__ import annotations

from typing import Any

from schemas import events as ev
from streams.domain.signals import Output, Rejected, alert, first_time, signal

State = dict[str, Any]


MAX_EARLY_SHIPMENTS = 10


def new_state(po_id: str) -> State:
    return {"po": po_id, "status": None, "seen": [], "seq": 0, "delivered": False, "early": []}


def status_of(state: State) -> str:
    """The order's status from its lifecycle facts (see the module docstring)."""
    if state["delivered"]:
        return "delivered"
    if state.get("cancelled", state["status"] == "cancelled"):
        return "cancelled"
    if state.get("confirmed", state["status"] == "confirmed"):
        return "confirmed"
    return "issued"


def on_event(state: State, event: ev.Envelope) -> list[Output]:
    if not first_time(state, event):
        return []
    p = event.payload  # type: ignore[attr-defined]
    at = event.occurred_at.timestamp()
    ids = [event.event_id]
    if isinstance(event, ev.PurchaseOrderIssued):
        if state["status"] is not None:
            raise Rejected("duplicate_order", f"purchase order {p.po_id} was already issued")
        state.update(status="issued", confirmed=False, cancelled=False, buyer_id=p.buyer_id,
                     supplier_id=p.supplier_id, amount=str(p.amount.amount), currency=p.amount.currency,
                     due=p.delivery_due.timestamp())
        outs = [_signal(state, at, ids)]
        # Shipments that overtook their order (another topic) are applied now.
        early, state["early"] = state["early"], []
        for raw in early:
            shipment = ev.ShipmentObserved.model_validate(raw)
            try:
                outs += _shipment(state, shipment)
            except Rejected as exc:
                outs.append(alert("SHIPMENT_REJECTED", "warning", str(exc), at,
                                  [shipment.event_id], p.supplier_id, p.po_id))
        return outs
    if state["status"] is None and isinstance(event, ev.ShipmentObserved):
        if len(state["early"]) >= MAX_EARLY_SHIPMENTS:
            raise Rejected("unknown_order", f"shipment for purchase order {p.po_id} that was never issued")
        state["early"].append(event.model_dump(mode="json"))
        return []
    if state["status"] is None:
        raise Rejected("unknown_order", f"{event.type} for purchase order {p.po_id} that was never issued")
    if p.supplier_id != state["supplier_id"]:
        raise Rejected("party_mismatch", f"{event.type} names supplier {p.supplier_id}, the order is "
                       f"with {state['supplier_id']}")
    if isinstance(event, ev.PurchaseOrderConfirmed):
        return _set(state, "confirmed", at, ids)
    if isinstance(event, ev.PurchaseOrderCancelled):
        return _set(state, "cancelled", at, ids)
    if isinstance(event, ev.ShipmentObserved):
        return _shipment(state, event)
    raise Rejected("unsupported_event", f"{event.type} does not apply to orders")


def _set(state: State, fact: str, at: float, ids: list[str]) -> list[Output]:
    """Record a lifecycle fact; signal only when the status it implies changes."""
    before = status_of(state)
    state[fact] = True
    state["status"] = status_of(state)
    return [] if state["status"] == before else [_signal(state, at, ids)]


def _shipment(state: State, event: ev.ShipmentObserved) -> list[Output]:
    p = event.payload
    at = event.occurred_at.timestamp()
    ids = [event.event_id]
    if p.supplier_id != state["supplier_id"]:
        raise Rejected("party_mismatch", f"shipment names supplier {p.supplier_id}, the order is "
                       f"with {state['supplier_id']}")
    done = p.disposition == ev.Disposition.delivered or p.biz_step in (
        ev.BizStep.receiving, ev.BizStep.accepting)
    if not done or state["delivered"]:
        return []
    state["delivered"] = True
    state["status"] = status_of(state)
    on_time = p.actual_at <= p.planned_at
    state["seq"] += 1
    return [signal("delivery", state["supplier_id"], state["po"], state["seq"], at, ids,
                   on_time=on_time, planned_at=p.planned_at.timestamp(),
                   actual_at=p.actual_at.timestamp()),
            _signal(state, at, ids)]


def _signal(state: State, at: float, ids: list[str]) -> Output:
    state["seq"] += 1
    return signal("order", state["supplier_id"], state["po"], state["seq"], at, ids,
                  status=status_of(state), buyer_id=state["buyer_id"],
                  amount=state["amount"], currency=state["currency"], due=state["due"])
