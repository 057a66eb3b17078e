"""Issue 10 (credit integrity) and issue 11 items 1-2 through the offline replay.

Each test is a class of cases a credit officer found wrong; the same logs run through
the real broker in test_credit_broker.py.
"""

from __future__ import annotations

from collections import Counter

from schemas import codec
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
