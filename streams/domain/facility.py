"""Stage 2: a borrower's facility state, fed by signals and ledger events, and its decisions.

``apply`` folds one input into the state; ``decide_and_publish`` runs the policy and
returns the limit update when it is material. Both are pure: the Faust agent and the
offline replay call exactly these functions.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypedDict, cast

from schemas import events as ev
from schemas import outputs as out
from schemas.common import MAX_AMOUNT, Money
from schemas.currencies import MINOR_UNITS, minor_unit
from schemas.topics import LIMITS_TOPIC
from streams.domain import collapse, early_warning, fleet, risk_pool
from streams.domain.freight_policy import forget_closed
from streams.domain.inventory_policy import margin_calls
from streams.domain.policy import (
    POLICY_VERSION,
    Decision,
    PolicyParams,
    accepted_utilisation,
    decide,
    for_version,
    is_material,
    pool_mark,
    utilisation_target,
)
from streams.domain.season import window_shares
from streams.domain.signals import (
    BATCH,
    BatchSignal,
    BuyersSignal,
    ConsentSignal,
    DeliverySignal,
    MachineSignal,
    Output,
    PolicySignal,
    PoolSignal,
    PriceSignal,
    ProgramSignal,
    RateSignal,
    Rejected,
    Signal,
    SignalRecord,
    alert,
    event_key,
    utc_time,
)


class _FacilityLater(TypedDict, total=False):
    """Keys a facility's state gains over time (or only in some programs)."""

    policy: str  # the promoted policy version the borrower is decided under
    pinned: str  # the version of an engine pinned to one (a shadow, a diff: processors.py)
    tax_ref: str | None  # digest of the borrower's registered tax id (signals.tax_ref)
    operator: str | None  # the program's operator
    reference_rate: dict[str, Any]  # the published one-year LPR (pricing.py)
    prices: dict[str, PriceSignal]  # commodity -> its latest price signal (prices.py)
    collapse: dict[str, dict[str, Any]]  # machine id -> UTILISATION_COLLAPSE's level (collapse.py)
    ew: dict[str, Any]  # the early-warning scorecard's marks and score (early_warning.py)
    tax_alerted: list[str]  # invoices RECEIVABLE_SELLER_MISMATCH was raised for (only grows)
    sot_alerted: list[str]  # units SOLD_OUT_OF_TRUST was raised for (only grows)
    inventory_sum: str  # pledged inventory's value at the last decision (inventory_policy.py)
    margin: str  # the open margin call's shortfall (inventory_policy.py)
    parked: list[dict[str, Any]]  # ledger records kept until the registration (processors.py)
    pool: dict[str, Any]  # the borrower's claims on risk-sharing pools (risk_pool.py)


class FacilityState(_FacilityLater):
    """One borrower's stage-2 state, stored as JSON under its borrower id."""

    borrower_id: str
    program_id: str | None
    program: dict[str, Any] | None  # the registry.program payload (None: not registered yet)
    consent: bool | None
    assets: dict[str, dict[str, Any]]  # kind -> asset id -> its latest signal
    deliveries: dict[str, dict[str, Any]]  # order id -> on_time and when (the fulfilment score)
    buyers: dict[str, dict[str, Any]]  # buyer id -> factor, status, source, hops
    seqs: dict[str, int]  # "kind:asset_id" -> the newest signal seq applied (older ones are dropped)
    loans: dict[str, dict[str, Any]]  # loan id -> outstanding ("out"), overdue, ids applied
    util: dict[str, list[list[float]]]  # machine id -> accepted utilisation steps [at, value]
    watermark: float  # the facility's event time: the latest input's
    last: dict[str, Any] | None  # the last published decision's figures (is_material)
    pending: list[str]  # the triggers since the last published decision


State = FacilityState
MAX_PENDING = 50


def new_state(borrower_id: str) -> State:
    return {"borrower_id": borrower_id, "program_id": None, "program": None, "consent": None,
            "assets": {"receivable": {}, "order": {}, "machine": {}, "dealer": {}}, "deliveries": {},
            "buyers": {}, "seqs": {}, "loans": {}, "util": {}, "watermark": 0.0,
            "last": None, "pending": []}


