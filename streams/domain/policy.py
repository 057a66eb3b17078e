"""The credit policy: a pure function from a borrower's facility state to a decision.

No I/O, no clock, no randomness: "now" is the facility's event-time watermark, so the
same inputs always give the same decision. Every formula and default is documented in
docs/credit-policy.md; parameters a program may override come from its registry event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, Decimal
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, cast

from schemas.currencies import minor_unit
from streams.domain import early_warning, policyfile, pricing, risk_pool
from streams.domain.dealer_policy import dealer_components
from streams.domain.freight_policy import freight_components
from streams.domain.inventory_policy import inventory_components
from streams.domain.season import MONTHS, Profile, month_of, window_shares
from streams.domain.signals import MachineSignal, utc_time

if TYPE_CHECKING:  # facility imports this module
    from streams.domain.facility import FacilityState

# The version an engine decides under until a promotion says otherwise; its parameters
# are the file streams/domain/policies/<version>.toml (policyfile.py), not code.
POLICY_VERSION = "2026.12-3"
BASE = policyfile.values(policyfile.shipped(POLICY_VERSION))
DAY = 86400.0
D0 = Decimal("0.00")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class PolicyParams:
    """The parameters a decision is made under: a policy version's file (the
    defaults are the shipped current version, policies/<POLICY_VERSION>.toml) with a
    program's overrides on top (``for_program``)."""

    advance_rate: Decimal = BASE["advance_rate"]
    order_advance_rate: Decimal = BASE["order_advance_rate"]
    loan_to_value: Decimal = BASE["loan_to_value"]
    max_tenor_days: int = BASE["max_tenor_days"]
    fulfilment_prior: Decimal = BASE["fulfilment_prior"]
    fulfilment_min_deliveries: int = BASE["fulfilment_min_deliveries"]
    fulfilment_window_days: int = BASE["fulfilment_window_days"]
    # A confirmed order that is never delivered stops counting this long after its
    # delivery due date: late goods are common, goods that never come are a risk.
    order_grace_days: int = BASE["order_grace_days"]
    util_floor: float = BASE["util_floor"]
    util_cap: float = BASE["util_cap"]
    util_step: float = BASE["util_step"]
    util_step_window_days: int = BASE["util_step_window_days"]
    silent_after_hours: float = BASE["silent_after_hours"]
    silent_factor: Decimal = BASE["silent_factor"]
    soh_full: float = BASE["soh_full"]
    soh_low: float = BASE["soh_low"]
    soh_low_factor: float = BASE["soh_low_factor"]
    soh_poor_factor: float = BASE["soh_poor_factor"]
    critical_fault_factor: Decimal = BASE["critical_fault_factor"]
    inclusive_cap_cny: Decimal = BASE["inclusive_cap_cny"]
    # The limit is rounded down to this unit, which is also the materiality threshold:
    # a limit update is published only when the rounded limit moves (see is_material).
    rounding_unit: Decimal = BASE["rounding_unit"]
    # A program's seasonal profile: the expected share of the baseline hours per calendar
    # month (January first); empty = every month 1.0 (see season.py).
    seasonal_profile: Profile = BASE["seasonal_profile"]
    # Sales-based dealer financing (dealer_policy.py, docs section 1.4).
    dealer_sales_multiple: Decimal = BASE["dealer_sales_multiple"]
    dealer_repay_days: int = BASE["dealer_repay_days"]
    curtail_after_days: int = BASE["curtail_after_days"]
    curtail_every_days: int = BASE["curtail_every_days"]
    curtail_step: Decimal = BASE["curtail_step"]
    # Warehouse receipts (inventory_policy.py, section 1.5): (commodity, haircut) pairs;
    # a commodity not listed is not financed. Freight receivables (section 1.6).
    commodity_haircuts: tuple[tuple[str, Decimal], ...] = BASE["commodity_haircuts"]
    price_max_age_days: int = BASE["price_max_age_days"]
    freight_advance_rate: Decimal = BASE["freight_advance_rate"]
    # Early warning (early_warning.py, docs section 12.3): an active warning's largest cut;
    # 0 = warn only. A program declares it (ProgramParameters.ew_max_cut).
    ew_max_cut: Decimal = BASE["ew_max_cut"]
    # Pricing (pricing.py, docs section 13): APR in percent per risk grade (sorted
    # (grade, rate) pairs), the share of the interest a public subsidy pays, and the
    # one-year LPR until one is published.
    pricing_table: tuple[tuple[str, Decimal], ...] = BASE["pricing_table"]
    interest_subsidy_share: Decimal = BASE["interest_subsidy_share"]
    lpr_1y_default: Decimal = BASE["lpr_1y_default"]

    @classmethod
    def for_program(cls, program: dict[str, Any], version: str = POLICY_VERSION) -> PolicyParams:
        """Policy ``version``'s parameters with the program's overrides on top."""
        p = program.get("parameters") or {}
        return _for_parameters(version, tuple(sorted((k, _hashable(v)) for k, v in p.items()
                                                     if k in cls.__dataclass_fields__ and v is not None)))


