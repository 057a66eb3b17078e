"""ISO 15143-3 (AEMP 2.0) fleet snapshots: pure page decoder and counter tracker.

A snapshot page (JSON or XML) lists machines, each with an ``EquipmentHeader`` and
elements that carry their own ``datetime``: CumulativeOperatingHours, CumulativeIdleHours,
FuelUsed, FuelRemaining, Distance, Location, EngineStatus and fault codes. Values are
cumulative counters that the provider refreshes at its own pace, so the same reading
shows up in many polls. :class:`CounterTracker` turns readings into
:class:`~schemas.events.EquipmentTelemetry` events only when the operating-hours datetime
moves forward, and refuses a counter that goes backwards (a reset or a tampered meter).
No I/O here: the poller (``aemp_client``) feeds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin
from xml.etree.ElementTree import Element, tostring

import orjson

from connectors.sources import aemp_ids, safexml
from connectors.sources.common import (
    Outcome,
    RejectedItem,
    SourceError,
    build_event,
    is_id,
    item_bytes,
)
from schemas.events import EquipmentTelemetry

LITRES_PER = {"litre": 1.0, "liter": 1.0, "litres": 1.0, "liters": 1.0, "l": 1.0,
              "gallon": 3.785411784, "gallons": 3.785411784, "gal": 3.785411784,
              "usgallon": 3.785411784}
KM_PER = {"kilometre": 1.0, "kilometer": 1.0, "kilometres": 1.0, "kilometers": 1.0, "km": 1.0,
          "mile": 1.609344, "miles": 1.609344, "mi": 1.609344}
SEVERITY = {"1": "critical", "high": "critical", "critical": "critical", "red": "critical",
            "2": "warning", "medium": "warning", "warning": "warning", "amber": "warning",
            "3": "info", "low": "info", "info": "info", "information": "info"}
MAX_FAULTS = 64
# A counter may jitter by rounding between polls; only a larger drop is a reset.
RESET_TOLERANCE = 0.05


@dataclass(frozen=True)
class Reading:
    at: datetime
    value: Any


@dataclass(frozen=True)
class MachineReport:
    """One machine of a snapshot page, decoded but not yet judged against history."""

    machine_id: str
    oem: str | None
    model: str | None
    serial_number: str | None
    hours: Reading | None = None
    idle_hours: Reading | None = None
    fuel_litres: Reading | None = None
    fuel_remaining_pct: Reading | None = None
    odometer_km: Reading | None = None
    location: Reading | None = None            # value: (lat, lon)
    engine_running: Reading | None = None
    faults: tuple[dict[str, Any], ...] = ()
    raw: bytes = b""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    items: list[MachineReport | RejectedItem]
    next_url: str | None
    snapshot_time: datetime | None = None


# ---------------------------------------------------------------- generic access
def _get(obj: Any, name: str) -> Any:
    """Case-insensitive key lookup: providers disagree on ``Equipment`` vs ``equipment``."""
    if not isinstance(obj, dict):
        return None
    if name in obj:
        return obj[name]
    low = name.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return None


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _num(v: Any, what: str) -> float:
    if isinstance(v, bool) or v is None:
        raise SourceError("bad_value", f"{what}: {v!r} is not a number")
    try:
        out = float(v)
    except (TypeError, ValueError):
        raise SourceError("bad_value", f"{what}: {v!r} is not a number") from None
    if not math.isfinite(out):
        raise SourceError("bad_value", f"{what}: {v!r} is not finite")
    return out


def _when(v: Any, what: str) -> datetime:
    if not isinstance(v, str):
        raise SourceError("bad_datetime", f"{what}: datetime missing")
    try:
        ts = datetime.fromisoformat(v.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise SourceError("bad_datetime", f"{what}: {v!r} is not an ISO 8601 datetime") from None
    # The standard's datetimes are UTC; a provider that drops the zone still means UTC.
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, dict | list):
        return None
    s = str(v).strip()
    return s or None


def _bool(v: Any, what: str) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1", "on", "yes"):
        return True
    if s in ("false", "0", "off", "no"):
        return False
    raise SourceError("bad_value", f"{what}: {v!r} is not a boolean")


def _element(m: dict[str, Any], name: str) -> tuple[dict[str, Any], datetime] | None:
    el = _get(m, name)
    if el is None:
        return None
    if not isinstance(el, dict):
        raise SourceError("bad_value", f"{name} is not an object")
    return el, _when(_get(el, "datetime"), name)


# ---------------------------------------------------------------- one machine
def _machine(m: Any, raw: bytes, machine_map: dict[str, str]) -> MachineReport:
    if not isinstance(m, dict):
        raise SourceError("bad_machine", "an Equipment entry is not an object")
    head = _get(m, "EquipmentHeader") or {}
    oem, model = _text(_get(head, "OEMName")), _text(_get(head, "Model"))
    pin, equipment_id = _text(_get(head, "PIN")), _text(_get(head, "EquipmentID"))
    serial = _text(_get(head, "SerialNumber"))
    keys = aemp_ids.candidates(pin, serial, equipment_id)
    if not keys:
        raise SourceError("no_machine_id", "EquipmentHeader has no usable PIN, SerialNumber or EquipmentID "
                          f"(placeholders such as {pin or serial or equipment_id or 'empty'!r} are not ids)")
    machine_id = aemp_ids.machine_id(keys, machine_map)
    if machine_id is None or not is_id(machine_id):
        raise SourceError("bad_machine_id", f"machine id {machine_id or keys[0]!r} is not a valid id "
                          "(map it with --machine-map)")
    if serial is not None and aemp_ids.is_placeholder(serial):
        serial = None
    notes: list[str] = []
    fields: dict[str, Any] = {}
    if (e := _element(m, "CumulativeOperatingHours")) is not None:
        fields["hours"] = Reading(e[1], _num(_get(e[0], "Hour"), "CumulativeOperatingHours.Hour"))
    if (e := _element(m, "CumulativeIdleHours")) is not None:
        fields["idle_hours"] = Reading(e[1], _num(_get(e[0], "Hour"), "CumulativeIdleHours.Hour"))
    if (e := _element(m, "FuelUsed")) is not None:
        unit = (_text(_get(e[0], "FuelUnits")) or "litre").lower().replace(" ", "")
        if unit in LITRES_PER:
            litres = _num(_get(e[0], "FuelConsumed"), "FuelUsed.FuelConsumed") * LITRES_PER[unit]
            fields["fuel_litres"] = Reading(e[1], round(litres, 3))
        else:
            notes.append(f"{machine_id}: FuelUsed unit {unit!r} unknown: fuel left out")
    if (e := _element(m, "FuelRemaining")) is not None:
        fields["fuel_remaining_pct"] = Reading(e[1], _num(_get(e[0], "Percent"), "FuelRemaining.Percent"))
    if (e := _element(m, "Distance")) is not None:
        unit = (_text(_get(e[0], "OdometerUnits")) or "kilometre").lower().replace(" ", "")
        if unit in KM_PER:
            fields["odometer_km"] = Reading(e[1], round(_num(_get(e[0], "Odometer"), "Distance.Odometer") * KM_PER[unit], 3))
        else:
            notes.append(f"{machine_id}: odometer unit {unit!r} unknown: distance left out")
    if (e := _element(m, "Location")) is not None:
        lat, lon = _num(_get(e[0], "Latitude"), "Latitude"), _num(_get(e[0], "Longitude"), "Longitude")
        fields["location"] = Reading(e[1], (lat, lon))
    if (e := _element(m, "EngineStatus")) is not None:
        fields["engine_running"] = Reading(e[1], _bool(_get(e[0], "Running"), "EngineStatus.Running"))
    faults = []
    container = _get(m, "FaultCodes")
    entries = _as_list(_get(container, "FaultCode")) if isinstance(container, dict) else _as_list(container)
    for f in entries[:MAX_FAULTS]:
        if not isinstance(f, dict):
            raise SourceError("bad_value", "a FaultCode is not an object")
        sev = SEVERITY.get(str(_get(f, "Severity") or "").strip().lower(), "warning")
        faults.append({"spn": int(_num(_get(f, "SPN"), "FaultCode.SPN")),
                       "fmi": int(_num(_get(f, "FMI"), "FaultCode.FMI")), "severity": sev})
    return MachineReport(machine_id=machine_id, oem=oem, model=model, serial_number=serial,
                         faults=tuple(faults), raw=raw, notes=tuple(notes), **fields)


def _decode_machines(entries: list[tuple[Any, bytes]], machine_map: dict[str, str],
                     origin: str) -> list[MachineReport | RejectedItem]:
    out: list[MachineReport | RejectedItem] = []
    for n, (m, raw) in enumerate(entries):
        try:
            out.append(_machine(m, raw, machine_map))
        except SourceError as exc:
            out.append(RejectedItem.item(f"{origin}#{n}", exc.reason, exc.message, raw))
        except (TypeError, ValueError, OverflowError) as exc:
            out.append(RejectedItem.item(f"{origin}#{n}", "bad_machine", str(exc), raw))
    return out


# ---------------------------------------------------------------- pages
def _next(links: Any, base: str) -> str | None:
    for link in _as_list(links):
        rel = str(_get(link, "rel") or "").strip().lower()
        href = _text(_get(link, "href"))
        if rel == "next" and href:
            return urljoin(base, href)
    return None


def parse_json(body: bytes, base_url: str = "", machine_map: dict[str, str] | None = None) -> Page:
    """Decode a JSON snapshot page; page-level problems raise :class:`SourceError`."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SourceError("malformed_json", f"snapshot page is not JSON: {exc}") from None
    if isinstance(doc, list):
        doc = _page_in_array(doc)
    fleet = _get(doc, "Fleet") if isinstance(_get(doc, "Fleet"), dict) else doc
    if not isinstance(fleet, dict):
        raise SourceError("not_a_fleet", "snapshot page is not a JSON object")
    equipment = _get(fleet, "Equipment")
    if equipment is not None and not isinstance(equipment, list):
        raise SourceError("not_a_fleet", "Equipment is not a list")
    entries = [(m, item_bytes(m)) for m in equipment or []]
    return Page(_decode_machines(entries, machine_map or {}, base_url or "aemp"),
                _next(_get(fleet, "Links"), base_url), _snapshot_time(_get(fleet, "SnapshotTime")))