def _newer(state: State, sig: Signal) -> bool:
    key = f"{sig['kind']}:{sig['asset_id']}"
    if sig["seq"] <= state["seqs"].get(key, 0):
        return False  # redelivered or reordered: the state already reflects something newer
    state["seqs"][key] = sig["seq"]
    return True


SIGNAL_KINDS = frozenset({"receivable", "order", "machine", "machine_released", "delivery", "buyers",
                          "program", "consent", "dealer", "policy", "receipt", "freight", "price",
                          "rate", "pool"})


def apply_signal(state: State, sig: SignalRecord) -> list[Output]:
    """Fold one signal record into the state; a ``batch`` (everything one stage-1 input
    caused for this borrower, see signals.one_signal_per_borrower) is folded whole, so
    the decision that follows sees all of it."""
    parts: list[Signal] = cast(BatchSignal, sig).get("signals", []) if sig["kind"] == BATCH else [sig]
    for part in parts:  # refused before any change: a refused input leaves the state as it was
        if part["kind"] not in SIGNAL_KINDS:
            raise Rejected("unknown_signal", f"unknown signal kind {part['kind']!r}")
    return [o for part in parts for o in _apply_one(state, part)]


def _apply_one(state: State, sig: Signal) -> list[Output]:
    kind = sig["kind"]
    if not _newer(state, sig):
        return []
    early_warning.observe(state, sig)  # before the fold: it compares with the asset's previous status
    outs: list[Output] = []
    if kind in ("receivable", "order", "machine", "dealer", "receipt", "freight"):
        state["assets"].setdefault(kind, {})[sig["asset_id"]] = sig  # states before 2026.12-2 lack dealer
        if kind == "machine":
            machine = cast(MachineSignal, sig)
            fleet.touch(state, machine["asset_id"])  # valued again at the next decision
            _accept_utilisation(state, machine)
            outs += _collapse(state, machine)
        elif kind == "receivable":
            outs += _seller_alerts(state, sig["at"], sig["triggers"])
        elif kind in ("receipt", "freight"):  # closed ones leave the state (they count for nothing)
            forget_closed(state["assets"][kind], state["watermark"])
    elif kind == "price":  # the latest quote of a commodity the program finances (prices.py)
        state.setdefault("prices", {})[sig["asset_id"]] = cast(PriceSignal, sig)
    elif kind == "machine_released":
        fleet.touch(state, sig["asset_id"])
        state["assets"]["machine"].pop(sig["asset_id"], None)
        state["util"].pop(sig["asset_id"], None)
        state.get("collapse", {}).pop(sig["asset_id"], None)
    elif kind == "delivery":
        delivery = cast(DeliverySignal, sig)
        state["deliveries"][sig["asset_id"]] = {"on_time": delivery["on_time"], "at": delivery["actual_at"]}
    elif kind == "buyers":
        state["buyers"] = cast(BuyersSignal, sig)["factors"]
    elif kind == "program":
        reg = cast(ProgramSignal, sig)
        state["program_id"], state["program"] = reg["program_id"], reg["program"]
        if reg.get("policy"):  # registered after a promotion: decided under it from the start
            state["policy"] = reg["policy"]
        state["tax_ref"], state["operator"] = reg.get("tax_ref"), reg.get("operator")
        if reg.get("rate"):  # the published LPR (pricing.py)
            state["reference_rate"] = reg["rate"]
        outs += _seller_alerts(state, sig["at"], sig["triggers"])
    elif kind == "pool":  # the risk-sharing pool's answer to this borrower's claim (risk_pool.py)
        risk_pool.on_answer(state, cast(PoolSignal, sig))
        # Not the borrower's own time: an answer caused by another borrower's claim must
        # not move this facility's clock (its time-driven rules).
        _advance(state, state["watermark"], sig["triggers"])
        return outs
    elif kind == "rate":  # a published one-year LPR: the ceiling of the price (pricing.py)
        state["reference_rate"] = cast(RateSignal, sig)["rate"]
    elif kind == "policy":  # a promotion (registry.policy_promoted): decided under it from now on
        if state.get("pinned"):
            # An engine pinned to a version (a shadow, a diff) does not read promotions,
            # nor their time: a promotion is not a fact about the borrower.
            return outs
        state["policy"] = cast(PolicySignal, sig)["version"]
    else:  # consent (apply_signal refused the kinds not above)
        consent = cast(ConsentSignal, sig)
        was = state["consent"]
        state["consent"] = consent["granted"]
        if was is True and not consent["granted"]:
            outs.append(alert("CONSENT_REVOKED", "info",
                              f"Borrower {state['borrower_id']} withdrew consent; its data no longer "
                              "counts and the facility is frozen (audit record).",
                              sig["at"], sig["triggers"], state["borrower_id"], None))
    _advance(state, sig["at"], sig["triggers"])
    return outs


