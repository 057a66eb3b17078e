"""Stage 1 for the registry: parties, programs, the supply graph and consents.

The registry topic has one partition, so one processor sees all of it and can fan facts
out to the borrowers they concern: a program's parameters to its members, a buyer's
distress to its tier-1 suppliers and, one hop further, to their tier-2 suppliers.
The store is a flat key -> dict mapping so it fits a Faust table unchanged.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from schemas import events as ev
from streams.domain import policyfile, prices
from streams.domain.signals import Output, Rejected, alert, event_key, signal, tax_ref

Store = MutableMapping[str, Any]
CREDIT_PURPOSE = "credit_limit"
OWN_FACTOR = {"healthy": 1.0, "watch": 0.8, "distressed": 0.5}
# Distress one supply-chain hop away weighs half as much as the buyer's own.
CONTAGION = 0.5
# The tenant that may promote a policy version (the engine's own, as on limit updates).
POLICY_OWNER = "creditstream"


def _get(store: Store, key: str, default: Any) -> Any:
    value = store.get(key)
    return default if value is None else value


def buyer_factors(store: Store, supplier_id: str) -> dict[str, dict[str, Any]]:
    """Factor per buyer of a supplier: the buyer's own status, or its buyers' attenuated."""
    out: dict[str, dict[str, Any]] = {}
    for buyer in sorted(_get(store, f"buyers:{supplier_id}", {})):
        status = _get(store, f"party:{buyer}", {}).get("status", "healthy")
        factor, reason = OWN_FACTOR[status], (status, buyer, 0)
        for upstream in sorted(_get(store, f"buyers:{buyer}", {})):
            up_status = _get(store, f"party:{upstream}", {}).get("status", "healthy")
            contagion = 1 - (1 - OWN_FACTOR[up_status]) * CONTAGION
            if contagion < factor:
                factor, reason = contagion, (up_status, upstream, 1)
        out[buyer] = {"factor": round(factor, 4), "status": reason[0], "source": reason[1],
                      "hops": reason[2]}
    return out


def _factors_signal(store: Store, supplier_id: str, at: float, ids: list[str]) -> Output:
    return signal("buyers", supplier_id, "buyers", _next_seq(store, supplier_id), at, ids,
                  factors=buyer_factors(store, supplier_id))


def _next_seq(store: Store, borrower_id: str) -> int:
    key = f"seq:{borrower_id}"
    seq: int = _get(store, key, 0) + 1
    store[key] = seq
    return seq


def _program_signal(store: Store, borrower_id: str, program_id: str, at: float, ids: list[str]) -> Output:
    # The borrower's registered tax id (as a digest) travels with its program: stage 2
    # counts only invoices whose seller tax id is the borrower's own.
    # The promoted policy version too, once there is one: a borrower registered after a
    # promotion is decided under it from its first decision.
    promoted = _get(store, "policy", {}).get("version")
    rate = store.get("reference_rate")  # the published LPR, once there is one (pricing.py)
    return signal("program", borrower_id, "program", _next_seq(store, borrower_id), at, ids,
                  program_id=program_id, program=store.get(f"program:{program_id}"),
                  operator=store.get(f"operator:{program_id}"),
                  tax_ref=_get(store, f"party:{borrower_id}", {}).get("tax_ref"),
                  **({"policy": promoted} if promoted else {}), **({"rate": rate} if rate else {}))


def _check_pool_currency(store: Store, p: ev.ProgramPayload) -> None:
    """Programs sharing a risk-sharing pool share its currency: the pool stage adds their
    borrowers' covered amounts without converting them (docs/credit-policy.md section 14)."""
    pool = p.risk_pool
    assert pool is not None
    for pid in _get(store, "programs", []):
        other = (_get(store, f"program:{pid}", {}) or {}).get("risk_pool")
        if pid != p.program_id and other and other["pool_id"] == pool.pool_id \
                and other["fund"]["currency"] != pool.fund.currency:
            raise Rejected("pool_currency_mismatch", f"program {p.program_id} names risk-sharing pool {pool.pool_id} "
                           f"in {pool.fund.currency}; program {pid} declares it in {other['fund']['currency']}")


