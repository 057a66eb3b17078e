"""Early warning: a per-borrower distress score from the trends stage 2 already sees.

A points scorecard (docs/credit-policy.md section 12): each indicator compares its
recent window (the last ``RECENT_DAYS`` days of event time) with a reference window
(the ``REFERENCE_DAYS`` days before it) and earns points on a linear scale between a
"no concern" and a "full concern" level. The score is the points earned as a share of
the points the borrower's applicable indicators could earn (an indicator with too
little history does not apply), 0-100; every output carries each indicator's value,
reference and points, so a lender or a regulator can recompute it.

Pure: no clock (the facility's watermark is "now"), no I/O. ``observe`` folds what a
signal says into a few bounded day lists *before* the signal is applied (it needs the
asset's previous status); ``evaluate`` scores at the watermark, once per event-time day
and again after a business signal; ``cut`` is the one bounded rule by which a warning
may tighten a limit, and only when the program declares ``ew_max_cut``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from streams.domain.signals import (
    DeliverySignal,
    MachineSignal,
    Output,
    ReceivableSignal,
    Signal,
    alert,
)

if TYPE_CHECKING:  # facility imports this module
    from streams.domain.facility import FacilityState

DAY = 86400.0
RECENT_DAYS = 7
REFERENCE_DAYS = 28
HORIZON_DAYS = 14
WARN_AT = 60          # a warning is raised when the score reaches this ...
CLEAR_BELOW = 30      # ... and cleared only when it falls below this (no flapping)
MIN_COVERAGE = 25     # fewer applicable points than this: too little data to warn
MIN_FAMILIES = 2      # families of data that must earn points (when the borrower has them)
KEEP_DAYS = RECENT_DAYS + REFERENCE_DAYS
MAX_MARKS = 400       # day marks kept per list (orders, invoices, disputes)


@dataclass(frozen=True)
class Indicator:
    """One scorecard line: ``points`` at most, earned linearly from ``low`` (0 points)
    to ``high`` (all points) of its concern measure."""

    name: str
    points: int
    low: float
    high: float
    family: str  # indicators read from the same data corroborate nothing for each other

    def earn(self, concern: float) -> int:
        span = (concern - self.low) / (self.high - self.low)
        return round(self.points * min(1.0, max(0.0, span)))


# The scorecard. Concern measures (docs section 12.1): a fall is 1 - recent / reference.
SCORECARD = (
    Indicator("order_intake", 25, 0.2, 0.8, "orders"),
    Indicator("repeat_frequency", 10, 2.0, 5.0, "orders"),
    Indicator("fulfilment", 20, 0.10, 0.40, "deliveries"),
    Indicator("utilisation", 25, 0.10, 0.50, "machines"),
    Indicator("distance", 25, 0.10, 0.50, "machines"),
    Indicator("disputes", 20, 0.15, 0.45, "invoices"),
    Indicator("payment_delays", 5, 0.0, 0.5, "invoices"),
    Indicator("buyer_distress", 15, 0.0, 0.5, "buyers"),
)
BY_NAME = {i.name: i for i in SCORECARD}
CONDITIONS = frozenset({"payment_delays", "buyer_distress"})
FULFILMENT_PRIOR = 0.80  # reference on-time rate when the reference window has too few deliveries
MIN_REFERENCE_ORDERS = 4
MIN_DELIVERIES = 5
MIN_INVOICES = 4
MIN_UTIL_DAYS = 7
_EPOCH = date(1970, 1, 1).toordinal()


def new_state() -> dict[str, Any]:
    return {"orders": [], "invoices": [], "disputes": [], "util": [], "km": {}, "dist": [], "day": None,
            "since": None, "dirty": True, "score": 0, "coverage": 0, "lines": [], "active": False, "warn": False}


def _ew(state: FacilityState) -> dict[str, Any]:
    ew = state.get("ew")
    if ew is None:  # states from before policy 2026.12-3
        ew = state["ew"] = new_state()
    return ew


def _mark(marks: list[Any], item: Any, day: int, ew: dict[str, Any] | None = None) -> None:
    if ew is not None:  # the borrower's history starts at its earliest dated input
        ew["since"] = day if ew.get("since") is None else min(ew["since"], day)
    marks.append(item)
    while marks and (len(marks) > MAX_MARKS or _day_of(marks[0]) < day - KEEP_DAYS):
        marks.pop(0)


def _day_of(item: Any) -> int:
    day: int = item[0] if isinstance(item, list) else item
    return day


def observe(state: FacilityState, sig: Signal) -> None:
    """Record what a signal means for the indicators, before it is folded into the
    state: a new order, a new invoice, an invoice that became disputed. Machines,
    deliveries and buyers are read from the facility state when scoring."""
    kind = sig["kind"]
    if kind == "machine_released":  # a released truck's kilometres are no longer the borrower's
        _ew(state).get("km", {}).pop(sig["asset_id"], None)
    if kind not in ("order", "receivable", "delivery", "buyers", "program"):
        return
    ew = _ew(state)
    ew["dirty"] = True
    day = int(sig["at"] // DAY)
    if kind == "order" and sig["asset_id"] not in state["assets"]["order"]:
        _mark(ew["orders"], day, day, ew)
    elif kind == "receivable":
        before = state["assets"]["receivable"].get(sig["asset_id"])
        if before is None:
            _mark(ew["invoices"], day, day, ew)
        if cast(ReceivableSignal, sig).get("status") == "disputed" and (before is None or before.get("status") != "disputed"):
            _mark(ew["disputes"], day, day)
    elif kind == "delivery":
        day = int(cast(DeliverySignal, sig)["actual_at"] // DAY)
        ew["since"] = day if ew.get("since") is None else min(ew["since"], day)


def observe_distance(state: FacilityState, sig: MachineSignal, season: float) -> None:
    """Keep a machine signal's ``km7`` (an electric truck's km per day over the days r7
    averages, machines.distance) divided by the program's season of those days (the
    share ``UTILISATION_COLLAPSE`` uses): the use of a machine that has no hour meter."""
    km7 = sig.get("km7")  # absent from the signals of a stage 1 before 2026-12-01
    if km7 is None or season <= 0:
        return
    _ew(state).setdefault("km", {})[sig["asset_id"]] = [int(sig["at"] // DAY), round(km7 / season, 3)]


def _fleet_distance(state: FacilityState) -> float | None:
    """Season-adjusted km per day of the borrower's trucks together (their latest km7)."""
    km = _ew(state).get("km") or {}
    return sum(x[1] for x in km.values()) if km else None


