"""Issue 10 (credit integrity) and issue 11 items 1-2 through the real broker and a worker.

The same logs as test_credit_integrity.py. Where a class of case depends on what the
worker had applied before an input, that input is sent only once the engine has
answered the ones before it (as in test_broker.py).
"""

from __future__ import annotations

import pytest

from connectors.kafka_io import produce_events
from tests.engine import scenarios as sc
from tests.engine.test_broker import Outputs, send_phased, u, values

pytestmark = pytest.mark.integration


async def test_delivering_a_counted_order_publishes_one_version(producer, outputs: Outputs, mine) -> None:
    uid = u()
    events, expected = sc.delivery_of_a_counted_order(uid)
    s = f"sup-{uid}"
    last_delivery = events[-1]
    await send_phased(producer, outputs, events[:-1], [s])
    await outputs.wait(lambda rs: any(x["limit"]["amount"] == "264000.00" for x in mine(rs, s)))
    before = len(mine(outputs.records, s))
    await produce_events(producer, [last_delivery])
    await outputs.wait(lambda rs: mine(rs, s)[-1]["limit"]["amount"] == expected[s])
    caused = mine(outputs.records, s)[before:]
    assert [x["limit"]["amount"] for x in caused] == ["300000.00"]
    # Orders and shipments are two topics: earlier inputs that moved nothing a lender sees
    # (a delivery read before its order's confirmation) may be listed with it.
    assert caused[0]["trigger_event_ids"][-1] == last_delivery.event_id
    assert "330000.00" not in [x["limit"]["amount"] for x in mine(outputs.records, s)]


async def test_an_order_never_delivered_stops_counting_after_its_grace(producer, outputs: Outputs, mine) -> None:
    uid = u()
    events, expected = sc.order_never_delivered(uid)
    s = f"sup-{uid}"
    await send_phased(producer, outputs, events[:-2], [s])
    await outputs.wait(lambda rs: any(x["limit"]["amount"] == expected["counting"] for x in mine(rs, s)))
    # Only the input past the grace (the one at its end is checked offline: two orders
    # are on two partitions, which the worker may read in either order).
    await produce_events(producer, events[-1:])
    await outputs.wait(lambda rs: mine(rs, s)[-1]["limit"]["amount"] == expected["after"])
    final = mine(outputs.records, s)[-1]
    assert "ORDER_NOT_DELIVERED" in {r["code"] for r in final["reasons"]}
    assert final["trigger_event_ids"] == [events[-1].event_id]


def alerts_of(records: list, engine, code: str, uid: str) -> list[dict]:
    return [a["payload"] for a in values(records, "cs.alerts")
            if a["source"] == f"creditstream.engine.{engine.app_id}" and a["payload"]["code"] == code
            and uid in (a["payload"].get("borrower_id") or "")]


async def test_represented_invoices_and_foreign_tax_ids_never_count(producer, outputs: Outputs, mine,
                                                                    engine) -> None:
    uid = u()
    events, expected = sc.represented_invoices(uid)
    s, s2 = f"sup-{uid}", f"sup2-{uid}"
    await send_phased(producer, outputs, events, [s, s2])
    await outputs.wait(lambda rs: len(alerts_of(rs, engine, "DUPLICATE_FINANCING", uid)) == 2
                       and len(alerts_of(rs, engine, "RECEIVABLE_SELLER_MISMATCH", uid)) == 1
                       and all(mine(rs, b) and mine(rs, b)[-1]["limit"]["amount"] == amount
                               for b, amount in expected.items()))
    assert {x["limit"]["amount"] for x in mine(outputs.records, s2)} == {"0.00"}
    assert "RECEIVABLE_SELLER_MISMATCH" in {r["code"] for r in mine(outputs.records, s2)[-1]["reasons"]}


async def test_another_tenants_event_with_the_same_id_is_not_dropped(producer, outputs: Outputs, mine) -> None:
    uid = u()
    events, expected = sc.colliding_event_ids(uid)
    s = f"sup-{uid}"
    base, invoice, ledger, revocation = events[:-5], events[-5:-3], events[-3:-1], events[-1:]
    await send_phased(producer, outputs, base, [s])
    await outputs.wait(lambda rs: (mine(rs, s) or [{}])[-1].get("limit", {}).get("amount") == "640000.00")
    await produce_events(producer, invoice)
    await outputs.wait(lambda rs: mine(rs, s)[-1]["limit"]["amount"] == expected["before_revocation"])
    await produce_events(producer, ledger)
    await outputs.wait(lambda rs: mine(rs, s)[-1]["outstanding"]["amount"] == expected["outstanding"])
    await produce_events(producer, revocation)
    await outputs.wait(lambda rs: mine(rs, s)[-1]["status"] == "frozen")
    assert mine(outputs.records, s)[-1]["limit"]["amount"] == expected["final"]