@lru_cache(maxsize=64)
def for_version(version: str) -> PolicyParams:
    """A policy version's parameters (its file, see policyfile.get); a parameter its
    file does not name yet (a new mode's, while it is being added) keeps its code default."""
    return replace(PolicyParams(), **policyfile.values(policyfile.get(version)))


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):  # commodity_haircuts
        return tuple(sorted(v.items()))
    return tuple(v) if isinstance(v, list) else v


@lru_cache(maxsize=1 << 10)
def _for_parameters(version: str, items: tuple[tuple[str, Any], ...]) -> PolicyParams:
    """Parsed once per distinct parameter set (every decision of a program asks)."""
    def parse(k: str, v: Any) -> Any:
        if isinstance(getattr(PolicyParams, k), int):
            return int(v)
        if k in ("commodity_haircuts", "pricing_table"):
            return tuple(sorted((c, Decimal(str(h))) for c, h in v))
        if k == "seasonal_profile":
            return tuple(float(x) for x in v)
        return Decimal(str(v))
    return replace(for_version(version), **{k: parse(k, v) for k, v in items})


@dataclass
class Decision:
    limit: Decimal
    currency: str
    status: str
    codes: list[str]
    lenders: list[dict[str, Any]]
    outstanding: Decimal
    available: Decimal
    sums: dict[str, str]
    # Dealer units sold and not repaid in time at this watermark: (dealer, unit) pairs.
    out_of_trust: list[tuple[str, str]] = field(default_factory=list)
    # The indicative price (pricing.py): the limit update's ``pricing`` block.
    pricing: dict[str, Any] = field(default_factory=dict)
    # The limit's place in its program's risk-sharing pool (risk_pool.py), or None.
    risk_pool: dict[str, Any] | None = None
    # The components and the reasons' texts, built only when asked (when an update is
    # published): the rest of a decision does not grow with the fleet (fleet.py).
    build: Callable[[], tuple[list[dict[str, Any]], list[dict[str, str]]]] = field(
        default=lambda: ([], []), repr=False, compare=False)

    @cached_property
    def _built(self) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        return self.build()

    @property
    def components(self) -> list[dict[str, Any]]:
        return self._built[0]

    @property
    def reasons(self) -> list[dict[str, str]]:
        return self._built[1]


@dataclass(frozen=True)
class Equipment:
    """The pledged machines' part of a decision: their sum, whether one is frozen, the
    reason codes they raise, and (built when asked) their components and reasons in
    machine order."""

    total: Decimal
    frozen: bool
    codes: frozenset[str]
    components: Callable[[], list[dict[str, Any]]]
    reasons: Callable[[], list[tuple[str, str]]]


def _money(x: Decimal, unit: Decimal = CENT) -> Decimal:
    """Round down to the currency's minor unit (``unit``): "round_down_cent" for CNY."""
    return x.quantize(unit, rounding=ROUND_DOWN)


@lru_cache(maxsize=1 << 16)
def _acquired_ts(acquired_on: str) -> float:
    """A pledge's acquisition date as a UTC timestamp: parsed once per distinct date
    (``decide`` values every machine of a fleet on each signal)."""
    return datetime.fromisoformat(acquired_on).replace(tzinfo=UTC).timestamp()


@lru_cache(maxsize=1 << 16)
def _decimal(text: str) -> Decimal:
    return Decimal(text)  # immutable, so one parsed value serves every caller


def _day(ts: float) -> date:
    return utc_time(ts).date()