def _seller_alerts(state: State, at: float, triggers: list[str]) -> list[Output]:
    """RECEIVABLE_SELLER_MISMATCH once per invoice whose seller tax id is not the
    borrower's registered one. The invoice and the registration travel on different
    topics, so this is checked whenever either arrives; ``tax_alerted`` (only grows)
    keeps it to one alert per invoice whichever came first."""
    own = state.get("tax_ref")
    if own is None:
        return []  # not registered yet: checked again when the registration arrives
    alerted = state.setdefault("tax_alerted", [])
    outs = []
    for fp, r in sorted(state["assets"]["receivable"].items()):
        if r.get("seller_tax_ref") != own and fp not in alerted:
            alerted.append(fp)
            outs.append(alert("RECEIVABLE_SELLER_MISMATCH", "critical",
                              f"Invoice {r['number']} presented by {state['borrower_id']} names a seller "
                              "tax id that is not the borrower's registered one; it does not count.",
                              at, triggers, state["borrower_id"], fp))
    return outs


def _accept_utilisation(state: State, sig: MachineSignal) -> None:
    """Behaviour-driven value moves per machine signal, bounded by the policy's step rule."""
    params = params_for(state)
    # The machine's own event time, not the facility's watermark: how other machines'
    # signals interleave with this one must not change what this one is worth.
    now = sig["at"]
    hist = state["util"].setdefault(sig["asset_id"], [])
    util = accepted_utilisation(utilisation_target(sig, params), hist, params, now)
    if not hist or abs(hist[-1][1] - util) > 1e-9:
        hist.append([now, util])
        del hist[:-20]


def policy_version(state: State) -> str:
    """The version this borrower is decided under: the engine's own when it is pinned to
    one (a shadow engine, a policy diff), else the last promoted, else the code's."""
    return state.get("pinned") or state.get("policy") or POLICY_VERSION


def params_for(state: State) -> PolicyParams:
    version = policy_version(state)
    return PolicyParams.for_program(state["program"], version) if state["program"] else for_version(version)


def _collapse(state: State, sig: MachineSignal) -> list[Output]:
    """UTILISATION_COLLAPSE against the same season (r7 / (baseline x season of r7))."""
    r7 = sig.get("r7")
    if r7 is None and sig.get("km7") is None:
        return []
    params = params_for(state)
    season = window_shares(params.seasonal_profile, sig["last_seen"], sig.get("first_day"))[0]
    early_warning.observe_distance(state, sig, season)  # a truck's odometer, the same season
    if r7 is None:
        return []
    mine = state.setdefault("collapse", {}).setdefault(sig["asset_id"], {})
    return collapse.check(mine, sig["asset_id"], state["borrower_id"], r7 / (sig["pledge"]["baseline"] * season),
                          sig["at"], sig["triggers"])