def _fleet_ratio(state: FacilityState) -> float | None:
    """Mean season-adjusted r7 ratio of the borrower's machines (collapse.py keeps each
    machine's latest as ``c7`` = [day, ratio])."""
    ratios = [m["c7"][1] for m in state.get("collapse", {}).values() if m.get("c7")]
    return sum(ratios) / len(ratios) if ratios else None


def _count(marks: list[Any], first: int, last: int) -> int:
    return sum(1 for m in marks if first <= _day_of(m) <= last)


def _line(name: str, value: float, reference: float | None, concern: float) -> dict[str, Any]:
    ind = BY_NAME[name]
    return {"indicator": name, "value": round(value, 3),
            "reference": None if reference is None else round(reference, 3),
            "points": ind.earn(concern), "max_points": ind.points}


def score_lines(state: FacilityState, now: float) -> list[dict[str, Any]]:
    """The scorecard lines that apply to this borrower at ``now`` (event time)."""
    ew = _ew(state)
    today = int(now // DAY)
    r0, p0, p1 = today - RECENT_DAYS + 1, today - KEEP_DAYS + 1, today - RECENT_DAYS
    lines = []
    # Order intake and repeat frequency: new orders per day, recent vs reference.
    ref_orders = _count(ew["orders"], p0, p1)
    if ref_orders >= MIN_REFERENCE_ORDERS:
        ref_rate = ref_orders / REFERENCE_DAYS
        rate = _count(ew["orders"], r0, today) / RECENT_DAYS
        lines.append(_line("order_intake", rate, ref_rate, 1 - rate / ref_rate))
        last = max(_day_of(m) for m in ew["orders"])
        gaps = (today - last) * ref_rate  # days since the last order / the usual gap
        lines.append(_line("repeat_frequency", today - last, 1 / ref_rate, gaps))
    # Fulfilment: on-time share of the recent window's deliveries (at least the last
    # MIN_DELIVERIES: fewer deliveries is itself the symptom, it must not hide the rate)
    # vs the reference window's other deliveries (or the prior).
    seen = sorted((d["at"], d["on_time"]) for d in state["deliveries"].values() if p0 <= int(d["at"] // DAY) <= today)
    split = min(len(seen) - MIN_DELIVERIES, sum(1 for at, _ in seen if int(at // DAY) < r0))
    recent, ref = [ok for _, ok in seen[max(0, split):]], [ok for _, ok in seen[:max(0, split)]]
    if len(recent) >= MIN_DELIVERIES:
        rate = sum(recent) / len(recent)
        ref_rate = sum(ref) / len(ref) if len(ref) >= MIN_DELIVERIES else FULFILMENT_PRIOR
        lines.append(_line("fulfilment", rate, ref_rate, ref_rate - rate))
    # Utilisation: the fleet's r7 ratio now vs its mean over the reference window.
    ref_util = [r for d, r in ew["util"] if p0 <= d <= p1]
    current = _fleet_ratio(state)
    if current is not None and len(ref_util) >= MIN_UTIL_DAYS:
        base = sum(ref_util) / len(ref_util)
        if base > 0:
            lines.append(_line("utilisation", current, base, 1 - current / base))
    # Distance: the same for trucks without an hour meter, from their odometers.
    ref_km = [r for d, r in ew.get("dist", []) if p0 <= d <= p1]
    km = _fleet_distance(state)
    if km is not None and len(ref_km) >= MIN_UTIL_DAYS:
        base = sum(ref_km) / len(ref_km)
        if base > 0:
            lines.append(_line("distance", km, base, 1 - km / base))
    # Disputes: share of the recent window's new invoices that were disputed.
    invoices = _count(ew["invoices"], r0, today)
    if invoices >= MIN_INVOICES:
        share = min(1.0, _count(ew["disputes"], r0, today) / invoices)
        lines.append(_line("disputes", share, None, share))
    # Payment delays: confirmed invoices past their due date, unpaid.
    open_rcv = [r for r in state["assets"]["receivable"].values() if r["status"] in ("confirmed", "partially_paid")]
    if open_rcv:
        late = sum(1 for r in open_rcv if date.fromisoformat(r["due_date"]).toordinal() - _EPOCH < today)
        lines.append(_line("payment_delays", late / len(open_rcv), None, late / len(open_rcv)))
    # Buyer distress: the lowest factor among the borrower's buyers (graph contagion).
    if state["buyers"]:
        worst = min(float(b["factor"]) for b in state["buyers"].values())
        lines.append(_line("buyer_distress", worst, 1.0, 1 - worst))
    return lines


def evaluate(state: FacilityState, now: float, triggers: list[str]) -> list[Output]:
    """Score the borrower at ``now``: once per event-time day and after a business
    signal (``observe`` marks it). Raises EARLY_WARNING when the score reaches WARN_AT
    (and EARLY_WARNING_CLEARED when it falls below CLEAR_BELOW) while the facility is
    not already in default (no loan overdue) and has consent."""
    ew = _ew(state)
    today = int(now // DAY)
    if ew["day"] == today and not ew["dirty"]:
        return []
    if ew["day"] != today:
        ratio = _fleet_ratio(state)
        if ratio is not None:  # one fleet figure per day, kept for the reference window
            ew["since"] = today if ew.get("since") is None else min(ew["since"], today)
            ew["util"] = [x for x in ew["util"] if x[0] > today - KEEP_DAYS][-KEEP_DAYS:] + [[today, round(ratio, 4)]]
        km = _fleet_distance(state)
        if km is not None:  # and one for the trucks' kilometres
            ew["since"] = today if ew.get("since") is None else min(ew["since"], today)
            ew["dist"] = [x for x in ew.get("dist", []) if x[0] > today - KEEP_DAYS][-KEEP_DAYS:] + [[today, km]]
    ew["day"], ew["dirty"] = today, False
    lines = score_lines(state, now)
    # Conditions (payment delays, buyer distress) count in the coverage only while present:
    # their absence says nothing about a trend, and would dilute the trends that move.
    coverage = sum(x["max_points"] for x in lines if x["indicator"] not in CONDITIONS or x["points"] > 0)
    earned = sum(x["points"] for x in lines)
    score = round(100 * earned / coverage) if coverage >= MIN_COVERAGE else 0
    # Corroboration: points from two families of data (orders, deliveries, machines,
    # invoices, buyers), unless only one family applies to the borrower (a contractor).
    families = {BY_NAME[x["indicator"]].family for x in lines}
    earning = {BY_NAME[x["indicator"]].family for x in lines if x["points"] > 0}
    corroborated = len(earning) >= min(MIN_FAMILIES, len(families))
    ew["score"], ew["coverage"], ew["lines"] = score, coverage, lines
    # A warning needs a full reference window of the borrower's history behind it.
    mature = ew.get("since") is not None and today - ew["since"] >= KEEP_DAYS
    # The warning as a state (the reason and the cut of section 12.3 follow it): a function
    # of the inputs seen, whatever order the topics were read in.
    ew["warn"] = score >= WARN_AT and corroborated and mature
    in_default = any(loan["overdue"] for loan in state["loans"].values()) or state["consent"] is not True
    was = ew["active"]
    if not was and ew["warn"] and not in_default:
        ew["active"] = True
        return [alert("EARLY_WARNING", "warning", warning_text(state["borrower_id"], score, lines), now,
                      triggers, state["borrower_id"], None, extra={"early_warning": summary(ew)})]
    if was and score < CLEAR_BELOW:
        ew["active"] = False
        return [alert("EARLY_WARNING_CLEARED", "info",
                      f"Early warning for {state['borrower_id']} cleared: score {score}/100.", now, triggers,
                      state["borrower_id"], None, extra={"early_warning": summary(ew)})]
    return []


def top(lines: list[dict[str, Any]], n: int = 3) -> list[dict[str, Any]]:
    """The lines that earned points, most points first (ties by scorecard order)."""
    order = {i.name: k for k, i in enumerate(SCORECARD)}
    return sorted((x for x in lines if x["points"] > 0), key=lambda x: (-x["points"], order[x["indicator"]]))[:n]


def describe(x: dict[str, Any]) -> str:
    name, v, ref = x["indicator"], x["value"], x["reference"]
    if name in ("order_intake",):
        return f"order intake {v * 7:.1f}/week vs {ref * 7:.1f}/week before"
    if name == "repeat_frequency":
        return f"no order for {v:.0f} days (usually every {ref:.1f})"
    if name == "fulfilment":
        return f"on-time deliveries {v:.0%} vs {ref:.0%} before"
    if name == "utilisation":
        return f"machine use {v:.0%} of its season vs {ref:.0%} before"
    if name == "distance":
        return f"trucks driven {v:.0f} km/day (for the season) vs {ref:.0f} before"
    if name == "disputes":
        return f"{v:.0%} of recent invoices disputed"
    if name == "payment_delays":
        return f"{v:.0%} of open invoices past due"
    return f"a buyer's factor at {v:.0%}"


def warning_text(borrower: str, score: int, lines: list[dict[str, Any]]) -> str:
    drivers = "; ".join(f"{describe(x)} (+{x['points']})" for x in top(lines))
    return (f"Early warning for {borrower}: score {score}/100, distress likely within {HORIZON_DAYS} days "
            f"if these trends continue: {drivers}.")


def summary(ew: dict[str, Any]) -> dict[str, Any]:
    """The block every limit update and EARLY_WARNING alert carries."""
    return {"score": ew["score"], "active": ew["active"], "horizon_days": HORIZON_DAYS,
            "coverage": ew["coverage"], "contributions": ew["lines"],
            "top": [x["indicator"] for x in top(ew["lines"])]}


def reason(state: FacilityState, max_cut: Decimal) -> tuple[Decimal, str | None]:
    """The EARLY_WARNING reason of a limit update while the borrower's score warns
    (``ew["warn"]``: score >= WARN_AT, corroborated, 35 days of history), and the bounded
    tightening rule: the limit is reduced by ``max_cut x (score - WARN_AT) / (100 - WARN_AT)``
    (0 at the threshold, ``max_cut`` at 100; ``max_cut`` is the program's ``ew_max_cut``,
    0 = warn only). A function of the current score only, not of the alert's history, so
    the limit is the same whatever order the topics were read in.
    Returns (cut share, reason text), or (0, None) when the score does not warn."""
    ew = state.get("ew")
    if not ew or not ew.get("warn"):
        return Decimal(0), None
    share = Decimal(0)
    if max_cut > 0:
        share = (max_cut * Decimal(ew["score"] - WARN_AT) / Decimal(100 - WARN_AT)).quantize(Decimal("0.0001"))
    drivers = "; ".join(describe(x) for x in top(ew["lines"]))
    effect = (f"the limit is reduced by {share:.1%} (at most {max_cut:.0%}) while the score stays at "
              f"{WARN_AT} or above" if max_cut > 0 else "your limit is not changed by it")
    return share, (f"Early warning: score {ew['score']}/100 ({drivers}); distress is likely within "
                   f"{HORIZON_DAYS} days if these trends continue; {effect}.")
