"""Authorization rules and key handling, without I/O."""

from __future__ import annotations

from connectors.gateway import keys
from connectors.gateway.authorize import refuse
from schemas.examples import example_events

EVENTS = {e.type: e for e in example_events()}


def scope(**kw) -> keys.Scope:
    base = {"key_id": "k", "tenant": "sany-heavy", "event_types": frozenset({"*"}),
            "parties": frozenset(), "programs": frozenset()}
    return keys.Scope(**{**base, **kw})


def test_a_core_enterprise_confirms_only_invoices_addressed_to_itself() -> None:
    confirm = EVENTS["invoice.confirmed"]  # buyer sany-heavy
    assert refuse(scope(parties=frozenset({"sany-heavy"})), confirm) is None
    assert "buyer 'sany-heavy'" in refuse(scope(parties=frozenset({"xcmg"})), confirm)


def test_tenant_types_and_programs_are_enforced() -> None:
    assert "tenant" in refuse(scope(tenant="xcmg"), EVENTS["telemetry.equipment"])
    assert "may not publish invoice.issued" in refuse(scope(event_types=frozenset({"telemetry.equipment"})),
                                                      EVENTS["invoice.issued"])
    pledge = EVENTS["registry.pledge"]  # program prg-sany-equip
    assert "program 'prg-sany-equip'" in refuse(scope(programs=frozenset({"other"})), pledge)
    assert refuse(scope(programs=frozenset({"prg-sany-equip"})), pledge) is None


def test_keys_are_stored_as_hashes_and_compared_whole() -> None:
    key_id, key, stored = keys.new_key()
    parsed = keys.parse(key)
    assert parsed is not None and parsed[0] == key_id and parsed[1] not in stored
    assert keys.matches(parsed[1], stored) and not keys.matches(parsed[1][:-1], stored)
    assert keys.parse("csk_short_x") is None and keys.parse("Bearer x") is None


def test_registrations_and_the_ids_they_name() -> None:
    from connectors.gateway.authorize import foreign, registrations

    program, borrower, pledge = (EVENTS[t] for t in ("registry.program", "registry.borrower", "registry.pledge"))
    assert registrations(program) == ([("program", program.payload.program_id)], [])
    assert registrations(borrower) == ([("party", borrower.payload.party_id)],
                                       [("program", borrower.payload.program_id)])
    assert registrations(pledge) == ([("machine", pledge.payload.machine_id)],
                                     [("program", pledge.payload.program_id), ("party", pledge.payload.borrower_id)])
    assert registrations(EVENTS["telemetry.equipment"]) == ([], [])
    refs = [("party", "sup-1"), ("program", "prg-b")]
    assert foreign("a", refs, {("party", "sup-1"): "a"}) is None  # own or unregistered: fine
    assert foreign("a", refs, {("program", "prg-b"): "b"}) == "program 'prg-b' is registered by another tenant"


def test_keys_that_are_not_ascii_are_not_keys() -> None:
    # Undecodable header bytes reach the handler as surrogates; hashing them raised (a 500
    # whose exception object held the key). They are refused like any malformed key.
    assert keys.parse("csk_0123456789ab_secret\udcff") is None
    assert keys.parse("csk_0123456789ab_sécret") is None


def test_dealer_events_are_published_only_for_the_dealer_or_oem_the_key_speaks_for() -> None:
    """Without a party rule any key allowed dealer.* published sales for any dealer."""
    sale = EVENTS["dealer.retail_sale"]
    dealer = sale.payload.dealer_id  # type: ignore[attr-defined]
    assert refuse(scope(parties=frozenset({dealer})), sale) is None
    assert f"dealer {dealer!r}" in refuse(scope(parties=frozenset({"another-dealer"})), sale)
    plan = EVENTS["dealer.plan"]
    oem = plan.payload.oem_id  # type: ignore[attr-defined]
    assert refuse(scope(parties=frozenset({oem})), plan) is None
    assert f"OEM {oem!r}" in refuse(scope(parties=frozenset({plan.payload.dealer_id})), plan)  # type: ignore[attr-defined]