def apply_ledger(state: State, event: ev.Envelope) -> list[Output]:
    p = event.payload  # type: ignore[attr-defined]
    program = state["program"]
    if program is None:
        raise Rejected("unknown_borrower", f"{event.type} for borrower {p.borrower_id} with no registered program")
    _check_entitled(state, event)
    money = getattr(p, "amount", None)
    if money is not None and money.currency != program["currency"]:
        raise Rejected("currency_mismatch", f"{event.type} of {money.amount} {money.currency} for borrower "
                       f"{p.borrower_id}, whose program is in {program['currency']}")
    key = event_key(event)  # per tenant: a lender's and the operator's ids may coincide
    seen = state["loans"].get(p.loan_id, {}).get("ids", [])
    if key in seen or event.event_id in seen:  # or a bare id from before 2026.12-1
        return []  # a repeat, before the range check: a redelivered drawdown is not refused
    if isinstance(event, ev.Drawdown):
        _check_outstanding(state, p.loan_id, p.amount.amount)
    loan = state["loans"].setdefault(p.loan_id, {"out": "0", "overdue": False, "ids": []})
    loan["ids"] = [*loan["ids"][-63:], key]
    outs: list[Output] = []
    at = event.occurred_at.timestamp()
    if isinstance(event, ev.Drawdown):
        loan["out"] = str(Decimal(loan["out"]) + p.amount.amount)
    elif isinstance(event, ev.Repayment):
        # May go below zero when a repayment overtakes its drawdown: the balance is kept
        # exact so the order of ledger events does not change the outstanding amount.
        before = Decimal(loan["out"])
        left = before - p.amount.amount
        loan["out"] = str(left)
        if left <= 0:
            loan["overdue"] = False
        if left < 0:
            # One rule (section 2): the excess stays on the loan as a credit and nets
            # against its next drawdown. Said aloud, since it is either an over-payment
            # or a repayment read before its drawdown (another lender's topic order).
            outs.append(alert("REPAYMENT_EXCEEDS_BALANCE", "warning",
                              f"Repayment of {p.amount.amount:,} {p.amount.currency} on loan {p.loan_id} exceeds "
                              f"its balance of {max(before, Decimal(0)):,}; the excess {-left:,} is kept as a "
                              "credit on the loan and nets against its next drawdown.",
                              at, [event.event_id], p.borrower_id, p.loan_id, event.tenant))
    elif isinstance(event, ev.Overdue):
        loan["overdue"] = True
        outs.append(alert("OVERDUE", "critical",
                          f"Loan {p.loan_id} is {p.days_past_due} days past due; the facility is frozen.",
                          at, [event.event_id], p.borrower_id, p.loan_id, event.tenant))
    _advance(state, at, [event.event_id])
    return outs


def _check_entitled(state: State, event: ev.Envelope) -> None:
    """Only who lends under the facility, or operates its program, may move its money.

    Ledger events change ``outstanding`` and ``available``, which every lender of the
    program sees: a drawdown posted by anyone else would move them (issue 11: a key of
    tenant A posted a drawdown for tenant B's borrower). The publisher is the envelope's
    ``tenant`` (the gateway checks it against the key); it must be one of the program's
    ``lenders`` (their loan systems) or the program's operator (the tenant that first
    registered it). A drawdown must also name the borrower's program. Refused inputs
    are dead-lettered and change nothing."""
    p = event.payload  # type: ignore[attr-defined]
    program = cast(dict[str, Any], state["program"])  # registered: apply_ledger refused it otherwise
    lenders = [lender["lender_id"] for lender in program["lenders"]]
    operator = state.get("operator")
    if event.tenant not in lenders and event.tenant != operator:
        raise Rejected("not_entitled", f"{event.type} from tenant {event.tenant} for borrower {p.borrower_id}: "
                       f"only the lenders of program {state['program_id']} ({', '.join(lenders)}) or its "
                       f"operator ({operator or 'unknown'}) may post ledger events for it")
    if isinstance(event, ev.Drawdown) and p.program_id != state["program_id"]:
        raise Rejected("program_mismatch", f"drawdown names program {p.program_id}; borrower {p.borrower_id} "
                       f"is in program {state['program_id']}")


