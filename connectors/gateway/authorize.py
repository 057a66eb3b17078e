"""Who may publish what: a tenant speaks only about its own supply chain.

Pure rules over an event and a key's :class:`Scope`; docs/gateway.md has the table.
:func:`registrations` says which programs, borrowers and machines an event registers or
names; the gateway ties each to the tenant that registered it first (``registrations``
table), so one tenant cannot take over another's (connectors/gateway/app.py).
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
    # Dealer financing: the OEM states its plan and the units it hands over; the dealer's
    # own system reports its sales, repayments and stock counts.
    "dealer.plan": ("OEM", "oem_id"),
    "dealer.unit_picked_up": ("OEM", "oem_id"),
    "dealer.retail_sale": ("dealer", "dealer_id"),
    "dealer.unit_repaid": ("dealer", "dealer_id"),
    "dealer.stock_audit": ("dealer", "dealer_id"),
    # Warehouse receipts: the warehouse issues them and reports the stock under them; the
    # owner pledges its receipt and its lenders' platform, speaking for it, releases it.
    "receipt.issued": ("warehouse", "warehouse_id"),
    "receipt.stock_moved": ("warehouse", "warehouse_id"),
    "receipt.pledged": ("borrower", "borrower_id"),
    "receipt.released": ("borrower", "borrower_id"),
    # Freight: the carrier enrols its trucks and completes its waybills.
    "freight.truck_enrolled": ("carrier", "carrier_id"),
    "freight.waybill_completed": ("carrier", "carrier_id"),
    "freight.waybill_paid": ("carrier", "carrier_id"),
}
# Event types whose program must be one the key may publish for.
PROGRAM_RULES = frozenset({"registry.pledge", "registry.program", "registry.borrower", "ledger.drawdown"})

Ref = tuple[str, str]  # (kind, id): ("program", ...), ("party", ...) or ("machine", ...)
# What a registration event registers: it becomes the publishing tenant's if nobody's yet.
REGISTERS: dict[str, tuple[str, str]] = {
    "registry.program": ("program", "program_id"),
    "registry.borrower": ("party", "party_id"),
    "registry.pledge": ("machine", "machine_id"),
}
# What it names without registering: each must not be another tenant's. Without these,
# a key scoped to its own program could still move another tenant's borrower into it
# (its limit updates, built on the other tenant's confirmed invoices, would then go to
# this program's lenders), pledge another tenant's machine or add collateral to another
# tenant's borrower.
NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "registry.borrower": (("program", "program_id"),),
    "registry.pledge": (("program", "program_id"), ("party", "borrower_id")),
    "registry.pledge_released": (("machine", "machine_id"),),
}


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


def registrations(event: ev.Envelope) -> tuple[list[Ref], list[Ref]]:
    """(what ``event`` registers, what it names): the ids whose owning tenant matters."""
    payload = event.payload  # type: ignore[attr-defined]
    registers = []
    if event.type in REGISTERS:
        kind, attr = REGISTERS[event.type]
        registers.append((kind, getattr(payload, attr)))
    names = [(kind, value) for kind, attr in NAMES.get(event.type, ())
             if (value := getattr(payload, attr)) is not None]
    return registers, names


def foreign(tenant: str, refs: list[Ref], owners: dict[Ref, str]) -> str | None:
    """The reason an event is refused when one of its ``refs`` belongs to another tenant."""
    for kind, ident in refs:
        owner = owners.get((kind, ident))
        if owner is not None and owner != tenant:
            what = {"party": "borrower", "machine": "machine", "program": "program"}[kind]
            return f"{what} {ident!r} is registered by another tenant"
    return None
