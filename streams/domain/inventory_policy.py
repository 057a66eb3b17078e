"""The inventory component of a limit (存货, 仓单): pledged warehouse receipts valued at
the latest price of their commodity, less the program's haircut, and the margin call
when a fall in that value leaves the loans above the limit.

Pure: ``now`` is the facility's event-time watermark. Formulas, parameters, reasons,
alerts and a worked example are in docs/credit-policy.md section 1.5.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import TYPE_CHECKING, Any

from streams.domain.signals import Output, alert, utc_time

if TYPE_CHECKING:  # facility imports this module
    from streams.domain.facility import FacilityState

DAY = 86400.0


def _money(x: Decimal, unit: Decimal) -> Decimal:
    return x.quantize(unit, rounding=ROUND_DOWN)


def inventory_components(state: FacilityState, params: Any, now: float, currency: str, unit: Decimal,
                         reasons: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One component per pledged receipt: quantity x price x (1 - haircut)."""
    haircuts = dict(params.commodity_haircuts)
    prices = state.get("prices", {})
    components = []
    for key, r in sorted(state["assets"].get("receipt", {}).items()):
        if r["status"] != "pledged":
            continue
        commodity, name = r["commodity"], f"Receipt {r['receipt_id']} ({r['warehouse_id']})"
        haircut = haircuts.get(commodity)
        if haircut is None:
            reasons.append(("INVENTORY_NOT_ACCEPTED", f"{name} holds {commodity}, which your program does "
                            "not finance; it does not count."))
            continue
        quote = prices.get(commodity)
        if quote is None or quote["currency"] != currency:
            reasons.append(("PRICE_MISSING", f"There is no {currency} price for {commodity} yet: {name} "
                            "counts once the price feed quotes it."))
            continue
        if quote["unit"] != r["unit"]:
            reasons.append(("PRICE_UNIT_MISMATCH", f"{name} is in {r['unit']} but {commodity} is quoted per "
                            f"{quote['unit']}; it does not count."))
            continue
        price = Decimal(quote["price"])
        value = _money(Decimal(r["quantity"]) * price, unit)
        detail = {"commodity": commodity, "quantity": r["quantity"], "unit": r["unit"], "price": quote["price"],
                  "haircut": str(haircut), "market_value": str(value),
                  "quoted_at": utc_time(quote["quoted_at"]).isoformat()}
        prev = quote.get("prev")
        if prev and prev["currency"] == currency and prev["unit"] == quote["unit"] and Decimal(prev["price"]) > price:
            reasons.append(("INVENTORY_PRICE_FALL", f"{commodity} fell from {Decimal(prev['price']):,} to "
                            f"{price:,} {currency}/{quote['unit']}: your receipts of it count less."))
        if now - quote["quoted_at"] > params.price_max_age_days * DAY:
            # A stale price may hide a fall: the receipt is frozen until the feed quotes again.
            reasons.append(("PRICE_STALE", f"The last price of {commodity} is more than "
                            f"{params.price_max_age_days} days old: {name} is frozen until it is quoted again."))
            components.append({"kind": "inventory", "asset_id": key, "frozen": True,
                               "contribution": _money(Decimal(0), unit), "detail": detail})
            continue
        components.append({"kind": "inventory", "asset_id": key, "frozen": False,
                           "contribution": _money(value * (1 - haircut), unit), "detail": detail})
    return components


def margin_calls(state: FacilityState, d: Any, now: float) -> list[Output]:
    """INVENTORY_MARGIN_CALL when the inventory's value fell in this decision and the
    loans now exceed the limit: the shortfall must be repaid, or covered by pledging
    goods that count as much after their haircut. Raised again only when a further
    fall widens the shortfall (``margin`` keeps the last one called)."""
    total = Decimal(d.sums.get("inventory", "0"))
    if not total and "inventory_sum" not in state:
        return []  # no goods ever counted: nothing kept, nothing to call
    before = Decimal(state.get("inventory_sum", "0"))
    state["inventory_sum"] = str(total)
    shortfall = d.outstanding - d.limit
    called = Decimal(state.get("margin", "0"))
    if shortfall <= 0:
        state.pop("margin", None)
        return []
    if total >= before or shortfall <= called:
        return []
    last_codes = (state.get("last") or {}).get("codes", [])
    if "PRICE_STALE" in d.codes and "PRICE_STALE" not in last_codes:
        # A stale quote freezes its receipts (a partial freeze the update shows), but it is
        # no fall in value: the call waits for a quote that confirms one.
        return []
    state["margin"] = str(shortfall)
    hint = ""
    # Components are built only now (a decision builds them lazily, for published updates).
    live = [c for c in d.components if c["kind"] == "inventory" and not c["frozen"]]
    if live:
        top = max(live, key=lambda c: (c["contribution"], c["asset_id"]))["detail"]
        per_unit = Decimal(top["price"]) * (1 - Decimal(top["haircut"]))
        if per_unit > 0:
            qty = (shortfall / per_unit).quantize(Decimal("0.001"), rounding=ROUND_UP)
            hint = f" (e.g. {qty:,} {top['unit']} of {top['commodity']} at {Decimal(top['price']):,})"
    cur = d.currency
    return [alert("INVENTORY_MARGIN_CALL", "critical",
                  f"Margin call: the pledged goods are worth less and the loans of {d.outstanding:,} {cur} "
                  f"exceed the limit of {d.limit:,} {cur}. Repay {shortfall:,} {cur}, or pledge further "
                  f"receipts that count {shortfall:,} {cur} after their haircut{hint}.",
                  now, state["pending"][-1:], state["borrower_id"], None)]