def _check_outstanding(state: State, loan_id: str, drawn: Decimal) -> None:
    """Refuse a drawdown that would take the borrower's outstanding to an amount no limit
    update can carry (state is left as it was: the drawdown is dead-lettered)."""
    balances = {lid: Decimal(loan["out"]) for lid, loan in state["loans"].items()}
    balances[loan_id] = balances.get(loan_id, Decimal(0)) + drawn
    total = sum((max(Decimal(0), b) for b in balances.values()), Decimal(0))
    if total >= MAX_AMOUNT:
        raise Rejected("amount_out_of_range", f"drawdown of {drawn} on loan {loan_id} takes the outstanding "
                       f"to {total}, beyond what an amount can carry (below {MAX_AMOUNT:.0E})")


def _advance(state: State, at: float, triggers: list[str]) -> None:
    state["watermark"] = max(state["watermark"], at)
    # Each input once, however many signals it caused (a batch's parts share their trigger).
    pending = state["pending"]
    state["pending"] = [*pending, *(t for t in dict.fromkeys(triggers) if t not in pending)][-MAX_PENDING:]


def decide_and_publish(state: State, summarise: Callable[[State, Decision], Any] | None = None) -> list[Output]:
    """Run the policy; return a limit update when the change is material.

    ``summarise`` (a what-if over history, streams/policylab.py): the update's value is
    ``summarise(state, decision)`` instead of the limit.updated event, the same decision
    without building and validating an event the diff only reduces to a few figures."""
    if state["program"] is None:
        return []  # not registered yet: components are kept and decided on registration
    policy = policy_version(state)
    warnings = early_warning.evaluate(state, state["watermark"], state["pending"][-1:])
    params = PolicyParams.for_program(state["program"], policy)
    d = decide(state, params, fleet.equipment(state, params))  # the machines: only what changed
    now = state["watermark"]
    last = state["last"]
    alerts = warnings + _out_of_trust_alerts(state, d, now) + margin_calls(state, d, now)
    # A changed claim goes to the pool stage whether or not the update is material (a
    # held increase leaves the limit where it was), after the update that says it.
    claims = risk_pool.claims(state, d.risk_pool, now, state["pending"][-10:])
    # A new policy version is said to lenders once, in the first update under it, even
    # when nothing else moved (a state from before the policy lab names no version: it was
    # decided under POLICY_VERSION).
    before = (last.get("policy") or POLICY_VERSION) if last else policy
    if not is_material(d, last) and before == policy:
        return alerts + claims
    version = (last["version"] if last else 0) + 1
    prev_limit = Decimal(last["limit"]) if last else minor_unit(d.currency) * 0
    reasons = list(d.reasons)
    if last:
        reasons.append(_change_reason(prev_limit, d.limit, last["sums"], d.sums, d.currency,
                                      Decimal(last.get("outstanding", d.outstanding)), d.outstanding,
                                      [c for c in last["codes"] if c not in d.codes],
                                      [c for c in d.codes if c not in last["codes"]],
                                      None if d.status == last["status"] else d.status))
        reasons[-1] = risk_pool.say_cover(reasons[-1], last.get("pool"), d.risk_pool)
    if before != policy:
        reasons.append({"code": "POLICY_CHANGED", "text": (
            f"The credit policy changed from version {before} to {policy}; this limit is "
            "decided under the new version.")[:500]})
    published: dict[str, Any] = {"limit": str(d.limit), "available": str(d.available), "status": d.status,
                                 "codes": d.codes, "version": version, "sums": d.sums, "outstanding": str(d.outstanding),
                                 "apr": d.pricing.get("apr_pct"), "net_apr": d.pricing.get("net_apr_pct"),
                                 "ceiling": d.pricing.get("ceiling_pct")}
    state["last"] = published
    if d.risk_pool is not None:
        published["pool"] = pool_mark(d)
    if policy != POLICY_VERSION:
        published["policy"] = policy
    triggers, state["pending"] = state["pending"][-100:], []
    if summarise is not None:
        return [*alerts, Output(LIMITS_TOPIC, state["borrower_id"], summarise(state, d)), *claims]
    cur = d.currency

    def money(x: Decimal) -> Money:
        return Money(amount=x, currency=cur)

    watermark = utc_time(now)
    update = out.LimitUpdated(
        event_id=f"lu-{state['borrower_id']}-{version}", type="limit.updated", tenant="creditstream",
        source="creditstream.engine", occurred_at=watermark, recorded_at=watermark,
        payload=out.LimitUpdatePayload(
            borrower_id=state["borrower_id"], program_id=state["program_id"], limit=money(d.limit),
            previous_limit=money(prev_limit), outstanding=money(d.outstanding), available=money(d.available),
            status=out.FacilityStatus(d.status),
            lenders=[out.LenderAllocation(lender_id=lender["lender_id"], share=lender["share"],
                                          limit=money(lender["limit"]),
                                          covered=money(lender["covered"]) if "covered" in lender else None,
                                          covered_share=lender.get("covered_share")) for lender in d.lenders],
            components=[out.Component(kind=c["kind"], asset_id=c["asset_id"], contribution=money(c["contribution"]),
                                      frozen=c["frozen"], detail=c["detail"]) for c in d.components],
            reasons=[out.Reason(**r) for r in reasons], policy_version=policy, version=version,
            watermark=watermark, trigger_event_ids=triggers,
            early_warning=out.EarlyWarning(**early_warning.summary(state["ew"])),
            pricing=out.Pricing(**d.pricing),
            risk_pool=None if d.risk_pool is None else out.RiskPoolCover(**{
                k: money(v) if k in ("claimed", "covered", "capacity") else v
                for k, v in d.risk_pool.items()})))
    return [*alerts, Output(LIMITS_TOPIC, state["borrower_id"], update.model_dump(mode="json", exclude_none=True)),
            *claims]