async def test_ledger_events_only_from_the_programs_lenders_or_its_operator(producer, outputs: Outputs, mine,
                                                                           engine) -> None:
    import base64

    uid = u()
    events, expected = sc.ledger_from_strangers(uid)
    s = f"sup-{uid}"
    base, rest = events[:-7], events[-7:]
    await send_phased(producer, outputs, base, [s])
    await outputs.wait(lambda rs: (mine(rs, s) or [{}])[-1].get("limit", {}).get("amount") == "640000.00")
    await produce_events(producer, rest)

    def refused(rs: list) -> list[dict]:
        return [d["payload"] for d in values(rs, "cs.deadletter")
                if d["source"] == f"creditstream.engine.{engine.app_id}"
                and uid in base64.b64decode(d["payload"]["value_b64"]).decode(errors="replace")]

    await outputs.wait(lambda rs: len(refused(rs)) == len(expected["refused"])
                       and mine(rs, s)[-1]["outstanding"]["amount"] == expected["outstanding"])
    assert sorted(d["reason"] for d in refused(outputs.records)) == sorted(expected["refused"])
    final = mine(outputs.records, s)[-1]
    assert final["available"]["amount"] == expected["available"]
    assert all(x["outstanding"]["amount"] in ("0.00", "100000.00", "70000.00") for x in mine(outputs.records, s))


async def test_every_move_of_outstanding_is_published_while_nothing_is_available(producer, outputs: Outputs,
                                                                                mine, engine) -> None:
    uid = u()
    events, expected = sc.exposure_while_unavailable(uid)
    s = f"sup-{uid}"
    await send_phased(producer, outputs, events[:-6], [s])
    await outputs.wait(lambda rs: (mine(rs, s) or [{}])[-1].get("limit", {}).get("amount") == "640000.00")
    before = len(mine(outputs.records, s))
    await produce_events(producer, events[-6:])
    want = [x for x in expected["outstanding"] if x]
    await outputs.wait(lambda rs: [x["outstanding"]["amount"] for x in mine(rs, s)[before:]] == want
                       and alerts_of(rs, engine, "REPAYMENT_EXCEEDS_BALANCE", uid))
    assert all(x["available"]["amount"] == "0.00" for x in mine(outputs.records, s)[before:])


async def test_trigger_ids_list_each_input_once(producer, outputs: Outputs, mine) -> None:
    uid = u()
    events, expected = sc.receivables(uid)
    s = f"sup-{uid}"
    await send_phased(producer, outputs, events, [s])
    await outputs.wait(lambda rs: (mine(rs, s) or [{}])[-1].get("limit", {}).get("amount") == expected[s]
                       and "RECEIVABLE_DISPUTED" in {r["code"] for r in mine(rs, s)[-1]["reasons"]})
    listed = [t for x in mine(outputs.records, s) for t in x["trigger_event_ids"]]
    assert len(listed) == len(set(listed)) and set(listed) <= {e.event_id for e in events}


async def test_every_published_change_says_what_changed(producer, outputs: Outputs, mine) -> None:
    from datetime import timedelta

    from schemas.factory import EventFactory

    uid = u()
    events, _ = sc.drawdown_repayment(uid)
    s = f"sup-{uid}"
    await send_phased(producer, outputs, events, [s])
    # Invoices and ledger are two topics: wait for both before the revocation.
    await outputs.wait(lambda rs: (mine(rs, s) or [{}])[-1].get("available", {}).get("amount") == "490000.00")
    await produce_events(producer, [EventFactory(f"w-{uid}", sc.WEEK0 + timedelta(hours=2)).consent(s, granted=False)])
    await outputs.wait(lambda rs: mine(rs, s)[-1]["status"] == "frozen")

    def said(x: dict) -> str:
        return next(r["text"] for r in x["reasons"] if r["code"].startswith("LIMIT_"))

    ours = mine(outputs.records, s)
    assert said(ours[1]) == "Your limit stays at 0 CNY (consent given; facility now active)."
    assert any(said(x).endswith("(drawn 200,000.00, outstanding 200,000.00).") for x in ours[1:])
    assert said(ours[-1]).endswith("(confirmed invoices -640,000; consent withdrawn; facility now frozen).")
    assert all("(" in said(x) for x in ours[1:])


async def test_outage_is_not_idleness_and_idle_machines_collapse(producer, outputs: Outputs, mine, engine) -> None:
    from tests.engine.test_broker import replay_final

    ua, ub = u(), u()
    outage, _ = sc.telemetry_outage(ua)
    idle, _ = sc.machine_stops_working(ub)
    a, b = f"ctr-{ua}", f"ctr-{ub}"
    expected = replay_final(outage, a)
    await send_phased(producer, outputs, outage + idle, [a, b])
    await outputs.wait(lambda rs: (mine(rs, a) or [{}])[-1].get("limit") == expected["limit"]
                       and alerts_of(rs, engine, "UTILISATION_COLLAPSE", ub), timeout=90)
    utils = {c["detail"]["utilisation"] for x in mine(outputs.records, a) for c in x["components"]
             if c["asset_id"] == f"exc-{ua}"}
    assert utils == {"1.000"}
    assert len(alerts_of(outputs.records, engine, "UTILISATION_COLLAPSE", ub)) == 1
    assert not alerts_of(outputs.records, engine, "UTILISATION_COLLAPSE", ua)


