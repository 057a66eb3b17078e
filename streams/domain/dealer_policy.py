"""The dealer component of a limit (以销定融): a line that follows verified sell-through,
bounded by the OEM's production plan, with the floor-plan rules applied at "now".

Pure: ``now`` is the facility's event-time watermark. Formulas, parameters, reasons and
a worked example are in docs/credit-policy.md section 1.4.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from streams.domain.season import month_of
from streams.domain.signals import DealerSignal, utc_time

DAY = 86400.0
WINDOW_DAYS = 30  # one sales window; the line needs two consecutive ones to rise


def _money(x: Decimal, unit: Decimal) -> Decimal:
    return x.quantize(unit, rounding=ROUND_DOWN)


def dealer_components(sig: DealerSignal, params: Any, now: float, currency: str, unit: Decimal,
                      reasons: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The dealer's line and a frozen component per unit missing at audit; also the ids
    of units sold out of trust (sold, not repaid within ``dealer_repay_days``)."""
    dealer = sig["asset_id"]
    zero = _money(Decimal(0), unit)
    units = {uid: u for uid, u in sig["units"].items() if u["currency"] == currency}
    window = WINDOW_DAYS * DAY
    profile = params.seasonal_profile

    def weighed(u: dict[str, Any]) -> Decimal:
        # Judged against the same season: a sale in a month the program expects at 25%
        # of the usual counts four times, so a winter lull is not a fall in sales.
        price = Decimal(u["price"])
        return price / Decimal(str(profile[month_of(int(u["sold"] // DAY)) - 1])) if profile else price

    # Verified sales: retail sales of units the dealer picked up under the floor plan,
    # at their wholesale price, in the last 30 days and in the 30 days before.
    recent = _money(sum((weighed(u) for u in units.values()
                         if u["sold"] is not None and now - window < u["sold"] <= now), zero), unit)
    prior = _money(sum((weighed(u) for u in units.values()
                        if u["sold"] is not None and now - 2 * window < u["sold"] <= now - window), zero), unit)
    # A fall in sales lowers the line at once; a rise counts once the window before
    # confirms it (the two-window rule of the equipment utilisation).
    basis = min(recent, prior)
    if recent > prior:
        reasons.append(("DEALER_SALES_UNCONFIRMED", f"Sales of {recent:,.0f} {currency} in the last "
                        f"{WINDOW_DAYS} days count once the {WINDOW_DAYS} days before confirm them "
                        f"({prior:,.0f} {currency})."))
    month = utc_time(now).strftime("%Y-%m")
    plan = sig["plans"].get(month)
    plan_amount = Decimal(plan["amount"]) if plan and plan["currency"] == currency else None
    line = _money(basis * params.dealer_sales_multiple, unit)
    if plan_amount is None:
        reasons.append(("DEALER_NO_PLAN", f"There is no production plan for {month} from your "
                        f"manufacturer: sales-based financing follows the plan and counts 0."))
        line = zero
    elif line > plan_amount:
        reasons.append(("DEALER_PLAN_CAP", f"Your sales-based line is bounded by the manufacturer's "
                        f"plan for {month}: {plan_amount:,.0f} {currency}."))
        line = _money(plan_amount, unit)

    components: list[dict[str, Any]] = []
    curtailed = zero
    missing = zero
    in_stock = 0
    for uid, u in sorted(units.items()):
        if u["sold"] is not None or u["repaid"] is not None:
            continue
        in_stock += 1
        price = Decimal(u["price"])
        age = (now - u["picked"]) / DAY
        cut = zero
        if age > params.curtail_after_days:
            # Aged stock pays down in steps: one step at the age, one more every period.
            steps = int((age - params.curtail_after_days) // params.curtail_every_days) + 1
            cut = min(price, _money(price * params.curtail_step * steps, unit))
            curtailed += cut
            reasons.append(("DEALER_CURTAILMENT", f"Unit {uid} has been in stock {int(age)} days; "
                            f"its financing steps down by {cut:,.0f} {currency}."))
        if u["missing"]:
            missing += price - cut
            reasons.append(("UNIT_MISSING_AT_AUDIT", f"Unit {uid} was not found at the last stock "
                            "audit; its share of the limit is frozen."))
            components.append({"kind": "dealer_unit", "asset_id": uid, "contribution": zero, "frozen": True,
                               "detail": {"dealer": dealer, "wholesale_price": str(price)}})
    out_of_trust = sorted(uid for uid, u in units.items() if u["sold"] is not None and u["repaid"] is None
                          and now - u["sold"] > params.dealer_repay_days * DAY)
    for uid in out_of_trust:
        reasons.append(("SOLD_OUT_OF_TRUST", f"Unit {uid} was sold on {utc_time(units[uid]['sold']).date()} "
                        f"and not repaid within {params.dealer_repay_days} days; the dealer line is "
                        "frozen until it is."))
    frozen = bool(out_of_trust)
    value = max(zero, line - curtailed - missing)
    components.insert(0, {"kind": "dealer", "asset_id": dealer, "frozen": frozen,
                          "contribution": zero if frozen else value,
                          "detail": {"sales_30d": str(recent), "sales_prior_30d": str(prior),
                                     "plan": "none" if plan_amount is None else str(plan_amount),
                                     "curtailed": str(curtailed), "missing": str(missing),
                                     "in_stock": str(in_stock)}})
    return components, out_of_trust
