"""The pure parts of the sink fault runs: the webhook check, the retry policy for an
outage, the traffic that keeps limit updates flowing, the published-update bookkeeping."""

from __future__ import annotations

import random

import pytest

from connectors.kafka_io import Record
from connectors.lenders.access import RetryPolicy
from load.chaos import Published, build_traffic
from load.chaos_webhook import busiest_lender, check, hoeffding, policy_for
from load.webhook_receiver import Delivery
from streams.replay import Replay


def _d(b: str, v: int, at: float, payload: dict | None = None) -> Delivery:
    return Delivery(b, v, payload if payload is not None else {"v": v}, 1, at)


def test_webhook_check_counts_lost_duplicates_order_foreign_and_recovery() -> None:
    expected = {("a", 1): {"v": 1}, ("a", 2): {"v": 2}, ("a", 3): {"v": 3}, ("b", 1): {"v": 1}}
    deliveries = [
        _d("a", 1, 10.0),
        _d("a", 1, 11.0),                  # identical repeat: at-least-once, not a duplicate
        _d("a", 3, 20.5),                  # after the endpoint came back (up at 20.0)
        _d("a", 2, 21.0),                  # below 3, already received: order violation
        _d("a", 2, 22.0, {"v": "other"}),  # same version, other content: duplicate
        _d("z", 9, 23.0),                  # not for this lender
    ]
    lost, dups, order, foreign, backlog, recover = check(expected, deliveries, up_at=20.0)
    assert (lost, dups, order, foreign, backlog) == (1, 1, 2, 1, 2)  # ("b", 1) never came
    assert recover == 1.0  # the last missed update ("a", 2) arrived 1 s after the endpoint was back


def test_webhook_check_of_a_clean_run() -> None:
    expected = {("a", v): {"v": v} for v in (1, 2, 3)}
    got = check(expected, [_d("a", 1, 1.0), _d("a", 2, 5.0), _d("a", 3, 6.5)], up_at=5.0)
    assert got == (0, 0, 0, 0, 2, 1.5)


# Schedules drawn per policy: the unit run's, and the ``slow`` twin's that make test runs
# (tests/conftest.py). At 5,000 the default's 2.6% is still 5 standard errors inside its bounds.
@pytest.mark.parametrize("draws", [5_000, pytest.param(20_000, marks=pytest.mark.slow)])
def test_the_run_policy_outlasts_the_outage_where_the_default_does_not(draws: int) -> None:
    rng = random.Random(1)

    def all_fail_within(policy: RetryPolicy, outage: float, draws: int) -> int:
        return sum(sum(policy.delay(n, rng) for n in range(1, policy.max_attempts)) < outage
                   for _ in range(draws))

    for outage in (10.0, 120.0):
        policy = policy_for(outage)
        assert policy.cap_s == 10.0 and hoeffding(policy, outage) <= 1e-9
        assert all_fail_within(policy, outage, draws) == 0
    # The default would dead-letter a (lender, borrower) pair in a 2-minute outage ~2.6% of the time.
    assert 0.015 < all_fail_within(RetryPolicy(), 120.0, draws) / draws < 0.04


def test_sink_traffic_keeps_limits_changing_during_the_stream() -> None:
    plain = build_traffic("Ctest", 3, 60, 1200)
    mixed = build_traffic("Ctest", 3, 60, 1200, business_every=50, lender_prefix="Ctest-")
    assert len(mixed.stream) == len(plain.stream) + 1200 // 50
    replay = Replay()
    for _t, _k, v in mixed.setup:
        list(replay.feed(v))
    at = [i for i, (_t, _k, v) in enumerate(mixed.stream) for o in replay.feed(v) if o.topic == "cs.limits"]
    # The faults start when 40% of the stream is sent: updates must keep coming after that.
    assert len([i for i in at if i > len(mixed.stream) * 2 // 5]) >= 5
    lender, funded = busiest_lender(mixed.world)
    assert lender.startswith("Ctest-") and funded
    assert all(lid.startswith("Ctest-") for mix in mixed.world.programs.values() for lid, _ in mix)


def test_published_keeps_first_content_and_counts_repeats_and_conflicts() -> None:
    def rec(b: str, v: int, limit: str, source: str = "me") -> Record:
        body = (f'{{"source":"{source}","payload":{{"borrower_id":"{b}","version":{v},'
                f'"limit":"{limit}","available":"0","status":"active"}}}}')
        return Record("cs.limits", 0, 0, b.encode(), body.encode(), {}, 0)

    pub = Published.of([rec("a", 1, "5"), rec("a", 1, "5"), rec("a", 3, "7"), rec("a", 3, "8"),
                        rec("b", 1, "1", source="other"), Record("cs.limits", 0, 1, None, b"{", {}, 0)], "me")
    assert (len(pub.updates), pub.repeats, pub.conflicting, pub.gaps()) == (2, 1, 1, 1)
    assert pub.last()["a"]["limit"] == "7"
    assert pub.mismatches({"a": {"limit": "7", "available": "0", "status": "active"}}) == 0
    assert pub.mismatches({"b": {"limit": "1", "available": "0", "status": "active"}}) == 1
    # Another run's world on the same broker: this engine decided it too, from the middle
    # of its history (versions 1-2 published before the reader opened), and says nothing
    # of this run: counted, its versions would be 2 "lost".
    theirs = [rec("a", 1, "5"), rec("z", 3, "9"), rec("z", 4, "9")]
    assert Published.of(theirs, "me").gaps() == 2
    assert Published.of(theirs, "me", borrowers={"a"}).gaps() == 0
    assert set(Published.of(theirs, "me", borrowers={"a"}).versions()) == {"a"}


def test_all_runs_every_fault_reports_a_crash_as_a_failure_and_exits_1(monkeypatch, capsys) -> None:
    import argparse

    from load import chaos_runs
    from load.chaos_sinks import SinkResult

    async def fake(fault: str, args: argparse.Namespace) -> SinkResult:
        if fault == "broker":
            raise RuntimeError("Kafka did not come back")
        return SinkResult(fault, 1.0, 10, 5, 2, 0, 0, 0, 0.5)

    monkeypatch.setattr(chaos_runs, "run_fault", fake)
    code = chaos_runs.main(argparse.Namespace(fault="all"))
    out = capsys.readouterr().out
    assert code == 1
    assert [ln.split(":")[0] for ln in out.splitlines() if ln.startswith("chaos ")] == [
        "chaos kill", "chaos rebalance", "chaos broker", "chaos pause", "chaos churn", "chaos late", "chaos pg",
        "chaos webhook", "chaos all"]
    assert "chaos broker: did not complete: RuntimeError: Kafka did not come back -> FAIL" in out
    assert "chaos all: 7 of 8 faults passed; failed: broker -> FAIL" in out
    monkeypatch.setattr(chaos_runs, "run_fault", lambda f, a: fake("pg", a))
    assert chaos_runs.main(argparse.Namespace(fault="pg")) == 0
