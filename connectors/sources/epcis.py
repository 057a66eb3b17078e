"""GS1 EPCIS 2.0 JSON-LD documents to shipment observations and, for events naming a
warehouse receipt (a ``wr`` bizTransaction), stock movements (epcis_stock.py) (pure).

Mapped: ObjectEvent, TransactionEvent and AggregationEvent (a pallet packed or received:
its parentID is the shipment) with action ADD or OBSERVE, a purchase-order reference in
``bizTransactionList`` and a bizStep among packing, shipping, receiving, departing,
arriving, accepting (CBV URIs or bare words). Other event types and bizSteps, and packing
for stock (no order named), are not about shipments: they are skipped with a note. Input: an EPCISDocument, an EPCISQueryDocument
(what a query returns), a single event (the capture interface) or a list of events.
Rules (see docs/connectors.md):

- ``actual_at``: ``eventTime`` expressed in ``eventTimeZoneOffset``.
- ``planned_at``: the extension ``cs:plannedAt``; without it, ``actual_at`` (a missing
  plan is not evidence of lateness), noted for the user.
- ``po_id``: the last segment of the ``po`` bizTransaction (``urn:epcglobal:cbv:bt:<gln>:<id>``).
- ``shipment_id``: ``cs:shipmentId``, else the ``desadv`` bizTransaction, else
  ``parentID``, else the first EPC, else the PO id.
- ``supplier_id``: ``cs:supplierId``, else the ``owning_party``/``possessing_party`` source,
  through the party map when given; else, for events without party lists (the
  standard's own examples), the location table: the ``location`` source, the
  bizLocation or the readPoint, each looked up as is and as its site (an SGLN with
  extension 0), mapped to the supplier whose goods are observed there.
- ``disposition``: in_transit / in_progress / delivered; when absent or another CBV
  value, derived from the bizStep (shipping, departing: in_transit; arriving:
  in_progress; receiving, accepting: delivered).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from connectors.sources.common import (
    Outcome,
    SourceError,
    build_event,
    digest,
    is_id,
    item_rejected,
)
from connectors.sources.epcis_stock import map_stock_event, receipt_reference
from schemas.events import BizStep, Disposition, Envelope, ShipmentObserved

SUPPORTED_TYPES = ("ObjectEvent", "TransactionEvent", "AggregationEvent")
EVENT_TYPES = (*SUPPORTED_TYPES, "TransformationEvent", "AssociationEvent")
FROM_STEP = {"packing": "in_progress", "shipping": "in_transit", "departing": "in_transit", "arriving": "in_progress",
             "receiving": "delivered", "accepting": "delivered"}
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def cbv_word(value: Any, kind: str) -> str | None:
    """``urn:epcglobal:cbv:bizstep:shipping``, ``https://ref.gs1.org/cbv/BizStep-shipping``,
    ``cbv:BizStep-shipping`` or ``shipping`` -> ``shipping``."""
    if not isinstance(value, str) or not value.strip():
        return None
    v = value.strip()
    for prefix in (f"urn:epcglobal:cbv:{kind.lower()}:",):
        if v.lower().startswith(prefix):
            return v[len(prefix):]
    m = re.search(rf"{kind}-([A-Za-z_]+)$", v, re.IGNORECASE)
    if m:
        return m.group(1)
    return v if re.fullmatch(r"[a-z_]+", v) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _ref(value: str) -> str:
    """The business id in a bizTransaction: last ``:`` segment of a URN, last path segment of a URL."""
    v = value.strip()
    if v.startswith(("http://", "https://")):
        return v.rstrip("/").rsplit("/", 1)[-1]
    return v.rsplit(":", 1)[-1] if v.lower().startswith("urn:") else v


def _transactions(event: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for bt in _list(event.get("bizTransactionList")):
        if isinstance(bt, dict) and isinstance(bt.get("bizTransaction"), str):
            kind = cbv_word(bt.get("type"), "BTT") or ""
            out.setdefault(kind.lower(), _ref(bt["bizTransaction"]))
    return out


def _sources(event: dict[str, Any], kinds: tuple[str, ...]) -> list[str]:
    return [entry["source"].strip() for entry in _list(event.get("sourceList"))
            if isinstance(entry, dict) and isinstance(entry.get("source"), str)
            and (cbv_word(entry.get("type"), "SDT") or "") in kinds]


def _party(event: dict[str, Any], party_map: dict[str, str]) -> str | None:
    for src in _sources(event, ("owning_party", "possessing_party")):
        return party_map.get(src) or src
    return None


def _site(location: str) -> str:
    """``urn:epc:id:sgln:0614141.07346.1234`` -> ``urn:epc:id:sgln:0614141.07346.0``: a read
    point is usually a sub-location (the extension) of a site the table names once."""
    head, dot, _ext = location.rpartition(".")
    return f"{head}.0" if dot and location.lower().startswith("urn:epc:id:sgln:") else location


def _party_at(event: dict[str, Any], location_map: dict[str, str]) -> str | None:
    """The supplier the location table gives for where the event happened, if any."""
    places = _sources(event, ("location",))
    places += [loc["id"] for loc in (event.get("bizLocation"), event.get("readPoint"))
               if isinstance(loc, dict) and isinstance(loc.get("id"), str)]
    for place in places:
        for key in (place.strip(), _site(place.strip())):
            if key in location_map:
                return location_map[key]
    return None


def event_time(event: dict[str, Any]) -> datetime:
    raw, offset = event.get("eventTime"), event.get("eventTimeZoneOffset")
    if not isinstance(raw, str):
        raise SourceError("missing_field", "eventTime is required")
    try:
        ts = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SourceError("bad_datetime", f"eventTime {raw!r} is not an ISO 8601 datetime") from None
    tz = None
    if isinstance(offset, str) and (m := _OFFSET.match(offset.strip())):
        sign = 1 if m.group(1) == "+" else -1
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        if minutes > 14 * 60:
            raise SourceError("bad_offset", f"eventTimeZoneOffset {offset!r} is out of range")
        tz = timezone(sign * timedelta(minutes=minutes))
    elif offset is not None:
        raise SourceError("bad_offset", f"eventTimeZoneOffset {offset!r} is not ±hh:mm")
    if ts.tzinfo is None:
        if tz is None:
            raise SourceError("bad_datetime", "eventTime has no zone and there is no eventTimeZoneOffset")
        return ts.replace(tzinfo=tz)
    try:
        return ts.astimezone(tz) if tz else ts
    except OverflowError:  # 9999-12-31T23:00:00Z shown at +08:00 is in year 10000
        raise SourceError("bad_datetime", f"eventTime {raw!r} is out of range in {offset}") from None


def _geo(read_point: Any) -> dict[str, float] | None:
    rid = read_point.get("id") if isinstance(read_point, dict) else None
    if isinstance(rid, str) and rid.startswith("geo:"):
        try:
            lat, lon = (float(x) for x in rid[4:].split(";")[0].split(",")[:2])
        except ValueError:
            return None
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            return {"lat": lat, "lon": lon}
    return None


def map_event(event: Any, *, tenant: str, party_map: dict[str, str] | None = None,
              recorded_at: datetime | None = None,
              location_map: dict[str, str] | None = None) -> tuple[ShipmentObserved | Envelope | None, str | None]:
    """One EPCIS event -> (event, None), or (None, note) when it is not about a shipment
    or a warehouse receipt's stock (epcis_stock.py).

    Raises :class:`SourceError` for a shipment event that cannot be mapped.
    """
    if not isinstance(event, dict):
        raise SourceError("not_an_event", "an eventList entry is not an object")
    etype = event.get("type")
    if etype not in SUPPORTED_TYPES:
        return None, f"{etype} skipped: only ObjectEvent, TransactionEvent and AggregationEvent describe shipments"
    step = cbv_word(event.get("bizStep"), "BizStep")
    if (receipt := receipt_reference(event, cbv_word)) is not None:  # goods under a warehouse receipt
        return map_stock_event(event, receipt, step, event_time(event), tenant=tenant,
                               recorded_at=recorded_at), None
    if step not in BizStep.__members__:
        return None, f"{etype} with bizStep {event.get('bizStep')!r} skipped: not a shipment step"
    assert step is not None  # a BizStep member name
    action = event.get("action")
    if action not in ("ADD", "OBSERVE"):
        raise SourceError("unsupported_action", f"action {action!r}: only ADD and OBSERVE observe a shipment")
    tx = _transactions(event)
    po_id = tx.get("po")
    if not po_id and step == "packing":
        # Packing for stock (no order named) is warehouse work, not an order's shipment.
        return None, f"{etype} with bizStep 'packing' and no purchase order skipped: not an order's shipment"
    if not po_id:
        raise SourceError("no_po_reference", "bizTransactionList has no purchase-order (po) reference")
    disp = cbv_word(event.get("disposition"), "Disp")
    if disp not in Disposition.__members__:
        disp = FROM_STEP[step]
    actual = event_time(event)
    planned_raw = event.get("cs:plannedAt")
    planned = actual
    if planned_raw is not None:
        planned = event_time({"eventTime": planned_raw, "eventTimeZoneOffset": event.get("eventTimeZoneOffset")})
    epcs = [e for e in _list(event.get("epcList")) + _list(event.get("childEPCs")) if isinstance(e, str)]
    shipment = (event.get("cs:shipmentId") or tx.get("desadv") or event.get("parentID")
                or (epcs[0] if epcs else None) or po_id)
    supplier = (event.get("cs:supplierId") or _party(event, party_map or {})
                or _party_at(event, location_map or {}))
    if not supplier:
        raise SourceError("no_supplier", "no cs:supplierId, no owning_party/possessing_party in "
                          "sourceList, and no --location-map entry for its locations")
    site = next((loc["id"] for loc in (event.get("bizLocation"), event.get("readPoint"))
                 if isinstance(loc, dict) and isinstance(loc.get("id"), str) and is_id(loc["id"])), None)
    if not (ident := event.get("eventID")):
        try:
            ident = orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError:  # deeper than orjson writes (254 levels)
            raise SourceError("too_deep", "event without eventID nested too deep to identify") from None
    payload = {"shipment_id": shipment, "po_id": po_id, "supplier_id": supplier, "biz_step": step,
               "disposition": disp, "planned_at": planned, "actual_at": actual,
               "site_id": site, "location": _geo(event.get("readPoint"))}
    built = build_event(ShipmentObserved, event_id=f"epcis-{digest(tenant, ident, size=32)}",
                        tenant=tenant, source="epcis2", occurred_at=actual, recorded_at=recorded_at,
                        payload={k: v for k, v in payload.items() if v is not None})
    note = None if planned_raw is not None else f"{etype} for {po_id}: no cs:plannedAt, planned_at = actual_at"
    return built, note


def _events(doc: Any) -> Any:
    """The event list of whatever EPCIS shape ``doc`` is; raise ``not_epcis`` otherwise."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "EPCISDocument":
        body = doc.get("epcisBody")
        return body.get("eventList") if isinstance(body, dict) else None
    if kind == "EPCISQueryDocument":
        body = doc.get("epcisBody")
        results = body.get("queryResults") if isinstance(body, dict) else None
        inner = results.get("resultsBody") if isinstance(results, dict) else None
        return inner.get("eventList") if isinstance(inner, dict) else None
    if kind in EVENT_TYPES:  # one event, as the capture interface takes it
        return [doc]
    if isinstance(doc, list) and all(isinstance(e, dict) and e.get("type") in EVENT_TYPES for e in doc):
        return doc
    raise SourceError("not_epcis", "not an EPCISDocument, an EPCISQueryDocument or an EPCIS event "
                      f"(type is {kind!r})")


def parse_document(body: bytes, *, tenant: str, origin: str = "epcis",
                   party_map: dict[str, str] | None = None,
                   location_map: dict[str, str] | None = None) -> Outcome:
    """An EPCIS document, query result, single event or event list -> events, refusals, notes.

    A document that is not JSON or not EPCIS raises :class:`SourceError`; a bad event
    inside a good document is refused on its own, with its own bytes only.
    """
    if len(body) > MAX_DOCUMENT_BYTES:
        raise SourceError("too_large", f"document larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SourceError("malformed_json", f"not JSON: {exc}") from None
    events = _events(doc)
    if not isinstance(events, list):
        raise SourceError("not_epcis", "the event list (epcisBody.eventList, or "
                          "epcisBody.queryResults.resultsBody.eventList) is missing or not a list")
    out = Outcome()
    for n, event in enumerate(events):
        try:
            mapped, note = map_event(event, tenant=tenant, party_map=party_map, location_map=location_map)
        except SourceError as exc:
            out.rejected.append(item_rejected(f"{origin}#{n}", exc, event))
            continue
        if mapped is not None:
            out.events.append(mapped)
        if note:
            out.notes.append(f"event {n}: {note}")
    return out