def fulfilment_score(state: FacilityState, params: PolicyParams, now: float) -> tuple[Decimal, int, int]:
    window = params.fulfilment_window_days * DAY
    recent = [d for d in state["deliveries"].values() if now - d["at"] <= window]
    on_time = sum(1 for d in recent if d["on_time"])
    if len(recent) < params.fulfilment_min_deliveries:
        return params.fulfilment_prior, on_time, len(recent)
    return Decimal(on_time) / Decimal(len(recent)), on_time, len(recent)


def accepted_utilisation(target: float, history: list[list[float]], params: PolicyParams,
                         now: float) -> float:
    """Behaviour may lower the factor at once but raise it only by a bounded step.

    ``history`` holds [event time, accepted factor] pairs. The ceiling is (1 + step) times
    the lowest factor in force at any time in the rolling window, counting the one that
    was in force when the window opened.
    """
    if not history:
        return min(target, 1.0)
    last = history[-1][1]
    if target <= last:
        return target
    start = now - params.util_step_window_days * DAY
    in_force = [f for at, f in history if at <= start][-1:] or [history[0][1]]
    base = min(in_force + [f for at, f in history if at > start])
    return min(target, round(base * (1 + params.util_step), 6))


def utilisation_target(sig: MachineSignal, params: PolicyParams) -> float:
    """Rising use counts only once both complete weeks confirm it; falling use at once.

    Each window is judged against the same season's expectation (baseline x the
    program's seasonal share of that window), so a winter pause the program declared
    is not a fall in use."""
    base = sig["pledge"]["baseline"]
    shares = window_shares(params.seasonal_profile, sig["last_seen"], sig.get("first_day"))
    ratios = [1.0 if r is None else r / (base * s)
              for r, s in zip((sig.get("r7"), sig.get("w1"), sig.get("w2")), shares, strict=True)]
    return min(max(min(ratios), params.util_floor), params.util_cap)


def _machine(sig: MachineSignal, params: PolicyParams, now: float, history: list[list[float]],
             reasons: list[tuple[str, str]], unit: Decimal = CENT) -> dict[str, Any]:
    pledge = sig["pledge"]
    mid = sig["asset_id"]
    price = _decimal(pledge["price"])
    age_years = max(0.0, (now - _acquired_ts(pledge["acquired_on"])) / (365.25 * DAY))
    age_factor = max(0.0, 1 - age_years / pledge["life_years"])
    hours = sig.get("hours") or 0.0
    hours_factor = max(0.0, 1 - hours / pledge["life_hours"])
    value = _money(price * Decimal(str(round(min(age_factor, hours_factor), 6))), unit)
    target = utilisation_target(sig, params)
    util = accepted_utilisation(target, history, params, now)
    if util < target - 1e-9:
        reasons.append(("UTILISATION_INCREASE_BOUNDED",
                        f"Machine {mid} works more; its value rises step by step (at most "
                        f"{params.util_step:.0%} per {params.util_step_window_days} days)."))
    if util < 0.6:
        reasons.append(("UTILISATION_LOW", f"Machine {mid} works {util:.0%} of its usual hours."))
    health = Decimal(1)
    soh = sig.get("soh")
    if soh is not None and soh < params.soh_full:
        h = (params.soh_poor_factor if soh < params.soh_low else
             params.soh_low_factor + (soh - params.soh_low) / (params.soh_full - params.soh_low)
             * (1 - params.soh_low_factor))
        health *= Decimal(str(round(h, 4)))
        reasons.append(("BATTERY_HEALTH_LOW", f"The battery of {mid} has {soh:.0f}% of its original capacity."))
    if sig.get("critical"):
        health *= params.critical_fault_factor
        reasons.append(("CRITICAL_FAULT", f"Machine {mid} reports a critical fault."))
    frozen = False
    if sig.get("alarm", 0) >= 3:
        frozen = True
        reasons.append(("BATTERY_ALARM_L3", f"The battery of {mid} raised its highest alarm; "
                                            "its share of the limit is frozen until it clears."))
    if not sig.get("in_fence", True):
        frozen = True
        reasons.append(("GEOFENCE_BREACH", f"Machine {mid} is outside its pledged site area; "
                                           "its share of the limit is frozen."))
    silent = (now - sig["last_seen"]) / 3600 > params.silent_after_hours
    if silent:
        health *= params.silent_factor
        reasons.append(("MACHINE_SILENT", f"Machine {mid} has not reported for over "
                                          f"{params.silent_after_hours:.0f} hours."))
    contribution = (_money(D0, unit) if frozen
                    else _money(value * params.loan_to_value * Decimal(str(round(util, 6))) * health, unit))
    detail = {"collateral_value": str(value), "utilisation": f"{util:.3f}",
              "health": str(health), "hours": f"{hours:.1f}"}
    if params.seasonal_profile:  # the season r7 was judged against (only for seasonal programs)
        detail["season"] = f"{window_shares(params.seasonal_profile, sig['last_seen'], sig.get('first_day'))[0]:.3f}"
    return {"kind": "equipment", "asset_id": mid, "contribution": contribution, "frozen": frozen,
            "detail": detail}