def on_event(store: Store, event: ev.Envelope) -> list[Output]:
    if isinstance(event, ev.MarketPrice):  # cs.prices: a quote is its own repeat check (prices.py)
        return prices.on_price(store, event)
    seen_key = f"seen:{event_key(event)}"  # per tenant: ids are the publishers' own
    if store.get(seen_key) or store.get(f"seen:{event.event_id}"):  # or a bare id from before 2026.12-1
        return []
    p = event.payload  # type: ignore[attr-defined]
    if isinstance(event, ev.ProgramRegistered) and p.risk_pool is not None:
        _check_pool_currency(store, p)  # before any change to the store
    if isinstance(event, ev.ProgramRegistered):
        # The tenant that first registered a program is its operator: it alone may change
        # the program (its lenders are who a limit is published for and who may post
        # ledger events for its borrowers). Refused before any change to the store.
        operator = store.get(f"operator:{p.program_id}")
        if operator is not None and operator != event.tenant:
            raise Rejected("not_program_operator", f"program {p.program_id} is operated by tenant {operator}; "
                           f"tenant {event.tenant} may not change it")
        store[f"operator:{p.program_id}"] = event.tenant
    if isinstance(event, ev.ReferenceRateSet) and event.tenant != POLICY_OWNER:
        # The ceiling of every price: only the engine's operator relays the published LPR.
        raise Rejected("not_rate_owner", f"tenant {event.tenant} may not set the reference rate; "
                       f"only {POLICY_OWNER} relays it")
    if isinstance(event, ev.PolicyPromoted):
        # Engine-wide, so only the engine's operator promotes, and only a version every
        # worker ships: a version it cannot load would fail every decision after it.
        if event.tenant != POLICY_OWNER:
            raise Rejected("not_policy_owner", f"tenant {event.tenant} may not promote a credit policy; "
                           f"only {POLICY_OWNER} may")
        if p.version not in policyfile.shipped_versions():
            raise Rejected("unknown_policy", f"policy {p.version} is not shipped (shipped: "
                           f"{', '.join(policyfile.shipped_versions())})")
    store[seen_key] = 1
    at = event.occurred_at.timestamp()
    ids = [event.event_id]
    if isinstance(event, ev.BorrowerRegistered):
        party = _get(store, f"party:{p.party_id}", {})
        old_program = party.get("program_id")
        party.update(kind=p.kind.value, program_id=p.program_id, tax_ref=tax_ref(p.tax_id))
        party.setdefault("status", "healthy")
        store[f"party:{p.party_id}"] = party
        if old_program and old_program != p.program_id:
            store[f"members:{old_program}"] = [m for m in _get(store, f"members:{old_program}", [])
                                               if m != p.party_id]
        if p.program_id:
            members = _get(store, f"members:{p.program_id}", [])
            if p.party_id not in members:
                store[f"members:{p.program_id}"] = [*members, p.party_id]
            return [_program_signal(store, p.party_id, p.program_id, at, ids),
                    _factors_signal(store, p.party_id, at, ids),
                    *prices.for_member(store, p.party_id, p.program_id, at, ids)]
        return []
    if isinstance(event, ev.ProgramRegistered):
        store[f"program:{p.program_id}"] = p.model_dump(mode="json")
        programs = _get(store, "programs", [])  # every program once: who a promotion reaches
        if p.program_id not in programs:
            store["programs"] = [*programs, p.program_id]
        return [*(_program_signal(store, m, p.program_id, at, ids)
                  for m in _get(store, f"members:{p.program_id}", [])),
                *prices.on_program(store, p, at, ids)]
    if isinstance(event, ev.ReferenceRateSet):
        # Every registered borrower's next decision is priced under the new ceiling
        # (pricing.py); a borrower registered later receives it with its program.
        store["reference_rate"] = {"value_pct": str(p.value_pct), "effective_date": p.effective_date.isoformat(),
                                   "event_id": event.event_id}
        members = dict.fromkeys(m for pid in _get(store, "programs", []) for m in _get(store, f"members:{pid}", []))
        return [signal("rate", m, "reference_rate", _next_seq(store, m), at, ids, rate=store["reference_rate"])
                for m in members]
    if isinstance(event, ev.PolicyPromoted):
        # The audit record is this event on cs.registry (who, which version, when; kept
        # forever). Every registered borrower is decided under the version from its next
        # input on, and this is that input: one policy signal per borrower. (A registry
        # state from before the policy lab lists only the programs registered since.)
        store["policy"] = {"version": p.version, "promoted_by": p.promoted_by, "at": event.occurred_at.isoformat(),
                           "event_id": event.event_id}
        members = dict.fromkeys(m for pid in _get(store, "programs", []) for m in _get(store, f"members:{pid}", []))
        return [signal("policy", m, "policy", _next_seq(store, m), at, ids, version=p.version) for m in members]
    if isinstance(event, ev.SupplyRelationship):
        buyers = _get(store, f"buyers:{p.supplier_id}", {})
        buyers[p.buyer_id] = p.tier
        store[f"buyers:{p.supplier_id}"] = buyers
        suppliers = _get(store, f"suppliers:{p.buyer_id}", [])
        if p.supplier_id not in suppliers:
            store[f"suppliers:{p.buyer_id}"] = [*suppliers, p.supplier_id]
        return [_factors_signal(store, s, at, ids) for s in _affected(store, p.supplier_id)]
    if isinstance(event, ev.PartyStatusChanged):
        party = _get(store, f"party:{p.party_id}", {})
        party["status"] = p.status.value
        store[f"party:{p.party_id}"] = party
        out = [_factors_signal(store, s, at, ids) for s in _affected(store, p.party_id, include_self=False)]
        if p.status != ev.PartyStatus.healthy:
            out.append(alert("BUYER_DISTRESS", "critical" if p.status == ev.PartyStatus.distressed else "warning",
                             f"{p.party_id} is now '{p.status.value}': {p.reason}. Its suppliers' limits "
                             f"are reduced ({len(out)} affected).", at, ids, None, p.party_id))
        return out
    if isinstance(event, ev.ConsentGranted | ev.ConsentRevoked):
        if p.purpose != CREDIT_PURPOSE:
            return []  # consent for another purpose does not govern the credit limit
        granted = isinstance(event, ev.ConsentGranted)
        return [signal("consent", p.borrower_id, "consent", _next_seq(store, p.borrower_id), at, ids,
                       granted=granted, purpose=p.purpose)]
    return []


def _affected(store: Store, party_id: str, include_self: bool = True) -> list[str]:
    """The party (if it borrows), its suppliers and their suppliers: who a change touches."""
    tier1 = _get(store, f"suppliers:{party_id}", [])
    tier2 = [s for t in tier1 for s in _get(store, f"suppliers:{t}", [])]
    seen: list[str] = []
    for s in ([party_id] if include_self else []) + tier1 + tier2:
        if s not in seen:
            seen.append(s)
    return seen
