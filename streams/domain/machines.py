"""Stage 1 for machines: pledges and telemetry in, one borrower signal on material change.

State per machine (:class:`MachineState`, a plain dict stored as JSON): the pledge, the
latest cumulative counters, operating hours per event-time day for the trailing 21 days,
battery health and alarms, fence status. Counters are cumulative (ISO 15143-3), so
utilisation comes from deltas between readings and a late reading adds nothing the later
one did not already count: late data is used for alerts only (docs/credit-policy.md).
"""

from __future__ import annotations

from typing import Any, TypedDict

from schemas import events as ev
from streams.domain import freight
from streams.domain.geo import haversine_km
from streams.domain.signals import Output, PledgeTerms, Rejected, alert, first_time, signal

DAY = 86400.0
KEEP_DAYS = 21
SEEN_IDS = 16
# Fastest plausible movement between two readings (machines ride trucks between sites).
MAX_SPEED_KMH = {"excavator": 90.0, "loader": 90.0, "crane": 90.0, "electric_truck": 150.0}
# An hour meter may not run faster than wall time; a little slack for rounding.
HOURS_SLACK = 0.05
# A signal at least this often (event time) even without a material change, so stage 2
# knows the machine still reports and never mistakes it for a silent one.
HEARTBEAT_S = 24 * 3600.0


class _MachineLater(TypedDict, total=False):
    """Keys a machine's state gains over time (or only in some modes)."""

    sig_at: float  # event time of the last signal: the heartbeat counts from it
    told: float  # the reading (``ts``) stage 2 was last told about (silence.py)
    ts_id: str  # event id of the latest reading: the trigger of a tail's signal (silence.py)
    km: float  # the odometer of the latest reading (GB/T 32960 total mileage)
    km_days: dict[str, float]  # km per event-time day (epoch day as a string)
    truck: dict[str, Any] | None  # enrolled for freight: carrier and since when (freight.py)
    trail: list[list[float]]  # freight: the thinned positions, [at, lat, lon]
    waybills: dict[str, dict[str, Any]]  # freight: the truck's waybills by id
    closed: list[str]  # freight: ids of the waybills closed lately (a repeat is refused)


class MachineState(_MachineLater):
    """One machine's stage-1 state, stored as JSON under its machine id. The short keys
    are the stored ones (every state in every store has them); here is what they mean."""

    mid: str  # the machine id
    pledge: PledgeTerms | None  # None: not pledged (or released)
    hours: float | None  # hour meter of the latest reading (cumulative)
    ts: float | None  # event time of the latest reading
    lat: float | None  # position of the latest reading
    lon: float | None
    days: dict[str, float]  # operating hours per event-time day (epoch day as a string), last 21
    first_day: int | None  # first (partial) day of observation, epoch days
    soh: float | None  # battery state of health, %
    alarm: int  # battery alarm level of the latest reading
    critical: bool  # a critical fault code in the latest equipment reading
    in_fence: bool  # the latest position is inside the pledge's geofence
    seen: list[str]  # recent pledges and alarms (signals.first_time): a repeat is ignored
    seq: int  # the sequence number of the machine's signals
    last_sig: list[Any] | None  # the rounded figures last signalled: a signal when they change


State = MachineState


def new_state(machine_id: str) -> State:
    return {"mid": machine_id, "pledge": None, "hours": None, "ts": None, "lat": None, "lon": None, "days": {},
            "first_day": None, "soh": None, "alarm": 0, "critical": False, "in_fence": True,
            "seen": [], "seq": 0, "last_sig": None}