def _out_of_trust_alerts(state: State, d: Any, now: float) -> list[Output]:
    """SOLD_OUT_OF_TRUST once per unit, at the first decision whose watermark is more
    than ``dealer_repay_days`` after its sale without a repayment (time-driven, like an
    order's delivery grace); ``sot_alerted`` only grows, so a replay raises it once."""
    alerted = state.setdefault("sot_alerted", [])
    outs = []
    for dealer, unit in d.out_of_trust:
        if unit in alerted:
            continue
        alerted.append(unit)
        outs.append(alert("SOLD_OUT_OF_TRUST", "critical",
                          f"Unit {unit} of dealer {dealer} was sold and not repaid in time (sold out of "
                          "trust); the dealer's line is frozen until it is repaid.",
                          now, state["pending"][-1:], state["borrower_id"], unit))
    del alerted[:-1000]
    return outs


# What it means when a reason no longer applies, in the words of its own text (a new
# reason speaks for itself; one that went away would otherwise leave the change unsaid).
CLEARED = {
    "CONSENT_MISSING": "consent given", "CONSENT_REVOKED": "consent given again",
    "OVERDUE": "no loan overdue any more", "BATTERY_ALARM_L3": "battery alarm cleared",
    "GEOFENCE_BREACH": "machine back inside its site area", "CRITICAL_FAULT": "critical fault cleared",
    "MACHINE_SILENT": "machine reporting again", "RECEIVABLE_DISPUTED": "dispute resolved",
    "RECEIVABLE_UNCONFIRMED": "invoice confirmed or withdrawn", "BUYER_DISTRESSED": "buyer no longer in distress",
    "BUYER_WATCH": "buyer no longer under watch", "FULFILMENT_LOW": "delivery record improved",
    "SOLD_OUT_OF_TRUST": "sold units repaid", "UNIT_MISSING_AT_AUDIT": "missing units found again",
    "DEALER_SALES_UNCONFIRMED": "sales confirmed by the window before", "DEALER_NO_PLAN": "production plan received",
    "DEALER_PLAN_CAP": "within the manufacturer's plan", "DEALER_CURTAILMENT": "no aged units in stock",
    "PRICE_STALE": "commodity prices quoted again", "PRICE_MISSING": "commodity price received",
    "INVENTORY_PRICE_FALL": "commodity prices no longer falling", "FREIGHT_UNCORROBORATED": "waybills judged on their trucks' positions",
    "FREIGHT_NOT_DELIVERED": "undelivered waybills settled",
    "PROGRAM_CAP": "below the program cap", "INCLUSIVE_CAP": "below the inclusive-finance cap",
    "EARLY_WARNING": "early warning cleared", "PRICE_CAPPED": "rate within the legal ceiling again",
    "POOL_UNCOVERED": "the risk-sharing pool covers the whole limit", "POOL_HOLD": "the risk-sharing pool covers the increase",
    "SUBSIDY_CAPPED": "the subsidy within its cap again",
}
# A new reason has its own sentence in the update; the change reason names it briefly.
ADDED = {
    "RECEIVABLE_UNCONFIRMED": "an invoice awaits its buyer's confirmation", "RECEIVABLE_DISPUTED": "an invoice disputed",
    "RECEIVABLE_OVERDUE": "an invoice past its due date", "ORDER_NOT_DELIVERED": "an order not delivered",
    "RECEIVABLE_SELLER_MISMATCH": "an invoice under another seller's tax id", "OVERDUE": "a loan overdue",
    "CONSENT_REVOKED": "consent withdrawn", "CONSENT_MISSING": "consent missing",
    "SOLD_OUT_OF_TRUST": "a unit sold out of trust", "UNIT_MISSING_AT_AUDIT": "a unit missing at audit",
    "INVENTORY_PRICE_FALL": "a commodity price fell", "PRICE_STALE": "a commodity price is stale",
    "FREIGHT_NOT_DELIVERED": "a waybill not corroborated by its truck",
    "POOL_UNCOVERED": "part of the limit not covered by the risk-sharing pool",
    "POOL_HOLD": "an increase held until the risk-sharing pool covers it",
}
STATUS_WORDS = {"active": "active", "partially_frozen": "partly frozen", "frozen": "frozen"}


