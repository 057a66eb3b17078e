"""EPCIS 2.0 events about the goods under a warehouse receipt -> ``receipt.stock_moved`` (pure).

An EPCIS event is a stock movement when its ``bizTransactionList`` names a warehouse
receipt: a bizTransaction of type ``wr`` (``urn:epcglobal:cbv:btt:wr``, ``cs:wr`` or
the bare word; CBV has no receipt type, and EPCIS admits a custom one). Rules (see
docs/connectors.md):

- ``receipt_id``: the last segment of the ``wr`` bizTransaction; ``warehouse_id``:
  ``cs:warehouseId``, else the GLN segment of a CBV URI
  (``urn:epcglobal:cbv:bt:<warehouse GLN>:<receipt>``: the party that issued it).
- ``direction``: ``in`` for bizStep storing, receiving or accepting with action ADD or
  OBSERVE; ``out`` for bizStep picking, loading, departing or shipping, or action DELETE.
- ``quantity`` and ``unit``: the sum of ``quantityList`` (EPCIS 2.0 ``quantity`` and
  ``uom``), one unit of measure per event; UN/CEFACT codes TNE, KGM, LTR, MTQ become
  t, kg, l, m3 (the receipt's units), another code is passed as it is.
- ``reference``: the EPCIS ``eventID`` when it is a valid id; the event id is derived
  from the tenant and the eventID (or the event's canonical bytes), as for shipments.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from connectors.sources.common import SourceError, build_event, digest, is_id
from schemas.events import StockMoved

IN_STEPS = ("storing", "receiving", "accepting")
OUT_STEPS = ("picking", "loading", "departing", "shipping")
UOM = {"TNE": "t", "KGM": "kg", "LTR": "l", "MTQ": "m3"}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def receipt_reference(event: dict[str, Any], cbv_word: Any) -> str | None:
    """The ``wr`` bizTransaction's value, or None: whether the event is a stock movement."""
    for bt in _list(event.get("bizTransactionList")):
        if isinstance(bt, dict) and isinstance(bt.get("bizTransaction"), str):
            kind = bt.get("type")
            if kind == "cs:wr" or (cbv_word(kind, "BTT") or "").lower() == "wr":
                return bt["bizTransaction"].strip()
    return None


def map_stock_event(event: dict[str, Any], reference: str, step: str | None, occurred_at: datetime, *,
                    tenant: str, recorded_at: datetime | None = None) -> StockMoved:
    """One EPCIS event naming a warehouse receipt -> its stock movement; SourceError if it
    cannot be one."""
    action = event.get("action")
    if action == "DELETE" or step in OUT_STEPS:
        direction = "out"
    elif step in IN_STEPS and action in ("ADD", "OBSERVE"):
        direction = "in"
    else:
        raise SourceError("no_stock_direction", f"bizStep {event.get('bizStep')!r} with action {action!r} "
                          "neither takes goods into nor out of the warehouse")
    receipt = reference.rsplit(":", 1)[-1] if reference.lower().startswith("urn:") else reference
    parts = reference.split(":")
    gln = parts[-2] if reference.lower().startswith("urn:epcglobal:cbv:bt:") and len(parts) >= 6 else None
    warehouse = event.get("cs:warehouseId") or gln
    if not warehouse:
        raise SourceError("no_warehouse", "no cs:warehouseId and the wr bizTransaction is not "
                          "urn:epcglobal:cbv:bt:<warehouse GLN>:<receipt>")
    total, units = Decimal(0), set()
    for q in _list(event.get("quantityList")):
        if not isinstance(q, dict):
            continue
        raw, uom = q.get("quantity"), q.get("uom")
        try:
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise ValueError
            total += Decimal(str(raw))
        except (InvalidOperation, ValueError):
            raise SourceError("bad_quantity", f"quantity {raw!r} is not a number") from None
        if not isinstance(uom, str):
            raise SourceError("bad_quantity", f"uom {uom!r} is not a unit code")
        units.add(uom)
    if not units or not total.is_finite() or total <= 0:
        raise SourceError("no_quantity", "a stock movement needs a quantityList with a positive quantity")
    if len(units) > 1:
        raise SourceError("mixed_units", f"quantityList mixes units of measure {sorted(map(str, units))}")
    uom = units.pop()
    if not (ident := event.get("eventID")):
        try:
            ident = orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError:
            raise SourceError("too_deep", "event without eventID nested too deep to identify") from None
    payload = {"warehouse_id": warehouse, "receipt_id": receipt, "direction": direction, "quantity": str(total),
               "unit": UOM.get(uom, uom),
               "reference": ident if isinstance(ident, str) and is_id(ident) else None}
    return build_event(StockMoved, event_id=f"epcis-{digest(tenant, ident, size=32)}", tenant=tenant,  # type: ignore[return-value]
                       source="epcis2", occurred_at=occurred_at, recorded_at=recorded_at,
                       payload={k: v for k, v in payload.items() if v is not None})
