"""Inventory and warehouse receipts (存货, 仓单, issue 16.2): pledged receipts valued from
the price feed with a haircut per commodity and program; a price fall lowers the limit
and, when the loans then exceed it, raises a margin call with the amount; a receipt
pledged twice counts once (DUPLICATE_FINANCING). Offline through the replay and
through the real broker with a worker of this module."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.kafka_io import produce_events
from schemas import codec
from schemas.factory import EventFactory
from streams.replay import Replay
from tests.engine import scenarios as sc
from tests.engine.test_broker import Outputs, u
from tests.engine.test_mode_dealers import limits_at_marks
from tests.engine.test_scenarios import codes, last_for, run


def figures(update: dict) -> tuple[str, str, str]:
    return update["limit"]["amount"], update["outstanding"]["amount"], update["status"]


def test_receipts_count_at_the_price_less_the_haircut_and_a_fall_calls_the_margin() -> None:
    events, marks = sc.warehouse_receipts("i1")
    _, alerts, dead = run(events)
    assert dead == []
    at = limits_at_marks(events, marks, "trd-i1")
    assert {k: figures(v) for k, v in at.items()} == {
        "copper": ("4900000.00", "0.00", "active"), "both": ("7900000.00", "0.00", "active"),
        "stock_out": ("7750000.00", "0.00", "active"), "drawn": ("7750000.00", "7000000.00", "active"),
        "margin_call": ("6700000.00", "7000000.00", "active"), "repaid": ("6700000.00", "6700000.00", "active"),
        "stale": ("2850000.00", "6700000.00", "partially_frozen"),
        "requoted": ("7050000.00", "6700000.00", "active"), "released": ("4200000.00", "4200000.00", "active")}
    copper = at["copper"]["components"][0]
    assert copper["kind"] == "inventory" and copper["asset_id"] == "wh-i1:R1"
    assert copper["detail"] | {"quoted_at": "-"} == {
        "commodity": "copper-i1", "quantity": "100", "unit": "t", "price": "70000", "haircut": "0.30",
        "market_value": "7000000.00", "quoted_at": "-"}
    assert "INVENTORY_NOT_ACCEPTED" in codes(at["both"])  # nickel: no haircut in the program
    assert "INVENTORY_PRICE_FALL" in codes(at["margin_call"]) and "PRICE_STALE" in codes(at["stale"])
    assert [c["asset_id"] for c in at["stale"]["components"] if c["frozen"]] == ["wh-i1:R1"]
    assert "INVENTORY_PRICE_FALL" not in codes(at["requoted"])  # 60,000 is above the last quote
    assert "warehouse receipts -2,850,000" in at["released"]["reasons"][-1]["text"]
    assert [(a["code"], a.get("borrower_id")) for a in alerts] == [
        ("STOCK_OUT_UNDER_PLEDGE", "trd-i1"), ("INVENTORY_MARGIN_CALL", "trd-i1"),
        ("DUPLICATE_FINANCING", "trd2-i1")]
    call = alerts[1]["text"]
    # 7m drawn against 6.7m: repay 300,000, or pledge goods that count as much after the
    # haircut: 300,000 / (55,000 x 0.70) = 7.793 t of copper (rounded up).
    assert "Repay 300,000.00 CNY" in call and "7.793 t of copper-i1 at 55,000" in call
    # The second trader's pledge counted for nothing: it has no limit from R1.
    assert last_for(run(events)[0], "trd2-i1")["limit"]["amount"] == "0.00"


def test_a_receipt_is_financed_once_and_only_by_its_owner() -> None:
    f = EventFactory("wrd", sc.WEEK0)
    prg, t, t2, wh = "prg-wrd", "trd-wrd", "trd2-wrd", "wh-wrd"
    events = [f.program(prg, commodity_haircuts={"cu-wrd": "0.30"}), f.borrower(t, prg), f.consent(t),
              f.borrower(t2, prg, tax_id=sc.TAX_S2), f.consent(t2), f.price("cu-wrd", "70000"),
              f.stock_moved(wh, "R9", "in", "5"),  # before its issue: refused, not guessed
              f.receipt_issued(wh, "R1", t, "cu-wrd", "10"), f.receipt_pledged(wh, "R1", t2),  # not the owner
              f.receipt_pledged(wh, "R1", t), f.receipt_pledged(wh, "R1", t),  # the same borrower again
              f.stock_moved(wh, "R1", "out", "11"),  # more than it holds
              f.receipt_released(wh, "R1", t), f.receipt_pledged(wh, "R1", t)]  # released: never again
    limits, alerts, dead = run(events)
    assert [d["payload"]["reason"] for d in dead] == ["unknown_receipt", "not_receipt_owner", "stock_below_zero"]
    assert [a["text"].split(" was submitted again by ")[1].split(";")[0] for a in alerts] == [
        "the same borrower while it is already financed", "the same borrower after it was released"]
    assert {a["code"] for a in alerts} == {"DUPLICATE_FINANCING"}
    assert last_for(limits, t)["limit"]["amount"] == "0.00"


def test_prices_reach_the_borrower_whatever_the_order_and_an_older_quote_changes_nothing() -> None:
    events, marks = sc.warehouse_receipts("i2")
    head = events[:marks["both"]]
    want = figures(last_for(run(head)[0], "trd-i2"))
    assert want == ("7900000.00", "0.00", "active")
    prices = [e for e in head if e.type == "market.price"]
    rest = [e for e in head if e.type != "market.price"]
    for order in (prices + rest, rest + prices):  # quotes before the program, or after the receipts
        assert figures(last_for(run(order)[0], "trd-i2")) == want
    f = EventFactory("old-i2", sc.WEEK0.replace(year=2025))
    late = f.price("copper-i2", "1000")  # a year older than the last quote: kept out
    assert figures(last_for(run([*head, late])[0], "trd-i2")) == want
    r = Replay()
    for e in [*head, late]:
        list(r.feed(codec.encode(e)))
    assert r.stores["registry"]["price:copper-i2"]["price"] == "70000"
    assert r.stores["registry"]["commodity:copper-i2"] == ["prg-i2"]


def test_a_program_sets_its_own_haircuts_and_price_age() -> None:
    events, marks = sc.warehouse_receipts("i3")
    program = events[0].payload  # type: ignore[attr-defined]
    lenient = events[0].model_copy(update={"payload": program.model_copy(update={
        "parameters": program.parameters.model_copy(update={
            "commodity_haircuts": {"copper-i3": Decimal("0.50"), "aluminium-i3": Decimal("0.25")},
            "price_max_age_days": 10})})})
    at = limits_at_marks([lenient, *events[1:]], marks, "trd-i3")
    assert at["copper"]["limit"]["amount"] == "3500000.00"  # 100 t x 70,000 x 0.50
    assert at["stale"]["status"] == "active" and "PRICE_STALE" not in codes(at["stale"])


# ---------------------------------------------------------------- through a real worker
@pytest.mark.integration
async def test_warehouse_receipts_through_the_broker(producer, outputs: Outputs, mine, my_alerts) -> None:
    """The scenario in its phases (the registry and price feed, receipts, ledger and
    quotes travel on different topics and lanes): each phase is sent once this worker
    has published the replay's decision for the one before, so the margin call falls
    on the same state; the figures at every phase and the alerts are the replay's."""
    uid = u()
    events, marks = sc.warehouse_receipts(uid)
    t = f"trd-{uid}"
    expected = limits_at_marks(events, marks, t)
    traders = (t, f"trd2-{uid}")

    registry = [e for e in events[:marks["copper"]] if e.type.startswith("registry.")]
    await produce_events(producer, registry)
    await outputs.wait(lambda rs: len(mine(rs, t)) >= 1, timeout=240)
    start = 0
    for mark, end in marks.items():
        await produce_events(producer, [e for e in events[start:end] if e not in registry])
        want = figures(expected[mark])
        await outputs.wait(lambda rs, want=want: bool(mine(rs, t)) and figures(mine(rs, t)[-1]) == want,
                           timeout=240)
        start = end
    await outputs.wait(lambda rs: len(my_alerts(rs, *traders)) >= 3, timeout=60)
    assert sorted(a["code"] for a in my_alerts(outputs.records, *traders)) == [
        "DUPLICATE_FINANCING", "INVENTORY_MARGIN_CALL", "STOCK_OUT_UNDER_PLEDGE"]
    final = mine(outputs.records, t)[-1]
    assert final["components"] == expected["released"]["components"]


