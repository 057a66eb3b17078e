"""Issue 10 (credit integrity) and issue 11 items 1-2 through the offline replay.

Each test is a class of cases a credit officer found wrong; the same logs run through
the real broker in test_credit_broker.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest

from schemas import codec
from schemas.factory import EventFactory
from streams.replay import Replay
from tests.engine import scenarios as sc


def per_input(events) -> list[tuple[str, list[dict]]]:
    """(event id, the limit update payloads that input caused), in log order."""
    r = Replay()
    out = []
    for e in events:
        out.append((e.event_id, [o.value["payload"] for o in r.feed(codec.encode(e)) if o.topic == "cs.limits"]))
    return out


# ---------------------------------------------------------------- 10.2 one input, one decision
def test_delivering_a_counted_order_publishes_one_decision_without_it() -> None:
    events, expected = sc.delivery_of_a_counted_order("d1")
    steps = per_input(events)
    delivery_id, caused = steps[-1]
    assert [u["limit"]["amount"] for u in caused] == [expected["sup-d1"]] == ["300000.00"]
    # The limit before was 264,000: never a 330,000 that counts the delivered order at
    # the new score (no state of the facility has both).
    assert [u for _, us in steps for u in us][-2]["limit"]["amount"] == "264000.00"
    assert all(u["limit"]["amount"] != "330000.00" for _, us in steps for u in us)
    assert caused[0]["trigger_event_ids"] == [delivery_id]


def test_every_input_publishes_at_most_one_version_per_borrower() -> None:
    builders = (sc.receivables, sc.poor_delivery, sc.delivery_of_a_counted_order, sc.duplicate_invoice,
                sc.battery_alarm, sc.geofence_breach, sc.drawdown_repayment, sc.tier2_distress,
                sc.late_telemetry)
    for build in builders:
        events, _ = build("one")
        for event_id, caused in per_input(events):
            per_borrower = Counter(u["borrower_id"] for u in caused)
            assert all(n == 1 for n in per_borrower.values()), (build.__name__, event_id, per_borrower)
            for u in caused:  # each input once in the triggers
                assert len(u["trigger_event_ids"]) == len(set(u["trigger_event_ids"]))


# ---------------------------------------------------------------- 10.3 orders never delivered
def test_a_confirmed_order_never_delivered_stops_counting_14_days_after_its_due_date() -> None:
    events, expected = sc.order_never_delivered("n1")
    steps = per_input(events)
    limits = [u for _, us in steps for u in us]
    assert any(u["limit"]["amount"] == expected["counting"] for u in limits)
    # Exactly 14 days after the due date it still counts (the grace includes its end).
    assert steps[-2][1] == []
    final = steps[-1][1]
    assert [u["limit"]["amount"] for u in final] == [expected["after"]]
    reason = next(r["text"] for r in final[0]["reasons"] if r["code"] == "ORDER_NOT_DELIVERED")
    assert reason == ("Order po-n1 was due for delivery on 2026-04-02 and has not been delivered "
                      "14 days later; it no longer counts.")
    assert not [c for c in final[0]["components"] if c["kind"] == "order"]


# ---------------------------------------------------------------- 10.1 duplicate financing
def run(events) -> tuple[list[dict], list[dict], list[dict]]:
    r = Replay()
    limits, alerts, dead = [], [], []
    for e in events:
        for o in r.feed(codec.encode(e)):
            {"cs.limits": limits, "cs.alerts": alerts, "cs.deadletter": dead}[o.topic].append(o.value["payload"])
    return limits, alerts, dead


def test_an_invoice_presented_again_after_it_closed_or_under_another_tax_id_never_counts() -> None:
    events, expected = sc.represented_invoices("r1")
    limits, alerts, dead = run(events)
    for borrower, amount in expected.items():
        mine = [u for u in limits if u["borrower_id"] == borrower]
        assert mine[-1]["limit"]["amount"] == amount
        assert not [c for c in mine[-1]["components"] if c["kind"] == "receivable"]
    # sup's only counted invoice was P1 before it was paid; sup2 never had one.
    assert [u["limit"]["amount"] for u in limits if u["borrower_id"] == "sup2-r1" and u["limit"]["amount"] != "0.00"] == []
    assert {u["limit"]["amount"] for u in limits if u["borrower_id"] == "sup-r1"} == {"0.00", "320000.00"}
    dups = [a for a in alerts if a["code"] == "DUPLICATE_FINANCING"]
    assert [(a["borrower_id"], a["text"]) for a in dups] == [
        ("sup-r1", "Invoice r1P1 was submitted again by the same seller after it was paid; it is not counted again."),
        ("sup2-r1", "Invoice r1C1 was submitted again by another seller after it was cancelled; "
                    "it is not counted again.")]
    mismatch = [a for a in alerts if a["code"] == "RECEIVABLE_SELLER_MISMATCH"]
    assert [a["borrower_id"] for a in mismatch] == ["sup2-r1"] and mismatch[0]["severity"] == "critical"
    final = [u for u in limits if u["borrower_id"] == "sup2-r1"][-1]
    assert "RECEIVABLE_SELLER_MISMATCH" in {r["code"] for r in final["reasons"]}
    # The buyer's confirmations of the re-presented invoices are refused, with reasons.
    assert sorted(d["reason"] for d in dead) == ["invoice_closed", "party_mismatch"]


def test_seller_check_does_not_depend_on_whether_the_invoice_or_the_registration_came_first() -> None:
    events, _ = sc.represented_invoices("r2")
    registration = next(e for e in events if e.type == "registry.borrower" and e.payload.party_id == "sup2-r2")
    moved = [e for e in events if e is not registration] + [registration]
    for log in (events, moved):
        limits, alerts, _ = run(log)
        assert [u for u in limits if u["borrower_id"] == "sup2-r2"][-1]["limit"]["amount"] == "0.00"
        assert len([a for a in alerts if a["code"] == "RECEIVABLE_SELLER_MISMATCH"]) == 1


# ---------------------------------------------------------------- 11.1 event ids per tenant
def test_another_tenants_event_with_the_same_id_is_not_dropped() -> None:
    events, expected = sc.colliding_event_ids("t1")
    steps = per_input(events)
    limits = [u for _, us in steps for u in us if u["borrower_id"] == "sup-t1"]
    assert any(u["limit"]["amount"] == expected["before_revocation"] for u in limits)
    assert limits[-2]["outstanding"]["amount"] == expected["outstanding"]
    final = limits[-1]
    assert (final["limit"]["amount"], final["status"]) == (expected["final"], "frozen")
    assert "CONSENT_REVOKED" in {r["code"] for r in final["reasons"]}
    # A true duplicate (same tenant, same id) is still ignored.
    again = per_input(events + [events[-1]])
    assert again[-1][1] == []


def test_two_tenants_inputs_with_one_id_raise_two_alert_ids() -> None:
    events, _ = sc.overdue_notices_with_one_id("o1")
    _, alerts, _ = run(events)
    overdue = [a for a in alerts if a["code"] == "OVERDUE"]
    assert [a["borrower_id"] for a in overdue] == ["sup-o1a", "sup-o1b"]
    assert len({a["alert_id"] for a in overdue}) == 2  # a sink keeps one alert per id
    assert all(a["alert_id"].startswith("al-overdue-ovd-o1-") for a in overdue)
    # A replayed input raises the same id again.
    assert [a["alert_id"] for a in run(events)[1] if a["code"] == "OVERDUE"] == [a["alert_id"] for a in overdue]


def test_an_input_recorded_before_the_upgrade_by_its_bare_id_is_still_a_duplicate() -> None:
    from streams.domain.signals import first_time

    events, _ = sc.receivables("t2")
    issued = events[4]
    state = {"seen": [issued.event_id]}  # as 2026.11-1 wrote it
    assert first_time(state, issued) is False
    assert first_time({"seen": []}, issued) is True


# ---------------------------------------------------------------- 11.2 who may move money
def test_ledger_events_only_from_the_programs_lenders_or_its_operator() -> None:
    events, expected = sc.ledger_from_strangers("e1")
    limits, _, dead = run(events)
    assert [d["reason"] for d in dead] == expected["refused"]
    assert all(d["stage"] in ("facilities", "registry") for d in dead)
    assert "only the lenders of program prg-e1 (bank-a, mfi-b) or its operator (core)" in dead[0]["error"]
    mine = [u for u in limits if u["borrower_id"] == "sup-e1"]
    assert (mine[-1]["outstanding"]["amount"], mine[-1]["available"]["amount"]) == (
        expected["outstanding"], expected["available"])
    # The intruder's drawdown never showed: no update with the 500k outstanding.
    assert all(u["outstanding"]["amount"] in ("0.00", "100000.00", "70000.00") for u in mine)
    assert [lender["lender_id"] for lender in mine[-1]["lenders"]] == ["bank-a", "mfi-b"]


# ---------------------------------------------------------------- 10.5 every visible change is published
def test_every_move_of_outstanding_is_published_while_nothing_is_available() -> None:
    events, expected = sc.exposure_while_unavailable("x1")
    steps = per_input(events)[-6:]
    got = [us[0]["outstanding"]["amount"] if us else None for _, us in steps]
    assert got == expected["outstanding"]
    assert all(us[0]["available"]["amount"] == "0.00" for _, us in steps if us)
    second = steps[1][1][0]
    assert next(r for r in second["reasons"] if r["code"] == "LIMIT_UNCHANGED")["text"] == (
        "Your limit stays at 640,000 CNY (drawn 10,000.00, outstanding 710,000.00).")
    _, alerts, _ = run(events)
    over = [a for a in alerts if a["code"] == "REPAYMENT_EXCEEDS_BALANCE"]
    assert [(a["asset_id"], a["severity"]) for a in over] == [("ln2-x1", "warning")]
    assert "excess 5,000 is kept as a credit" in over[0]["text"]


# ---------------------------------------------------------------- 10.8 trigger ids
ALL_SCENARIOS = (sc.receivables, sc.poor_delivery, sc.delivery_of_a_counted_order, sc.duplicate_invoice,
                 sc.represented_invoices, sc.battery_alarm, sc.geofence_breach, sc.drawdown_repayment,
                 sc.exposure_while_unavailable, sc.tier2_distress, sc.late_telemetry, sc.order_never_delivered,
                 sc.colliding_event_ids, sc.ledger_from_strangers, sc.utilisation_rising,
                 sc.warehouse_receipts, sc.freight_waybills)


def test_trigger_ids_list_each_input_once_and_only_since_the_previous_version() -> None:
    # Not colliding_event_ids: two tenants' inputs share an id there on purpose.
    for build in (b for b in ALL_SCENARIOS if b is not sc.colliding_event_ids):
        events, _ = build("tr")
        since: dict[str, list[str]] = {}  # borrower -> inputs fed since its last version
        listed: dict[str, set[str]] = {}
        for event_id, caused in per_input(events):
            for ids in since.values():
                ids.append(event_id)
            for u in caused:
                b, triggers = u["borrower_id"], u["trigger_event_ids"]
                window = since.get(b, [e.event_id for e in events])
                assert triggers, (build.__name__, b, u["version"])
                assert set(triggers) <= set(window), (build.__name__, b, u["version"], triggers)
                assert not set(triggers) & listed.setdefault(b, set()), (build.__name__, b, triggers)
                assert len(triggers) == len(set(triggers))
                listed[b] |= set(triggers)
                since[b] = []


# ---------------------------------------------------------------- 10.9 reasons for every change
def change_reason(update: dict) -> str:
    return next(r["text"] for r in update["reasons"] if r["code"] in ("LIMIT_UP", "LIMIT_DOWN", "LIMIT_UNCHANGED"))


def test_every_published_change_says_what_changed() -> None:
    events, _ = sc.drawdown_repayment("w1")
    revoked = EventFactory("w1-r", sc.WEEK0 + timedelta(hours=2)).consent("sup-w1", granted=False)
    limits, _, _ = run(events + [revoked])
    mine = [u for u in limits if u["borrower_id"] == "sup-w1"]
    assert change_reason(mine[1]) == "Your limit stays at 0 CNY (consent given; facility now active)."
    assert change_reason(mine[-3]) == "Your limit stays at 640,000 CNY (drawn 200,000.00, outstanding 200,000.00)."
    assert change_reason(mine[-2]) == "Your limit stays at 640,000 CNY (repaid 50,000.00, outstanding 150,000.00)."
    assert change_reason(mine[-1]) == ("Your limit fell from 640,000 to 0 CNY (confirmed invoices -640,000; "
                                       "consent withdrawn; facility now frozen).")
    for build in ALL_SCENARIOS:
        events, _ = build("w2")
        for u in run(events)[0]:
            if u["version"] > 1:
                assert "(" in change_reason(u), (build.__name__, u["borrower_id"], u["version"], u["reasons"])


# ---------------------------------------------------------------- 10.4 idleness from real data
def test_a_telemetry_outage_is_not_idleness() -> None:
    events, _ = sc.telemetry_outage("i1")
    limits, _, _ = run(events)
    mine = [u for u in limits if u["borrower_id"] == "ctr-i1"]
    utils = {c["detail"]["utilisation"] for u in mine for c in u["components"] if c["asset_id"] == "exc-i1"}
    assert utils == {"1.000"}
    assert all("UTILISATION_LOW" not in {r["code"] for r in u["reasons"]} for u in mine)


def test_a_machine_that_stops_working_raises_utilisation_collapse_once() -> None:
    events, _ = sc.machine_stops_working("i2")
    r = Replay()
    collapse_at = []
    for i, e in enumerate(events):
        for o in r.feed(codec.encode(e)):
            if o.topic == "cs.alerts" and o.value["payload"]["code"] == "UTILISATION_COLLAPSE":
                collapse_at.append((i, o.value["payload"]["text"]))
    assert len(collapse_at) == 1
    # At 00:00 of day 20: r7 over days 13-19 = (8 + 2 + 5 x 0) / 7 = 1.43 h, 18% of the
    # baseline (the reading before, over days 12-18, gave 32%: not yet below 0.3 x 100%).
    assert collapse_at == [(4 + 20 * 4 - 1, "Machine exc-i2 now works 18% of its baseline, down from 100% "
                                            "in the last 14 days.")]


# ---------------------------------------------------------------- 10.6 documented means accepted
def field_names(model: type) -> list[str]:
    """Every field name of a pydantic model, recursively through nested models, lists
    and optionals."""
    from typing import get_args

    from pydantic import BaseModel

    names = []
    for name, info in model.model_fields.items():
        names.append(name)
        stack = [info.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                names += field_names(t)
            else:
                stack += list(get_args(t))
    return names


def test_every_accepted_program_and_pledge_field_is_documented_and_every_documented_one_works() -> None:
    from pathlib import Path

    from schemas import events as ev

    doc = (Path(__file__).parents[2] / "docs" / "credit-policy.md").read_text()
    for model in (ev.ProgramPayload, ev.ProgramParameters, ev.PledgePayload):
        missing = [name for name in model.model_fields if f"`{name}`" not in doc]
        assert missing == [], (model.__name__, missing)
    # And every field of every input event, nested ones included.
    for cls in ev.INPUT_EVENTS:
        missing = [name for name in field_names(cls) if f"`{name}`" not in doc]
        assert missing == [], (cls.__name__, missing)
    f = EventFactory("mls", sc.WEEK0)
    program = orjson.loads(codec.encode(f.program("prg-mls", lenders=(("a", "0.6"), ("b", "0.4")))))
    program["payload"]["min_lender_share"] = "0.4"
    assert codec.decode(orjson.dumps(program)).payload.min_lender_share == Decimal("0.4")
    program["payload"]["min_lender_share"] = "0.45"  # b's 0.4 is below the program's floor
    with pytest.raises(codec.DecodeError, match="at least 0.45"):
        codec.decode(orjson.dumps(program))
    program["payload"]["min_lender_share"] = "0.2"  # below the regulatory floor
    with pytest.raises(codec.DecodeError, match="greater than or equal to 0.3"):
        codec.decode(orjson.dumps(program))


# ---------------------------------------------------------------- 10.7 every valid currency
@pytest.mark.parametrize(("currency", "amount", "drawn", "limit", "lenders", "available"), [
    ("JPY", "1000000", "123456", "800000", ["480000", "320000"], "676544"),
    ("KWD", "100000.125", "1.5", "80000.000", ["48000.000", "32000.000"], "79998.500"),
    ("CNY", "100000.25", "1.5", "80000.00", ["48000.00", "32000.00"], "79997.50"),  # 1 CNY drawn too
])
def test_amounts_are_rendered_to_the_currencys_minor_units(currency, amount, drawn, limit, lenders,
                                                           available) -> None:
    from schemas.currencies import MINOR_UNITS

    events, _ = sc.in_currency("c1", currency, amount, drawn)
    limits, _, dead = run(events)
    assert [d["reason"] for d in dead] == ([] if currency == "CNY" else ["currency_mismatch"])
    final = limits[-1]
    assert (final["limit"]["amount"], final["available"]["amount"]) == (limit, available)
    assert [x["limit"]["amount"] for x in final["lenders"]] == lenders

    places = MINOR_UNITS[currency]
    for u in limits:
        for money in (u["limit"], u["previous_limit"], u["outstanding"], u["available"],
                      *(x["limit"] for x in u["lenders"]), *(c["contribution"] for c in u["components"])):
            assert money["currency"] == currency
            assert len(money["amount"].partition(".")[2]) == places, money


# ---------------------------------------------------------------- replay = worker for refused inputs
def test_a_refused_input_changes_nothing_so_its_corrected_retry_is_applied() -> None:
    # The buyer's system first names the wrong seller (refused: party_mismatch), then
    # retries the same event, corrected. The refusal must not have marked the id as
    # seen: the worker's stores drop a refused input's changes, and so must the replay.
    events, _ = sc.receivables("rf")
    f = EventFactory("rf-x", sc.WEEK0 + timedelta(hours=1))
    ref = f.invoice_ref(sc.TAX_S, "rfR1", "100000")
    issued = f.invoice_issued(ref, "sup-rf", "core-rf")
    wrong = f.invoice_action("confirmed", ref, "sup2-rf", "core-rf")
    retry = f.invoice_action("confirmed", ref, "sup-rf", "core-rf").model_copy(update={"event_id": wrong.event_id})
    limits, _, dead = run(events + [issued, wrong, retry])
    assert [d["reason"] for d in dead] == ["party_mismatch"]
    assert [u for u in limits if u["borrower_id"] == "sup-rf"][-1]["limit"]["amount"] == "720000.00"


def test_a_redelivered_drawdown_is_a_repeat_not_a_refusal() -> None:
    # The range check (outstanding below 10^16) ran before the repeat check: a
    # redelivered large drawdown was dead-lettered as amount_out_of_range.
    events, _ = sc.receivables("rd")
    f = EventFactory("rd-l", sc.WEEK0 + timedelta(hours=1))
    big = f.drawdown("ln-rd", "sup-rd", "prg-rd", "6000000000000000")
    _, _, dead = run(events + [big, big])
    assert dead == []
