"""Who may publish warehouse receipts and waybills (issue 16.2, 16.3): the warehouse
issues receipts and reports their stock, the owner pledges, the carrier speaks for its
trucks and waybills; a price feed needs only its event type."""

from __future__ import annotations

from connectors.gateway import keys
from connectors.gateway.authorize import refuse
from schemas.examples import example_events

EVENTS = {e.type: e for e in example_events()}


def scope(parties: set[str], types: set[str] | None = None) -> keys.Scope:
    return keys.Scope(key_id="k", tenant=EVENTS["receipt.issued"].tenant, event_types=frozenset(types or {"*"}),
                      parties=frozenset(parties), programs=frozenset())


def test_each_receipt_and_freight_event_needs_the_party_it_speaks_for() -> None:
    speaks_for = {"receipt.issued": ("wh-yangshan-3", "warehouse"), "receipt.stock_moved": ("wh-yangshan-3", "warehouse"),
                  "receipt.pledged": ("trd-hunan-metals", "borrower"),
                  "receipt.released": ("trd-hunan-metals", "borrower"),
                  "freight.truck_enrolled": ("car-changsha-express", "carrier"),
                  "freight.waybill_completed": ("car-changsha-express", "carrier"),
                  "freight.waybill_paid": ("car-changsha-express", "carrier")}
    for etype, (party, role) in speaks_for.items():
        event = EVENTS[etype]
        assert refuse(scope({party}), event) is None, etype
        assert refuse(scope({"someone-else"}), event) == f"the key does not speak for {role} {party!r}", etype


def test_a_price_feed_key_publishes_prices_and_nothing_else() -> None:
    feed = scope(set(), {"market.price"})
    assert refuse(feed, EVENTS["market.price"]) is None
    assert "may not publish receipt.issued" in refuse(feed, EVENTS["receipt.issued"])