def on_pledge(state: State, event: ev.MachinePledged | ev.PledgeReleased) -> list[Output]:
    if not first_time(state, event, SEEN_IDS):
        return []
    at = event.occurred_at.timestamp()
    if isinstance(event, ev.PledgeReleased):
        released = event.payload
        old = state["pledge"]
        if not old or old["borrower_id"] != released.borrower_id:
            raise Rejected("unknown_pledge",
                           f"machine {released.machine_id} is not pledged by {released.borrower_id}")
        state["pledge"] = None
        state["seq"] += 1
        return [signal("machine_released", released.borrower_id, released.machine_id, state["seq"], at,
                       [event.event_id])]
    p = event.payload
    fence = p.geofence
    state["pledge"] = {
        "borrower_id": p.borrower_id, "program_id": p.program_id, "kind": p.kind.value,
        "price": str(p.price.amount), "currency": p.price.currency,
        "acquired_on": p.acquired_on.isoformat(), "life_years": p.useful_life_years,
        "life_hours": p.useful_life_hours, "baseline": p.baseline_hours_per_day,
        "fence": [fence.center.lat, fence.center.lon, fence.radius_km] if fence else None,
        "pledged_at": at,
    }
    state["last_sig"] = None  # a new pledge always reaches the borrower
    return _maybe_signal(state, at, [event.event_id], force=True)


