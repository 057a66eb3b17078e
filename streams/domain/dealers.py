"""Stage 1 for dealers (以销定融): each financed unit from pickup to retail sale.

State per dealer (keyed by dealer id on cs.dealers, so one partition orders all of a
dealer's events): every unit it picked up under the floor plan, by serial or VIN, with
its wholesale price and the event times of pickup, retail sale and repayment, whether
the last stock audit missed it, and the OEM's production plan per month. Stage 2 gets
the whole state as one ``dealer`` signal and applies the time-driven rules (sales
windows, repayment after sale, curtailment by age) at its own watermark
(dealer_policy.py): stage 1 records facts, it does not judge time.
"""

from __future__ import annotations

from typing import Any

from schemas import events as ev
from streams.domain.signals import Output, Rejected, alert, first_time, signal

DAY = 86400.0
SEEN_IDS = 64
# Units sold and repaid drop out of the state once they are older than every window
# that could still count them (two 30-day sales windows); their ids are kept (bounded)
# so a unit financed again is still recognised.
KEEP_SOLD_DAYS = 60
RETIRED_IDS = 2000

State = dict[str, Any]


def new_state(dealer_id: str) -> State:
    return {"dealer": dealer_id, "oem": None, "units": {}, "plans": {}, "retired": [],
            "seen": [], "seq": 0, "ts": 0.0}


def on_event(state: State, event: ev.Envelope) -> list[Output]:
    """Apply one dealer event; refused events raise before any change that matters
    (the processor works on a copy, so a refusal leaves the stored state as it was)."""
    if not first_time(state, event, SEEN_IDS):
        return []
    p = event.payload  # type: ignore[attr-defined]
    at = event.occurred_at.timestamp()
    ids = [event.event_id]
    dealer = state["dealer"]
    units = state["units"]
    out: list[Output] = []
    if isinstance(event, ev.DealerPlan):
        state["oem"] = p.oem_id
        state["plans"][p.month] = {"amount": str(p.amount.amount), "currency": p.amount.currency,
                                   "units": p.units}
    elif isinstance(event, ev.UnitPickedUp):
        if p.unit_id in units or p.unit_id in state["retired"]:
            # The same serial financed twice: the second pickup counts for nothing.
            return [alert("DUPLICATE_FINANCING", "critical",
                          f"Unit {p.unit_id} was picked up again by dealer {dealer} although it is "
                          "already financed under the floor plan; it is not counted again.",
                          at, ids, dealer, p.unit_id, event.tenant)]
        state["oem"] = p.oem_id
        units[p.unit_id] = {"price": str(p.wholesale_price.amount), "currency": p.wholesale_price.currency,
                            "picked": at, "sold": None, "repaid": None, "missing": False}
    elif isinstance(event, ev.RetailSale):
        unit = _known(units, p.unit_id, dealer)
        if unit["sold"] is not None:
            raise Rejected("unit_already_sold", f"unit {p.unit_id} of dealer {dealer} was sold already")
        unit["sold"], unit["missing"] = at, False  # a sold unit leaves the lot: not missing
    elif isinstance(event, ev.UnitRepaid):
        unit = _known(units, p.unit_id, dealer)
        if unit["repaid"] is None:
            unit["repaid"] = at
    elif isinstance(event, ev.StockAudit):
        present = set(p.present_unit_ids)
        for uid, unit in sorted(units.items()):
            if unit["sold"] is not None or unit["repaid"] is not None or unit["picked"] > at:
                continue  # not in financed stock at the audit
            missing = uid not in present
            if missing and not unit["missing"]:
                out.append(alert("UNIT_MISSING_AT_AUDIT", "critical",
                                 f"Unit {uid} was not found at stock audit {p.audit_id} of dealer {dealer}; "
                                 "its share of the limit is frozen.", at, ids, dealer, uid))
            unit["missing"] = missing
    state["ts"] = max(state["ts"], at)
    _prune(state)
    state["seq"] += 1
    out.append(signal("dealer", dealer, dealer, state["seq"], at, ids, oem=state["oem"],
                      units=units, plans=state["plans"]))
    return out


def _known(units: dict[str, Any], unit_id: str, dealer: str) -> dict[str, Any]:
    unit = units.get(unit_id)
    if unit is None:
        # A sale or repayment of a unit the dealer never picked up under the floor plan:
        # not a verified sale (the two signals are the OEM's pickup and the retail report).
        raise Rejected("unknown_unit", f"unit {unit_id} was never picked up by dealer {dealer}")
    return unit


def _prune(state: State) -> None:
    horizon = state["ts"] - KEEP_SOLD_DAYS * DAY
    units = state["units"]
    # Repaid (no longer financed) and, if sold, sold before both sales windows.
    done = [uid for uid, u in units.items() if u["repaid"] is not None and u["repaid"] < horizon
            and (u["sold"] is None or u["sold"] < horizon)]
    for uid in done:
        del units[uid]
    state["retired"] = [*state["retired"], *done][-RETIRED_IDS:]