def test_the_final_decision_does_not_depend_on_how_receipts_quotes_and_loans_interleave() -> None:
    """Receipts, quotes and ledger events travel on three topics and lanes: a worker may
    read them in any interleaving (each topic in its own order). The trader ends with the
    replay's limit, outstanding, status and reasons; only when a margin call is raised can
    depend on it (it is raised by the decision whose fall leaves the loans above the limit)."""
    import random

    from schemas.topics import TOPIC_OF_TYPE
    from tests.engine.test_mode_dealers import canonical

    events, _ = sc.warehouse_receipts("i5")
    head = [e for e in events if e.type.startswith("registry.")]
    lanes: dict[str, list] = {}
    for e in events:
        if e not in head:
            lanes.setdefault(TOPIC_OF_TYPE[e.type].name, []).append(e)
    want = canonical(last_for(run(events)[0], "trd-i5"))
    assert want[0]["amount"] == "4200000.00"
    for seed in range(6):
        rng, queues, merged = random.Random(seed), {k: list(v) for k, v in lanes.items()}, []
        while any(queues.values()):
            merged.append(queues[rng.choice(sorted(k for k, q in queues.items() if q))].pop(0))
        limits, _, dead = run(head + merged)
        assert dead == []
        assert canonical(last_for(limits, "trd-i5")) == want, seed