def on_telemetry(state: State, event: ev.EquipmentTelemetry | ev.BatteryTelemetry) -> list[Output]:
    """Apply one reading; return the signal (if material) and any alerts."""
    pledge = state["pledge"]
    p = event.payload
    if pledge is None:
        if state.get("truck") is not None:  # a carrier's truck enrolled for freight only (freight.py)
            return freight.on_truck_telemetry(state, event)
        raise Rejected("unpledged_machine", f"machine {p.machine_id} has no pledge: telemetry not routable")
    # A reading's event time is its idempotency key: one at or before the machine's latest
    # is late and changes nothing, so a repeat of an applied reading is a late reading.
    # Only an alarm acts on a late reading, so only an alarm's id is kept: a reading per
    # minute otherwise filled the window with ids that grew every state and its changelog
    # record by ~40%.
    if isinstance(p, ev.BatteryTelemetryPayload) and p.alarm_level >= 3 and not first_time(state, event, SEEN_IDS):
        return []
    at = event.occurred_at.timestamp()
    ids = [event.event_id]
    bid, mid = pledge["borrower_id"], p.machine_id
    out: list[Output] = []
    late = state["ts"] is not None and at <= state["ts"]
    if late:
        # Older than what we hold: counters are already covered by the newer reading.
        if isinstance(p, ev.BatteryTelemetryPayload) and p.alarm_level >= 3:
            out.append(alert("BATTERY_ALARM_L3", "critical",
                             f"Late battery data shows a level-3 alarm on {mid}.", at, ids, bid, mid))
        return out

    prev_ts = state["ts"]
    if isinstance(p, ev.EquipmentTelemetryPayload):
        out += _apply_hours(state, p.cumulative_operating_hours, at, prev_ts, ids, bid, mid)
        crit = any(f.severity == "critical" for f in p.fault_codes)
        if crit and not state["critical"]:
            out.append(alert("CRITICAL_FAULT", "warning", f"Machine {mid} reports a critical fault code.",
                             at, ids, bid, mid))
        state["critical"] = crit
    else:
        if p.soh_pct is not None:
            state["soh"] = p.soh_pct
        if p.alarm_level >= 3 and state["alarm"] < 3:
            out.append(alert("BATTERY_ALARM_L3", "critical",
                             f"Battery of {mid} raised a level-3 (highest) alarm.", at, ids, bid, mid))
        state["alarm"] = p.alarm_level
        if p.mileage_km is not None:
            _apply_distance(state, p.mileage_km, at, prev_ts)
    if p.location is not None:
        out += _apply_location(state, pledge, p.location.lat, p.location.lon, at, prev_ts, ids, bid, mid)
        if state.get("truck") is not None:  # a pledged truck that also carries freight
            out += freight.on_position(state, at, p.location.lat, p.location.lon, ids)
    state["ts"] = at
    state["ts_id"] = event.event_id  # the tail's trigger if stage 2 must be told of it (silence.py)
    if state["first_day"] is None:
        state["first_day"] = int(at // DAY)
    out += _maybe_signal(state, at, ids)
    return out


def _apply_hours(state: State, hours: float, at: float, prev_ts: float | None, ids: list[str],
                 bid: str, mid: str) -> list[Output]:
    prev = state["hours"]
    if prev is None:
        state["hours"] = hours
        return []
    delta = hours - prev
    if delta < 0:
        return [alert("HOUR_METER_BACKWARDS", "warning",
                      f"Hour meter of {mid} ran backwards ({prev:.1f} h to {hours:.1f} h); reading ignored.",
                      at, ids, bid, mid)]
    elapsed_h = (at - prev_ts) / 3600.0 if prev_ts is not None else 0.0
    if delta > elapsed_h + HOURS_SLACK:
        return [alert("HOUR_METER_TOO_FAST", "warning",
                      f"Hour meter of {mid} advanced {delta:.1f} h in {elapsed_h:.1f} h of wall time; reading ignored.",
                      at, ids, bid, mid)]
    state["hours"] = hours
    _book(state["days"], delta, at, prev_ts)
    return []


def _book(days: dict[str, float], delta: float, at: float, prev_ts: float | None) -> None:
    """Book a cumulative counter's advance (hours, km) on the event-time days it covers."""
    if prev_ts is not None and at - prev_ts > DAY:
        # A gap of more than a day (a telemetry outage): the meter says how much the
        # machine worked in it, not on which day, so the hours are spread over the gap
        # in proportion to time. Booked on the last day alone, they left the days of
        # the gap at 0 h: an outage looked like idleness (issue 10.4).
        span = at - prev_ts
        start = prev_ts
        while start < at:
            end = min(at, (start // DAY + 1) * DAY)
            day = str(int(start // DAY))
            days[day] = days.get(day, 0.0) + delta * (end - start) / span
            start = end
    else:
        day = str(int(at // DAY))
        days[day] = days.get(day, 0.0) + delta
    if len(days) > KEEP_DAYS:
        for old in sorted(days, key=int)[:-KEEP_DAYS]:
            del days[old]


def _apply_distance(state: State, km: float, at: float, prev_ts: float | None) -> None:
    """A battery reading's odometer (GB/T 32960 total mileage): km per event-time day, the
    one measure of an electric truck's use (it has no hour meter). Read by the early
    warning only (``km7``, docs/credit-policy.md section 12.1), not by the limit. An
    odometer that ran backwards books nothing (the reading's other fields still apply)."""
    prev = state.get("km")
    if prev is not None and km < prev:
        return
    state["km"] = km
    if prev is not None:
        _book(state.setdefault("km_days", {}), km - prev, at, prev_ts)


def _apply_location(state: State, pledge: PledgeTerms, lat: float, lon: float, at: float,
                    prev_ts: float | None, ids: list[str], bid: str, mid: str) -> list[Output]:
    out: list[Output] = []
    last_lat, last_lon = state["lat"], state["lon"]
    if last_lat is not None and last_lon is not None and prev_ts is not None:
        km = haversine_km(last_lat, last_lon, lat, lon)
        hours = max((at - prev_ts) / 3600.0, 1 / 3600)
        limit = MAX_SPEED_KMH.get(pledge["kind"], 150.0)
        if km > 1.0 and km / hours > limit:
            out.append(alert("LOCATION_JUMP", "warning",
                             f"{mid} moved {km:.0f} km in {hours * 60:.0f} min, faster than {limit:.0f} km/h.",
                             at, ids, bid, mid))
    state["lat"], state["lon"] = lat, lon
    fence = pledge["fence"]
    if fence:
        inside = haversine_km(fence[0], fence[1], lat, lon) <= fence[2]
        if not inside and state["in_fence"]:
            out.append(alert("GEOFENCE_BREACH", "critical",
                             f"{mid} left its pledged site area; its collateral value is frozen.",
                             at, ids, bid, mid))
        state["in_fence"] = inside
    return out


def utilisation(state: State) -> tuple[float | None, float | None, float | None]:
    """Hours per day over complete days only: the trailing 7 days and the last two weeks.

    The current day and the first (partial) day of observation are left out, so a machine
    that has just started reporting does not look idle; None means "not known yet".
    """
    if state["ts"] is None or state["first_day"] is None or state["hours"] is None:
        return None, None, None  # no hour meter (battery-only data): utilisation unknown
    today = int(state["ts"] // DAY)
    first_full = state["first_day"] + 1

    def avg(start: int, end: int) -> float | None:  # inclusive day range
        return _per_day(state["days"], first_full, start, end)

    week = today // 7
    r7 = avg(max(today - 7, first_full), today - 1) if today - 1 >= first_full else None
    w1 = avg((week - 1) * 7, week * 7 - 1)
    w2 = avg((week - 2) * 7, (week - 1) * 7 - 1)
    return r7, w1, w2


def _per_day(days: dict[str, float], first_full: int, start: int, end: int) -> float | None:
    """Mean per day of the booked days ``start..end`` (inclusive)."""
    if start < first_full or start > end:
        return None
    # A day with no hours booked at all is unknown, not idle: left out of the mean
    # (a day with readings and no work is booked, at 0 h). None if none is known.
    known = [h for h in map(days.get, map(str, range(start, end + 1))) if h is not None]
    return sum(known) / len(known) if known else None


def distance(state: State) -> float | None:
    """Km per day over the trailing 7 complete days, the days r7 averages (None: no
    odometer, or no complete day yet)."""
    if state.get("km") is None or state["ts"] is None or state["first_day"] is None:
        return None
    today, first_full = int(state["ts"] // DAY), state["first_day"] + 1
    if today - 1 < first_full:
        return None
    return _per_day(state.get("km_days", {}), first_full, max(today - 7, first_full), today - 1)


def _maybe_signal(state: State, at: float, ids: list[str], force: bool = False) -> list[Output]:
    pledge = state["pledge"]
    if pledge is None:
        return []
    out: list[Output] = []
    r7, w1, w2 = utilisation(state)
    base = pledge["baseline"]
    # UTILISATION_COLLAPSE is judged in stage 2 (collapse.py), against the program's season.
    summary = [
        None if r7 is None else round(r7 / base * 20),  # 5% steps of the baseline
        None if w1 is None else round(w1 / base * 20),
        None if w2 is None else round(w2 / base * 20),
        state["alarm"] >= 3, state["critical"], state["in_fence"],
        None if state["soh"] is None else int(state["soh"]),
        None if state["hours"] is None else int(state["hours"] // 100),
    ]
    quiet = state.get("sig_at") is not None and at - state["sig_at"] < HEARTBEAT_S
    if not force and summary == state["last_sig"] and quiet:
        return out
    state["last_sig"] = summary
    state["sig_at"] = at
    state["seq"] += 1
    if state["ts"] is not None:  # the last reading stage 2 knows of (silence.py)
        state["told"] = state["ts"]
    out.append(signal(
        "machine", pledge["borrower_id"], state["mid"], state["seq"], at, ids,
        pledge=pledge, hours=state["hours"], r7=r7, w1=w1, w2=w2, km7=distance(state), soh=state["soh"],
        alarm=state["alarm"], critical=state["critical"], in_fence=state["in_fence"],
        last_seen=state["ts"] if state["ts"] is not None else at,
        # The first (partial) day of observation: r7 starts after it, and a seasonal
        # program judges r7 against the season of the days it actually averaged.
        first_day=state["first_day"],
    ))
    return out


def tell(state: State) -> list[Output]:
    """The machine's signal with its exact last reading, for a tail of readings stage 2
    has not been told about (silence.py): the same signal a reading would send, at the
    last reading's time."""
    at = state["ts"]
    if at is None:  # nothing read yet, so no tail (silence.advance checks it first)
        return []
    return _maybe_signal(state, at, [state["ts_id"]] if state.get("ts_id") else [], force=True)