def equipment(state: FacilityState, params: PolicyParams) -> Equipment:
    """Every pledged machine valued at the watermark, from scratch (fleet.equipment
    keeps the same per machine and values only what changed; tests compare the two)."""
    now, currency = state["watermark"], cast(dict[str, Any], state["program"])["currency"]  # registered
    unit = minor_unit(currency)
    components: list[dict[str, Any]] = []
    reasons: list[tuple[str, str]] = []
    for mid, sig in sorted(state["assets"]["machine"].items()):
        if sig["pledge"]["currency"] != currency:
            continue
        components.append(_machine(sig, params, now, state["util"].get(mid, []), reasons, unit))
    return Equipment(total=sum((c["contribution"] for c in components), _money(D0, unit)),
                     frozen=any(c["frozen"] for c in components), codes=frozenset(c for c, _ in reasons),
                     components=lambda: components, reasons=lambda: reasons)


def decide(state: FacilityState, params: PolicyParams, machines: Equipment | None = None) -> Decision:
    """The limit, its components and reasons, for one borrower at its watermark;
    ``machines``: the equipment part when the caller keeps it (fleet.equipment)."""
    now = state["watermark"]
    program = cast(dict[str, Any], state["program"])  # decided once registered (facility)
    currency = program["currency"]
    # Every amount is rendered to the currency's minor unit (JPY has none, KWD three).
    unit = minor_unit(currency)
    zero = _money(D0, unit)
    today = _day(now)
    reasons: list[tuple[str, str]] = []
    components: list[dict[str, Any]] = []
    consent = state["consent"] is True
    buyers = state["buyers"]

    # Receivables
    invoiced_pos = set()
    for fp, r in sorted(state["assets"]["receivable"].items()):
        if r["status"] != "cancelled" and r.get("po_id"):
            invoiced_pos.add(r["po_id"])
        if r["status"] not in ("confirmed", "partially_paid"):
            if r["status"] == "disputed":
                reasons.append(("RECEIVABLE_DISPUTED", f"Invoice {r['number']} is disputed by the buyer and does not count."))
            elif r["status"] == "issued":
                reasons.append(("RECEIVABLE_UNCONFIRMED", f"Invoice {r['number']} counts once the buyer confirms it."))
            continue
        if r.get("seller_tax_ref") is None or r.get("seller_tax_ref") != state.get("tax_ref"):
            reasons.append(("RECEIVABLE_SELLER_MISMATCH", f"Invoice {r['number']} does not name your "
                            "registered tax id as its seller and does not count."))
            continue
        due, issued = date.fromisoformat(r["due_date"]), date.fromisoformat(r["issue_date"])
        if due < today:
            reasons.append(("RECEIVABLE_OVERDUE", f"Invoice {r['number']} is past its due date and does not count."))
            continue
        if (due - issued).days > params.max_tenor_days:
            reasons.append(("RECEIVABLE_TENOR_TOO_LONG", f"Invoice {r['number']} is due in more than "
                            f"{params.max_tenor_days} days and does not count."))
            continue
        if r["currency"] != currency:
            reasons.append(("RECEIVABLE_CURRENCY", f"Invoice {r['number']} is not in {currency}."))
            continue
        b = buyers.get(r["buyer_id"], {"factor": 1.0, "status": "healthy"})
        factor = Decimal(str(b["factor"]))
        if factor < 1:
            code = "BUYER_DISTRESSED" if b["status"] == "distressed" else "BUYER_WATCH"
            via = "" if b.get("hops", 0) == 0 else f" (through its buyer {b['source']})"
            state_words = "in distress" if b["status"] == "distressed" else "under watch"
            reasons.append((code, f"Your buyer {r['buyer_id']} is {state_words}{via}; invoices "
                                  f"to it count at {factor:.0%}."))
        components.append({"kind": "receivable", "asset_id": fp, "frozen": False,
                           "contribution": _money(Decimal(r["outstanding"]) * params.advance_rate * factor, unit),
                           "detail": {"invoice": r["number"], "buyer": r["buyer_id"], "buyer_factor": str(factor)}})

    # Orders
    score, on_time, n = fulfilment_score(state, params, now)
    if n >= params.fulfilment_min_deliveries and score < Decimal("0.8"):
        reasons.append(("FULFILMENT_LOW", f"{on_time} of your last {n} deliveries were on time; "
                                          f"orders count at {score:.0%}."))
    grace = params.order_grace_days * DAY
    for po, o in sorted(state["assets"]["order"].items()):
        if o["status"] != "confirmed" or po in invoiced_pos or o["currency"] != currency:
            continue
        if now > o["due"] + grace:  # the watermark only grows, so this is a fact once true
            reasons.append(("ORDER_NOT_DELIVERED", f"Order {po} was due for delivery on "
                            f"{_day(o['due']).isoformat()} and has not been delivered "
                            f"{params.order_grace_days} days later; it no longer counts."))
            continue
        components.append({"kind": "order", "asset_id": po, "frozen": False,
                           "contribution": _money(Decimal(o["amount"]) * params.order_advance_rate * score, unit),
                           "detail": {"buyer": o["buyer_id"], "fulfilment": f"{score:.3f}"}})

    # Equipment (its components and reasons go here, in this order, when built)
    machines = equipment(state, params) if machines is None else machines
    machines_at = (len(components), len(reasons))
    # Dealers (sales-based floor plan)
    out_of_trust = []
    for did, sig in sorted(state["assets"].get("dealer", {}).items()):
        parts, late = dealer_components(sig, params, now, currency, unit, reasons)
        components += parts
        out_of_trust += [(did, uid) for uid in late]
    components += inventory_components(state, params, now, currency, unit, reasons)  # receipts (1.5)
    components += freight_components(state, params, now, currency, unit, reasons)  # waybills (1.6)

    if params.seasonal_profile and (state["assets"]["machine"] or state["assets"].get("dealer")):
        month = month_of(int(now // DAY))
        season = params.seasonal_profile[month - 1]
        if season != 1.0:  # said while the season departs from the baseline
            what, usual = (("Machine use is", "hours") if not state["assets"].get("dealer") else
                           ("Sales are", "sales") if not state["assets"]["machine"] else
                           ("Machine use and sales are", "hours and sales"))
            reasons.append(("SEASONAL_BASELINE", f"{what} judged against the season: in "
                            f"{MONTHS[month - 1]} your program expects {season:.0%} of the usual {usual}."))

    if not consent:
        code = "CONSENT_REVOKED" if state["consent"] is False else "CONSENT_MISSING"
        reasons.append((code, "You withdrew consent to use your data, so none of it counts." if
                        state["consent"] is False else "We need your consent before your data can count."))

    # Without consent every component counts zero and is frozen (see build below).
    sums = {k: zero if not consent else machines.total if k == "equipment" else
            sum((c["contribution"] for c in components if c["kind"] == k), zero)
            for k in ("receivable", "order", "equipment", "dealer", "inventory", "freight")}
    total = sum(sums.values(), zero)
    cap = Decimal(program["cap"]["amount"])
    limit = min(total, cap)
    if total > cap:
        reasons.append(("PROGRAM_CAP", f"Your limit is capped at the program maximum of {cap:,.0f} {currency}."))
    if currency == "CNY" and limit > params.inclusive_cap_cny:
        limit = params.inclusive_cap_cny
        reasons.append(("INCLUSIVE_CAP", "Inclusive-finance limits stop at CNY 10 million."))
    ew_share, ew_text = early_warning.reason(state, params.ew_max_cut)
    if ew_text:  # the one bounded rule by which an early warning moves a limit (section 12.3)
        limit -= limit * ew_share
        reasons.append(("EARLY_WARNING", ew_text))
    step = params.rounding_unit
    limit = (limit / step).to_integral_value(rounding=ROUND_DOWN) * step
    limit = limit.quantize(unit)
    # A program in a risk-sharing pool (section 14): the limit above is the claim; a
    # "hold" pool keeps the limit at what the pool covers.
    limit, pooled, pool_reasons = risk_pool.apply(state, limit, unit)
    reasons += pool_reasons

    outstanding = sum((max(zero, Decimal(loan["out"])) for loan in state["loans"].values()), zero).quantize(unit)
    overdue = [lid for lid, loan in sorted(state["loans"].items()) if loan["overdue"]]
    if overdue:
        reasons.append(("OVERDUE", f"Loan {overdue[0]} is overdue; the facility is frozen until it is repaid."))
    if not consent or overdue:
        status = "frozen"
    elif machines.frozen or any(c["frozen"] for c in components):
        status = "partially_frozen"
    else:
        status = "active"
    available = zero if status == "frozen" else max(zero, limit - outstanding).quantize(unit)

    lenders = []
    remaining = limit
    shares = program["lenders"]
    for i, lender in enumerate(shares):
        share = Decimal(str(lender["share"]))
        amount = remaining if i == len(shares) - 1 else _money(limit * share, unit)
        remaining -= amount
        lenders.append({"lender_id": lender["lender_id"], "share": share, "limit": amount})
    risk_pool.lender_cover(pooled, lenders, limit, unit)

    priced, capped = pricing.price(state, [c for c in components if c["kind"] == "receivable"], total,
                                   dict(params.pricing_table), params.lpr_1y_default, params.interest_subsidy_share,
                                   limit if currency == "CNY" else None)
    reasons += capped  # never above 4 x the one-year LPR; the subsidy's cap (section 13)
    codes = sorted({code for code, _ in reasons} | machines.codes)
    (c_at, r_at), eq = machines_at, machines

    def build() -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        comps = [*components[:c_at], *eq.components(), *components[c_at:]]
        if not consent:
            comps = [dict(c, contribution=zero, frozen=True) for c in comps]
        merged: dict[str, list[str]] = {}
        for code, text in [*reasons[:r_at], *eq.reasons(), *reasons[r_at:]]:
            texts = merged.setdefault(code, [])
            if text not in texts:
                texts.append(text)
        return comps, [{"code": c, "text": " ".join(merged[c])[:500]} for c in codes]

    return Decision(limit=limit, currency=currency, status=status, codes=codes,
                    lenders=lenders, outstanding=outstanding, available=available,
                    sums={k: str(v) for k, v in sums.items()}, out_of_trust=out_of_trust, build=build,
                    pricing=priced, risk_pool=pooled)


def is_material(decision: Decision, last: dict[str, Any] | None) -> bool:
    """Publish when anything a lender sees changes: the rounded limit, the outstanding
    or available amount, the status or the reason codes. With no hysteresis the last
    update published always equals the decision on the current state, however inputs
    were batched or replayed. (``outstanding`` is compared too: while a facility is
    frozen or over-drawn ``available`` stays 0 and a drawdown moved nothing else.)"""
    if last is None:
        return True
    return (decision.status != last["status"] or decision.codes != last["codes"]
            or decision.limit != Decimal(last["limit"]) or decision.available != Decimal(last["available"])
            # States from before 2026.12-1 lack it: compared from their next update on.
            or decision.outstanding != Decimal(last.get("outstanding", decision.outstanding))
            # A new price or ceiling is said (states from before pricing: from their next update on).
            or any(decision.pricing.get(k) != last.get(f, decision.pricing.get(k)) for k, f in PRICED)
            # The pool's cover (section 14): what it covers and whether it has answered.
            or pool_mark(decision) != last.get("pool"))


def pool_mark(decision: Decision) -> list[Any] | None:
    """What of the risk-pool block a lender must be told about when it moves."""
    p = decision.risk_pool
    return None if p is None else [p["pool_id"], str(p["claimed"]), str(p["covered"]), p["pending"]]


PRICED = (("apr_pct", "apr"), ("net_apr_pct", "net_apr"), ("ceiling_pct", "ceiling"))