def _page_in_array(doc: list[Any]) -> dict[str, Any]:
    """A provider that documents its pages as a JSON array holding the page object: that
    object; ``[]`` (how it ends a snapshot) is an empty last page."""
    if not doc:
        return {"Equipment": []}
    if len(doc) == 1 and isinstance(doc[0], dict):
        return doc[0]
    raise SourceError("not_a_fleet", f"snapshot page is a JSON array of {len(doc)} items, "
                      "not one page object")


def _snapshot_time(v: Any) -> datetime | None:
    try:
        return _when(v, "SnapshotTime") if v else None
    except SourceError:
        return None


def _xml_obj(el: Element) -> Any:
    """An element as the JSON binding would have it: attributes and children as keys."""
    kids = [c for c in el if isinstance(c.tag, str)]
    if not kids and not el.attrib:
        return (el.text or "").strip()
    obj: dict[str, Any] = {safexml.local(k): v for k, v in el.attrib.items()}
    for c in kids:
        name, value = safexml.local(c.tag), _xml_obj(c)
        if name in obj:
            obj[name] = _as_list(obj[name]) + [value]
        else:
            obj[name] = value
    return obj


def parse_xml(body: bytes, base_url: str = "", machine_map: dict[str, str] | None = None) -> Page:
    """Decode an XML snapshot page (parsed safely); page problems raise :class:`SourceError`."""
    root = safexml.parse(body)
    if safexml.local(root.tag) != "Fleet":
        raise SourceError("not_a_fleet", f"root element is <{safexml.local(root.tag)}>, not <Fleet>")
    try:
        entries = [(_xml_obj(m), tostring(m)) for m in safexml.children(root, "Equipment")]
        links = [_xml_obj(link) for link in safexml.children(root, "Links")]
    except RecursionError:
        raise SourceError("malformed_xml", "XML nesting too deep") from None
    snapshot = root.attrib.get("snapshotTime") or safexml.text(root, "SnapshotTime")
    return Page(_decode_machines(entries, machine_map or {}, base_url or "aemp"),
                _next(links, base_url), _snapshot_time(snapshot))


