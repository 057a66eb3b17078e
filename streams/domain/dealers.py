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
# Units whose sale or repayment arrived before their pickup, kept per dealer.
MAX_EARLY = 256

State = dict[str, Any]


def new_state(dealer_id: str) -> State:
    return {"dealer": dealer_id, "oem": None, "units": {}, "plans": {}, "retired": [], "early": {},
            "audit": None, "seen": [], "seq": 0, "ts": 0.0}


def on_event(state: State, event: ev.Envelope) -> list[Output]:
    """Apply one dealer event; refused events raise before any change that matters
    (the processor works on a copy, so a refusal leaves the stored state as it was).

    Every fact here only becomes true or is kept latest-by-event-time (a unit's pickup,
    sale and repayment times, the latest plan per month, the latest audit), so the
    state does not depend on the order in which two publishers' events (the OEM's
    pickups, the dealer system's sales) reach the topic."""
    if not first_time(state, event, SEEN_IDS):
        return []
    p = event.payload  # type: ignore[attr-defined]
    at = event.occurred_at.timestamp()
    ids = [event.event_id]
    dealer = state["dealer"]
    units = state["units"]
    state.setdefault("early", {})  # states from before the early buffer
    if isinstance(event, ev.DealerPlan):
        state["oem"] = p.oem_id
        old = state["plans"].get(p.month)
        if old is None or at >= old.get("at", 0.0):
            state["plans"][p.month] = {"amount": str(p.amount.amount), "currency": p.amount.currency,
                                       "units": p.units, "at": at}
    elif isinstance(event, ev.UnitPickedUp):
        if p.unit_id in units or p.unit_id in state["retired"]:
            # The same serial financed twice: the second pickup counts for nothing.
            return [alert("DUPLICATE_FINANCING", "critical",
                          f"Unit {p.unit_id} was picked up again by dealer {dealer} although it is "
                          "already financed under the floor plan; it is not counted again.",
                          at, ids, dealer, p.unit_id, event.tenant)]
        state["oem"] = p.oem_id
        early = state["early"].pop(p.unit_id, {})
        units[p.unit_id] = {"price": str(p.wholesale_price.amount), "currency": p.wholesale_price.currency,
                            "picked": at, "sold": early.get("sold"), "repaid": early.get("repaid"),
                            "missing": False}
    elif isinstance(event, ev.RetailSale | ev.UnitRepaid):
        fact = "sold" if isinstance(event, ev.RetailSale) else "repaid"
        unit = units.get(p.unit_id)
        if unit is None:
            unit = _early(state, p.unit_id, dealer)
        if fact == "sold" and unit.get("sold") is not None:
            raise Rejected("unit_already_sold", f"unit {p.unit_id} of dealer {dealer} was sold already")
        if unit.get(fact) is None:
            unit[fact] = at
    elif isinstance(event, ev.StockAudit):
        audit = state.get("audit")
        if audit is None or at >= audit["at"]:
            state["audit"] = {"at": at, "id": p.audit_id, "present": sorted(set(p.present_unit_ids)),
                              "ids": ids}
    out = _mark_missing(state, at)
    state["ts"] = max(state["ts"], at)
    _prune(state)
    state["seq"] += 1
    out.append(signal("dealer", dealer, dealer, state["seq"], at, ids, oem=state["oem"],
                      units=units, plans=state["plans"]))
    return out


def _early(state: State, unit_id: str, dealer: str) -> dict[str, Any]:
    """A sale or repayment read before its unit's pickup: kept (up to MAX_EARLY units)
    and applied when the pickup arrives. Until then it counts for nothing: a sale is
    verified only when the OEM's pickup and the retail report of the unit agree."""
    early = state["early"]
    if unit_id not in early and len(early) >= MAX_EARLY:
        raise Rejected("unknown_unit", f"unit {unit_id} was never picked up by dealer {dealer} "
                       f"({MAX_EARLY} units already wait for their pickup)")
    unit: dict[str, Any] = early.setdefault(unit_id, {})
    return unit


def _mark_missing(state: State, at: float) -> list[Output]:
    """A unit is missing when the latest audit, taken after its pickup, did not find it
    while it was in financed stock (not sold, not repaid); alert on the transition."""
    audit = state.get("audit")
    present = set(audit["present"]) if audit else set()
    out: list[Output] = []
    for uid, unit in sorted(state["units"].items()):
        missing = (audit is not None and unit["picked"] <= audit["at"] and unit["sold"] is None
                   and unit["repaid"] is None and uid not in present)
        if missing and not unit["missing"]:
            out.append(alert("UNIT_MISSING_AT_AUDIT", "critical",
                             f"Unit {uid} was not found at stock audit {audit['id']} of dealer "  # type: ignore[index]
                             f"{state['dealer']}; its share of the limit is frozen.",
                             at, audit["ids"], state["dealer"], uid))  # type: ignore[index]
        unit["missing"] = missing
    return out


def _prune(state: State) -> None:
    horizon = state["ts"] - KEEP_SOLD_DAYS * DAY
    units = state["units"]
    # Repaid (no longer financed) and, if sold, sold before both sales windows.
    done = [uid for uid, u in units.items() if u["repaid"] is not None and u["repaid"] < horizon
            and (u["sold"] is None or u["sold"] < horizon)]
    for uid in done:
        del units[uid]
    state["retired"] = [*state["retired"], *done][-RETIRED_IDS:]