async def test_a_documented_program_field_is_accepted(producer, outputs: Outputs, mine) -> None:
    import orjson

    from schemas import codec

    uid = u()
    events, expected = sc.receivables(uid)
    program = orjson.loads(codec.encode(events[0]))
    program["payload"]["min_lender_share"] = "0.4"  # bank-a 0.6, mfi-b 0.4: allowed
    await producer.send_and_wait("cs.registry", orjson.dumps(program), key=f"prg-{uid}".encode())
    s = f"sup-{uid}"
    await send_phased(producer, outputs, events[1:], [s])
    await outputs.wait(lambda rs: (mine(rs, s) or [{}])[-1].get("limit", {}).get("amount") == expected[s])
    assert [lender["limit"]["amount"] for lender in mine(outputs.records, s)[-1]["lenders"]] == [
        "384000.00", "256000.00"]


async def test_a_program_in_yen_gets_limits_in_whole_yen(producer, outputs: Outputs, mine, engine) -> None:
    uid = u()
    events, _ = sc.in_currency(uid, "JPY", "1000000", "123456")
    s = f"sup-{uid}"
    await send_phased(producer, outputs, events, [s])
    await outputs.wait(lambda rs: (mine(rs, s) or [{}])[-1].get("available", {}).get("amount") == "676544")
    final = mine(outputs.records, s)[-1]
    assert (final["limit"], final["outstanding"]) == ({"amount": "800000", "currency": "JPY"},
                                                      {"amount": "123456", "currency": "JPY"})
    assert [x["limit"]["amount"] for x in final["lenders"]] == ["480000", "320000"]


def canonical(update: dict) -> dict:
    """The part of a limit update that the replay and a worker agree on for the same log
    whatever the interleaving of topics (docs/credit-policy.md section 4, "Replay and
    worker"): the decision on the final state, without the path that led to it."""
    path = {"version", "previous_limit", "trigger_event_ids", "watermark"}
    return {**{k: v for k, v in update.items() if k not in path},
            "reasons": [r for r in update["reasons"] if not r["code"].startswith("LIMIT_")]}


async def test_the_worker_and_the_replay_agree_on_the_canonical_decision(producer, outputs: Outputs, mine) -> None:
    from tests.engine.test_broker import replay_final

    uid = u()
    events, _ = sc.exposure_while_unavailable(uid)
    s = f"sup-{uid}"
    expected = replay_final(events, s)
    await send_phased(producer, outputs, events, [s])
    # The ledger and the invoices are two topics: the worker may apply them in another
    # order than the log, so it is the decision on the final state that must agree.
    await outputs.wait(lambda rs: bool(mine(rs, s)) and canonical(mine(rs, s)[-1]) == canonical(expected))
    assert mine(outputs.records, s)[-1]["limit"]["amount"] == "640000.00"


async def test_a_refused_input_changes_nothing_so_its_corrected_retry_is_applied(producer, outputs: Outputs,
                                                                                 mine) -> None:
    from datetime import timedelta

    from schemas.factory import EventFactory

    uid = u()
    events, _ = sc.receivables(uid)
    s = f"sup-{uid}"
    await send_phased(producer, outputs, events, [s])
    await outputs.wait(lambda rs: (mine(rs, s) or [{}])[-1].get("limit", {}).get("amount") == "640000.00")
    f = EventFactory(f"rf-{uid}", sc.WEEK0 + timedelta(hours=1))
    ref = f.invoice_ref(sc.TAX_S, f"{uid}R1", "100000")
    wrong = f.invoice_action("confirmed", ref, f"sup2-{uid}", f"core-{uid}")
    retry = f.invoice_action("confirmed", ref, s, f"core-{uid}").model_copy(update={"event_id": wrong.event_id})
    await produce_events(producer, [f.invoice_issued(ref, s, f"core-{uid}"), wrong, retry])
    await outputs.wait(lambda rs: mine(rs, s)[-1]["limit"]["amount"] == "720000.00")


async def test_two_tenants_inputs_with_one_id_raise_two_alert_ids(producer, outputs: Outputs, mine, engine) -> None:
    uid = u()
    events, _ = sc.overdue_notices_with_one_id(uid)
    a, b = f"sup-{uid}a", f"sup-{uid}b"
    await send_phased(producer, outputs, events[:-2], [a, b])
    await outputs.wait(lambda rs: all((mine(rs, x) or [{}])[-1].get("limit", {}).get("amount") == "640000.00"
                                      for x in (a, b)))
    await produce_events(producer, events[-2:])
    await outputs.wait(lambda rs: len(alerts_of(rs, engine, "OVERDUE", uid)) == 2)
    assert len({x["alert_id"] for x in alerts_of(outputs.records, engine, "OVERDUE", uid)}) == 2