def _change_reason(prev: Decimal, new: Decimal, before: dict[str, str], after: dict[str, str],
                   currency: str, out_before: Decimal, out_after: Decimal, cleared: list[str],
                   added: list[str], status: str | None) -> dict[str, str]:
    """LIMIT_UP / LIMIT_DOWN / LIMIT_UNCHANGED with what changed: the component sums that
    moved, money drawn or repaid, reasons that no longer apply and a new status."""
    names = {"receivable": "confirmed invoices", "order": "confirmed orders", "equipment": "machines",
             "dealer": "dealer sales", "inventory": "warehouse receipts", "freight": "corroborated waybills"}
    moves = []
    for k, name in names.items():
        delta = Decimal(after[k]) - Decimal(before.get(k, "0"))
        if abs(delta) >= 1:
            moves.append(f"{name} {'+' if delta > 0 else '-'}{abs(delta):,.0f}")
    drawn = out_after - out_before
    if drawn:
        places = MINOR_UNITS[currency]
        moves.append(f"{'drawn' if drawn > 0 else 'repaid'} {abs(drawn):,.{places}f}, "
                     f"outstanding {out_after:,.{places}f}")
    moves += [CLEARED.get(code, f"{code} no longer applies") for code in cleared]
    moves += [ADDED.get(code, code.lower().replace("_", " ")) for code in added]
    if status is not None:
        moves.append(f"facility now {STATUS_WORDS[status]}")
    if new == prev:
        text = f"Your limit stays at {new:,.0f} {currency}"
    else:
        text = f"Your limit {'rose' if new > prev else 'fell'} from {prev:,.0f} to {new:,.0f} {currency}"
    text += f" ({'; '.join(moves)})." if moves else "."
    code = "LIMIT_UP" if new > prev else "LIMIT_DOWN" if new < prev else "LIMIT_UNCHANGED"
    return {"code": code, "text": text[:500]}