def parse_page(body: bytes, content_type: str = "", base_url: str = "",
               machine_map: dict[str, str] | None = None) -> Page:
    """Decode a page as JSON or XML, from its content type or else its first byte."""
    ct = content_type.lower()
    head = body.lstrip()[:1]
    if "xml" in ct or (not ct.strip() or "json" not in ct) and head == b"<":
        return parse_xml(body, base_url, machine_map)
    return parse_json(body, base_url, machine_map)


# ---------------------------------------------------------------- counters -> events
@dataclass
class CounterTracker:
    """Per machine, the last accepted reading: repeats are dropped, resets refused.

    ``state`` is plain JSON (machine id -> last datetime and counters) so a poller can
    persist it between runs; event ids are deterministic, so a lost state only costs
    duplicates that consumers drop by id.
    """

    tenant: str
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    repeats: int = 0

    def accept(self, report: MachineReport, origin: str = "aemp",
               recorded_at: datetime | None = None) -> Outcome:
        out = Outcome(notes=list(report.notes))
        mid = report.machine_id
        if report.hours is None:
            out.notes.append(f"{mid}: no CumulativeOperatingHours in the snapshot: skipped")
            return out
        last = self.state.get(mid)
        at = report.hours.at
        if last is not None and at <= datetime.fromisoformat(last["at"]):
            self.repeats += 1  # the provider has nothing newer for this machine
            return out
        if last is not None and report.hours.value < last["hours"] - RESET_TOLERANCE:
            out.rejected.append(RejectedItem.item(
                f"{origin}/{mid}", "counter_reset",
                f"CumulativeOperatingHours went back from {last['hours']} to "
                f"{report.hours.value} at {at.isoformat()}", report.raw))
            return out
        payload: dict[str, Any] = {
            "machine_id": mid, "oem": report.oem, "model": report.model,
            "serial_number": report.serial_number if report.serial_number and is_id(report.serial_number) else None,
            "cumulative_operating_hours": report.hours.value,
            "fuel_remaining_pct": report.fuel_remaining_pct.value if report.fuel_remaining_pct else None,
            "engine_running": report.engine_running.value if report.engine_running else None,
            "fault_codes": list(report.faults),
        }
        if report.location is not None:
            payload["location"] = {"lat": report.location.value[0], "lon": report.location.value[1]}
        counters = {"idle": ("cumulative_idle_hours", report.idle_hours),
                    "fuel": ("fuel_used_litres", report.fuel_litres),
                    "odometer": ("odometer_km", report.odometer_km)}
        new_state: dict[str, Any] = {"at": at.isoformat(), "hours": report.hours.value}
        for key, (name, reading) in counters.items():
            if reading is None:
                continue
            before = (last or {}).get(key)
            if before is not None and reading.value < before - RESET_TOLERANCE:
                # A secondary counter reset must not refuse the hours reading: leave it out.
                out.notes.append(f"{mid}: {name} went back from {before} to {reading.value}: left out")
                new_state[key] = before
                continue
            payload[name] = reading.value
            new_state[key] = reading.value
        try:
            event = build_event(EquipmentTelemetry, event_id=f"aemp-{mid}-{int(at.timestamp())}",
                                tenant=self.tenant, source="iso15143-3", occurred_at=at,
                                recorded_at=recorded_at,
                                payload={k: v for k, v in payload.items() if v is not None})
        except SourceError as exc:
            out.rejected.append(RejectedItem.item(f"{origin}/{mid}", exc.reason, exc.message, report.raw))
            return out
        self.state[mid] = new_state
        out.events.append(event)
        return out

    def accept_page(self, page: Page, origin: str = "aemp",
                    recorded_at: datetime | None = None) -> Outcome:
        out = Outcome()
        for item in page.items:
            if isinstance(item, RejectedItem):
                out.rejected.append(item)
            else:
                out.extend(self.accept(item, origin, recorded_at))
        return out
