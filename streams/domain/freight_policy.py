"""The freight component of a limit: a carrier's waybills whose delivery the truck's
trajectory corroborated are receivables against their shippers.

Pure: ``now`` is the facility's event-time watermark. Formulas, parameters, reasons and
a worked example are in docs/credit-policy.md section 1.6; stage 1 (freight.py) judges
the trajectory, this module only counts what it judged.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from streams.domain.signals import utc_time

if TYPE_CHECKING:  # facility imports this module
    from streams.domain.facility import FacilityState

DAY = 86400.0
# A waybill whose truck never reached the consignee is said (FREIGHT_NOT_DELIVERED) for
# this long after its completion, and kept in the facility's state twice as long.
NOT_DELIVERED_DAYS = 30


def forget_closed(assets: dict[str, Any], now: float) -> None:
    """Drop what can never count again from one kind of a facility's assets: paid
    waybills and released receipts, and waybills never delivered, 2 x NOT_DELIVERED_DAYS
    after their completion. Decisions skip them anyway, so this only bounds the state
    (their sequence numbers stay in ``seqs``: a late copy of an older signal is ignored)."""
    horizon = now - 2 * NOT_DELIVERED_DAYS * DAY
    for key in [k for k, a in assets.items() if a.get("status") in ("paid", "released")
                or (a.get("status") == "not_reached" and a["completed"] < horizon)]:
        del assets[key]


def freight_components(state: FacilityState, params: Any, now: float, currency: str, unit: Decimal,
                       reasons: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One component per corroborated, unpaid waybill: amount x freight_advance_rate x
    the shipper's buyer factor (its distress counts as a buyer's does)."""
    today = utc_time(now).date()
    components = []
    for wid, w in sorted(state["assets"].get("freight", {}).items()):
        status = w["status"]
        if status == "paid" or w["currency"] != currency:
            continue
        if status == "awaiting":
            reasons.append(("FREIGHT_UNCORROBORATED", f"Waybill {wid} counts once truck {w['truck_id']}'s "
                            "positions show it reached the consignee within the delivery window."))
            continue
        if status == "not_reached":
            if now - w["completed"] > NOT_DELIVERED_DAYS * DAY:
                continue  # said for 30 days; it never counts
            reasons.append(("FREIGHT_NOT_DELIVERED", f"Truck {w['truck_id']}'s positions never reached the "
                            f"consignee of waybill {wid} within its delivery window; it does not count."))
            continue
        due = date.fromisoformat(w["due_date"])
        if due < today:
            reasons.append(("FREIGHT_OVERDUE", f"Waybill {wid} is past its due date and does not count."))
            continue
        if (due - utc_time(w["completed"]).date()).days > params.max_tenor_days:
            reasons.append(("FREIGHT_TENOR_TOO_LONG", f"Waybill {wid} is due in more than "
                            f"{params.max_tenor_days} days and does not count."))
            continue
        b = state["buyers"].get(w["shipper_id"], {"factor": 1.0, "status": "healthy"})
        factor = Decimal(str(b["factor"]))
        if factor < 1:
            code = "BUYER_DISTRESSED" if b["status"] == "distressed" else "BUYER_WATCH"
            words = "in distress" if b["status"] == "distressed" else "under watch"
            reasons.append((code, f"Your shipper {w['shipper_id']} is {words}; its waybills count at {factor:.0%}."))
        amount = Decimal(w["amount"]) * params.freight_advance_rate * factor
        components.append({"kind": "freight", "asset_id": wid, "frozen": False,
                           "contribution": amount.quantize(unit, rounding=ROUND_DOWN),
                           "detail": {"shipper": w["shipper_id"], "truck": w["truck_id"],
                                      "reached_at": utc_time(w["reached_at"]).isoformat(),
                                      "buyer_factor": str(factor)}})
    return components
