"""Stage 1 for the commodity price feed, on the registry's lane (cs.prices is read with
cs.registry, one partition each).

A price concerns every borrower whose program finances the commodity, and only the
registry knows programs and their members: it keeps the latest quote per commodity
(by quote time, so a late older quote changes nothing) and an index commodity ->
programs whose ``commodity_haircuts`` name it, and sends each member a ``price``
signal. A borrower that joins such a program, or a program that starts financing a
commodity, gets the current quotes at once, so stage 2 ends with the same prices
whatever the order of the price feed and the registry events.

The signal's ``seq`` is the quote's number for its commodity: stage 2 keeps the newest
per commodity, and the same quote sent again (a new member, a program re-registered)
is recognised as no news.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from schemas import events as ev
from streams.domain.signals import Output, signal

Store = MutableMapping[str, Any]


def _programs(store: Store, commodity: str) -> list[str]:
    return store.get(f"commodity:{commodity}") or []


def on_price(store: Store, event: ev.MarketPrice) -> list[Output]:
    """Keep the quote if it is the newest of its commodity; tell the members of the
    programs that finance it. A repeat (same time and price) or an older quote: nothing."""
    p = event.payload
    at = event.occurred_at.timestamp()
    key = f"price:{p.commodity}"
    old = store.get(key)
    if old is not None and (at < old["quoted_at"] or (at == old["quoted_at"] and old["price"] == str(p.price.amount)
                                                      and old["event_id"] == event.event_id)):
        return []
    quote = {"price": str(p.price.amount), "currency": p.price.currency, "unit": p.unit, "quoted_at": at,
             "event_id": event.event_id, "n": (old["n"] if old else 0) + 1,
             "prev": None if old is None else {"price": old["price"], "currency": old["currency"],
                                               "unit": old["unit"], "quoted_at": old["quoted_at"]}}
    store[key] = quote
    return [_signal(p.commodity, quote, member, at, [event.event_id])
            for program_id in _programs(store, p.commodity)
            for member in store.get(f"members:{program_id}") or []]


def on_program(store: Store, program: ev.ProgramPayload, at: float, ids: list[str]) -> list[Output]:
    """Index the program's commodities; its members get their current quotes."""
    haircuts = program.parameters.commodity_haircuts or {}
    for commodity in sorted(haircuts):
        programs = _programs(store, commodity)
        if program.program_id not in programs:
            store[f"commodity:{commodity}"] = [*programs, program.program_id]
    return [o for member in store.get(f"members:{program.program_id}") or []
            for o in for_member(store, member, program.program_id, at, ids)]


def for_member(store: Store, borrower_id: str, program_id: str, at: float, ids: list[str]) -> list[Output]:
    """The current quotes of the commodities ``program_id`` finances, for one member."""
    program = store.get(f"program:{program_id}") or {}
    haircuts = (program.get("parameters") or {}).get("commodity_haircuts") or {}
    return [_signal(c, quote, borrower_id, at, ids) for c in sorted(haircuts)
            if (quote := store.get(f"price:{c}")) is not None]


def _signal(commodity: str, quote: dict[str, Any], borrower_id: str, at: float, ids: list[str]) -> Output:
    return signal("price", borrower_id, commodity, quote["n"], at, ids, commodity=commodity,
                  price=quote["price"], currency=quote["currency"], unit=quote["unit"],
                  quoted_at=quote["quoted_at"], prev=quote["prev"])
