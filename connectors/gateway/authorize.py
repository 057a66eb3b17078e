"""Who may publish what: a tenant speaks only about its own supply chain.

Pure rules over an event and a key's :class:`Scope`; docs/gateway.md has the table.
"""

from __future__ import annotations

from connectors.gateway.keys import Scope
from schemas import events as ev

ANY = "*"
# Event type -> (the party the key must speak for, payload field naming it).
PARTY_RULES: dict[str, tuple[str, str]] = {
    "po.issued": ("buyer", "buyer_id"),
    "po.cancelled": ("buyer", "buyer_id"),
    "po.confirmed": ("supplier", "supplier_id"),
    "shipment.observed": ("supplier", "supplier_id"),
    "invoice.issued": ("seller", "seller_id"),
    "invoice.cancelled": ("seller", "seller_id"),
    "invoice.confirmed": ("buyer", "buyer_id"),
    "invoice.disputed": ("buyer", "buyer_id"),
    "invoice.paid": ("buyer", "buyer_id"),
    "invoice.partially_paid": ("buyer", "buyer_id"),
    "registry.supply_relationship": ("buyer", "buyer_id"),
    "registry.consent_granted": ("borrower", "borrower_id"),
    "registry.consent_revoked": ("borrower", "borrower_id"),
    "registry.pledge_released": ("borrower", "borrower_id"),
}
# Event types whose program must be one the key may publish for.
PROGRAM_RULES = frozenset({"registry.pledge", "registry.program", "registry.borrower", "ledger.drawdown"})


def _has(allowed: frozenset[str], value: str | None) -> bool:
    return ANY in allowed or (value is not None and value in allowed)


def refuse(scope: Scope, event: ev.Envelope) -> str | None:
    """None when the key may publish the event, else the reason it may not."""
    if event.tenant != scope.tenant:
        return f"the key belongs to tenant {scope.tenant!r}, the event names {event.tenant!r}"
    if not _has(scope.event_types, event.type):
        return f"the key may not publish {event.type} events"
    payload = event.payload  # type: ignore[attr-defined]
    if event.type in PARTY_RULES:
        role, attr = PARTY_RULES[event.type]
        party = getattr(payload, attr)
        if not _has(scope.parties, party):
            return f"the key does not speak for {role} {party!r}"
    if event.type in PROGRAM_RULES:
        program = payload.program_id
        if program is not None and not _has(scope.programs, program):
            return f"the key may not publish for program {program!r}"
    return None
