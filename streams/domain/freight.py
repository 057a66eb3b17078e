"""Stage 1 for freight receivables: a carrier's completed waybill, corroborated by the
truck's own trajectory, on the machines lane.

Why here: a waybill is corroborated by the truck's positions, which are telemetry,
keyed by machine id, and the hot path. The waybills topic (cs.waybills) is keyed by
truck id too, so a truck's waybills and positions meet in the same partition of the
machines lane, in the truck's one state: no signal has to carry positions anywhere,
and the hot path pays one dict lookup for a machine that is not an enrolled truck.

What the truck keeps (only an enrolled truck, ``state["truck"]``): a thinned trail of
its positions (one per ``TRAIL_STEP_S`` of event time, ``TRAIL_KEEP_DAYS`` long) and
its waybills. A waybill is judged on the trail only, whichever arrives first:

- corroborated: a trail point inside the destination geofence within the waybill's
  window;
- not reached: the trail has passed the window's end without such a point (telemetry
  older than the truck's latest reading is ignored, so nothing can still fall inside
  the window): WAYBILL_NOT_CORROBORATED;
- awaiting: neither yet.

The trail depends on the telemetry alone and each rule on the trail alone, so the
verdict is the same when the waybill is read before, between or after the positions
(replay and a worker agree), provided the trail still holds the window: a waybill's
window is at most ``MAX_WINDOW_DAYS`` long and it completes at most ``MAX_LATE_DAYS``
after it (else refused), within the trail's ``TRAIL_KEEP_DAYS``. A delivery is a stop
of more than ``TRAIL_STEP_S`` at the consignee, so thinning cannot miss it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schemas import events as ev
from streams.domain.duplicates import duplicate_financing
from streams.domain.geo import haversine_km
from streams.domain.signals import Output, Rejected, alert, first_time, signal

DAY = 86400.0
TRAIL_STEP_S = 600.0
TRAIL_KEEP_DAYS = 5
MAX_WINDOW_DAYS = 2
MAX_LATE_DAYS = 2
SEEN_IDS = 16
# Settled and failed waybills stay this long (their ids guard against a re-presented
# waybill), then only their ids, bounded.
KEEP_CLOSED_DAYS = 60
CLOSED_IDS = 2000

if TYPE_CHECKING:  # the truck's state is its machine's (machines.py imports this module)
    from streams.domain.machines import MachineState as State


def on_event(state: State, event: ev.Envelope) -> list[Output]:
    """A truck's enrolment or one of its waybills (state: the machine's, machines.py)."""
    if not first_time(state, event, SEEN_IDS):
        return []
    p = event.payload  # type: ignore[attr-defined]
    at = event.occurred_at.timestamp()
    ids = [event.event_id]
    if isinstance(event, ev.TruckEnrolled):
        state["truck"] = {"carrier": p.carrier_id, "since": at}
        state.setdefault("trail", [])
        state.setdefault("waybills", {})
        state.setdefault("closed", [])
        return []
    truck = state.get("truck")
    if truck is None:
        raise Rejected("unknown_truck", f"truck {p.truck_id} is not enrolled for freight")
    if p.carrier_id != truck["carrier"]:
        raise Rejected("carrier_mismatch", f"truck {p.truck_id} is enrolled by {truck['carrier']}, "
                       f"not {p.carrier_id}")
    waybills = state["waybills"]
    if isinstance(event, ev.WaybillPaid):
        w = waybills.get(p.waybill_id)
        if w is None:
            raise Rejected("unknown_waybill", f"waybill {p.waybill_id} of truck {p.truck_id} is not open")
        w["status"], w["closed_at"] = "paid", at
        out = [_signal(state, p.waybill_id, at, ids)]
        _prune(state, at)
        return out
    # WaybillCompleted
    start, end = p.window_start.timestamp(), p.window_end.timestamp()
    if end - start > MAX_WINDOW_DAYS * DAY:
        raise Rejected("window_too_long", f"waybill {p.waybill_id}: a delivery window of more than "
                       f"{MAX_WINDOW_DAYS} days cannot be corroborated")
    if at < start or at - end > MAX_LATE_DAYS * DAY:
        raise Rejected("waybill_out_of_window", f"waybill {p.waybill_id} completed outside its window, or more "
                       f"than {MAX_LATE_DAYS} days after it")
    if p.waybill_id in waybills or p.waybill_id in state["closed"]:
        old = waybills.get(p.waybill_id, {"status": "closed", "carrier": truck["carrier"]})
        return [duplicate_financing(f"Waybill {p.waybill_id}", "carrier", old["carrier"], p.carrier_id,
                                    old["status"], old["status"] not in ("paid", "closed"), at, ids,
                                    p.waybill_id, event.tenant)]
    fence = p.destination
    waybills[p.waybill_id] = {
        "carrier": p.carrier_id, "shipper": p.shipper_id, "consignee": p.consignee_id,
        "fence": [fence.center.lat, fence.center.lon, fence.radius_km], "start": start, "end": end,
        "amount": str(p.amount.amount), "currency": p.amount.currency, "due_date": p.due_date.isoformat(),
        "completed": at, "status": "awaiting", "reached_at": None}
    _prune(state, at)
    w = waybills[p.waybill_id]
    for point in state["trail"]:
        _judge(w, point)
        if w["status"] != "awaiting":
            break
    return [*_verdict(state, p.waybill_id, at, ids), _signal(state, p.waybill_id, at, ids)]


def on_truck_telemetry(state: State, event: ev.EquipmentTelemetry | ev.BatteryTelemetry) -> list[Output]:
    """Telemetry of an enrolled truck that is not pledged: only its position matters."""
    if not first_time(state, event, SEEN_IDS):
        return []
    at = event.occurred_at.timestamp()
    if state["ts"] is not None and at <= state["ts"]:
        return []  # older than what the truck reported: the trail only moves forward
    state["ts"] = at
    loc = event.payload.location
    if loc is None:
        return []
    state["lat"], state["lon"] = loc.lat, loc.lon
    return on_position(state, at, loc.lat, loc.lon, [event.event_id])


def on_position(state: State, at: float, lat: float, lon: float, ids: list[str]) -> list[Output]:
    """A new (not late) position of an enrolled truck: into the trail when a step has
    passed since its last point, and the awaiting waybills judged on that point."""
    trail = state["trail"]
    if trail and at - trail[-1][0] < TRAIL_STEP_S:
        return []
    point = [at, round(lat, 5), round(lon, 5)]
    trail.append(point)
    horizon = at - TRAIL_KEEP_DAYS * DAY
    if trail[0][0] < horizon:
        del trail[:next((i for i, q in enumerate(trail) if q[0] >= horizon), len(trail))]
    outs: list[Output] = []
    for wid, w in sorted(state["waybills"].items()):
        if w["status"] == "awaiting":
            _judge(w, point)
            if w["status"] != "awaiting":
                outs += [*_verdict(state, wid, at, ids), _signal(state, wid, at, ids)]
    return outs


def _judge(w: dict[str, Any], point: list[float]) -> None:
    t, lat, lon = point
    if w["start"] <= t <= w["end"] and haversine_km(w["fence"][0], w["fence"][1], lat, lon) <= w["fence"][2]:
        w["status"], w["reached_at"] = "corroborated", t
    elif t > w["end"]:
        w["status"] = "not_reached"


def _verdict(state: State, wid: str, at: float, ids: list[str]) -> list[Output]:
    w = state["waybills"][wid]
    if w["status"] != "not_reached":
        return []
    return [alert("WAYBILL_NOT_CORROBORATED", "critical",
                  f"Waybill {wid} of carrier {w['carrier']}: truck {state['mid']}'s positions never reached "
                  f"the consignee's site within the delivery window; it does not count as a receivable.",
                  at, ids, w["carrier"], wid)]


def _signal(state: State, wid: str, at: float, ids: list[str]) -> Output:
    w = state["waybills"][wid]
    state["seq"] += 1
    return signal("freight", w["carrier"], wid, state["seq"], at, ids, status=w["status"], truck_id=state["mid"],
                  shipper_id=w["shipper"], amount=w["amount"], currency=w["currency"], due_date=w["due_date"],
                  completed=w["completed"], window=[w["start"], w["end"]], reached_at=w["reached_at"])


def _prune(state: State, now: float) -> None:
    horizon = now - KEEP_CLOSED_DAYS * DAY
    waybills = state["waybills"]
    done = [wid for wid, w in waybills.items() if w["status"] in ("paid", "not_reached")
            and w.get("closed_at", w["completed"]) < horizon]
    for wid in done:
        del waybills[wid]
    state["closed"] = [*state["closed"], *done][-CLOSED_IDS:]
