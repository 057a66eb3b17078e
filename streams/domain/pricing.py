"""A price on every limit: an indicative APR from a documented risk grade and the
program's pricing table, never above four times the one-year Loan Prime Rate
(docs/credit-policy.md section 13).

The risk grade is a points sum (0-100, higher = riskier) of three documented parts:
the early-warning score (early_warning.py), the buyers' factors of the receivables that
count, and how much of the limit rests on assets without a confirmed buyer obligation
(orders, machines, dealer units, receipts, waybills). The program maps grades to annual
rates; the legal ceiling is 4 x the one-year LPR, which arrives as a
``registry.reference_rate`` event (until one has, ``lpr_1y_default``). A subsidised
program shows the borrower's net rate beside the gross. Pure: no clock, no I/O.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # facility imports this module (through policy)
    from streams.domain.facility import FacilityState

GRADES = ("A", "B", "C", "D", "E")
GRADE_FLOORS = (0, 20, 40, 60, 80)      # points at which each grade starts
EW_WEIGHT = 50                           # points at an early-warning score of 100
BUYER_WEIGHT = 30                        # points at a weighted buyer factor of 0
UNCONFIRMED_WEIGHT = 20                  # points when nothing rests on confirmed receivables
CAP_MULTIPLE = Decimal(4)                # the legal ceiling: 4 x the one-year LPR
# A public interest subsidy pays at most this much interest per borrower a year (the
# seeds: 30%, capped at CNY 500k); counted on the full limit, as if all of it were drawn.
SUBSIDY_CAP_CNY = Decimal(500_000)
BP = Decimal("0.01")


def grade(state: FacilityState, receivables: list[dict[str, Any]], total: Decimal) -> tuple[str, dict[str, int]]:
    """The borrower's risk grade and its parts (points): its receivable components and
    the sum of all its components (before caps)."""
    ew = state.get("ew") or {}
    ew_pts = round(EW_WEIGHT * ew.get("score", 0) / 100)
    rcv = sum((Decimal(c["contribution"]) for c in receivables), Decimal(0))
    if rcv > 0:  # the buyers' factors, weighted by what each invoice contributes
        factor = sum((Decimal(c["contribution"]) * Decimal(c["detail"].get("buyer_factor", "1"))
                      for c in receivables), Decimal(0)) / rcv
    else:
        factor = Decimal(1)
    buyer_pts = round(BUYER_WEIGHT * (1 - float(factor)))
    unconfirmed = float((total - rcv) / total) if total > 0 else 1.0
    mix_pts = round(UNCONFIRMED_WEIGHT * unconfirmed)
    points = ew_pts + buyer_pts + mix_pts
    g = GRADES[max(i for i, floor in enumerate(GRADE_FLOORS) if points >= floor)]
    return g, {"early_warning": ew_pts, "buyers": buyer_pts, "unconfirmed_assets": mix_pts, "total": points}


def price(state: FacilityState, receivables: list[dict[str, Any]], total: Decimal, table: dict[str, Decimal],
          lpr_default: Decimal, subsidy_share: Decimal,
          limit: Decimal | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The ``pricing`` block of a limit update and its reasons: PRICE_CAPPED when the
    table's rate is above the legal ceiling, SUBSIDY_CAPPED when the subsidy on the full
    ``limit`` (a CNY limit; None = no cap) would pay more than CNY 500,000 of interest a
    year. Rates are annual percentages (APR) to 0.01."""
    g, parts = grade(state, receivables, total)
    rate = state.get("reference_rate") or {}
    lpr = Decimal(str(rate["value_pct"])) if rate else lpr_default
    ceiling = (lpr * CAP_MULTIPLE).quantize(BP, ROUND_HALF_UP)
    gross = Decimal(str(table[g])).quantize(BP, ROUND_HALF_UP)
    reasons = []
    price_capped = gross > ceiling
    if price_capped:
        reasons.append(("PRICE_CAPPED", f"The program's rate for grade {g} ({gross}%) is above the legal ceiling of "
                                  f"4 x the one-year LPR ({lpr}%) = {ceiling}%; the rate is {ceiling}%."))
        gross = ceiling
    subsidy_pct = gross * subsidy_share  # points of APR the subsidy pays
    capped_subsidy = bool(limit) and limit * subsidy_pct / 100 > SUBSIDY_CAP_CNY  # type: ignore[operator]
    if capped_subsidy:
        subsidy_pct = SUBSIDY_CAP_CNY * 100 / limit  # type: ignore[operator]
        reasons.append(("SUBSIDY_CAPPED", f"The interest subsidy ({subsidy_share:.0%} of {gross}%) on your limit "
                                          f"of {limit:,.0f} CNY would exceed CNY 500,000 a year; it pays "
                                          f"{subsidy_pct.quantize(BP, ROUND_HALF_UP)} points of the rate."))
    net = (gross - subsidy_pct).quantize(BP, ROUND_HALF_UP)
    block = {"grade": g, "grade_points": parts, "apr_pct": str(gross), "net_apr_pct": str(net),
             "subsidy_share": str(subsidy_share), "ceiling_pct": str(ceiling), "lpr_1y_pct": str(lpr),
             "lpr_source": rate.get("event_id", "default"), "capped": price_capped}
    if capped_subsidy:
        block["subsidy_capped"] = True
    return block, reasons
