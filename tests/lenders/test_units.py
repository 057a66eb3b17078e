"""Pure parts of the ledger and lender delivery: batch planning, signatures, access rules,
retry timing, stream cursors and committable offsets."""

from __future__ import annotations

import base64
import random

import pytest

from connectors.ledger.batch import RawRecord, plan
from connectors.lenders.access import (
    CursorError,
    RetryPolicy,
    Subscription,
    entitled,
    parse_cursor,
    targets,
)
from connectors.lenders.offsets import OffsetTracker
from connectors.lenders.verify import SignatureError, sign_header, verify_signature
from schemas.codec import encode
from tests.lenders.ld_support import alert, limit_update


def rec(value: bytes, offset: int, topic: str = "cs.limits", partition: int = 0) -> RawRecord:
    return RawRecord(topic, partition, offset, b"k", value)


def test_plan_keeps_every_decision_and_only_the_newest_current() -> None:
    records = [rec(encode(limit_update("b1", v, "p1", ["L"])), i) for i, v in enumerate([2, 3, 1])]
    records.append(rec(encode(limit_update("b2", 7, "p1", ["L"])), 0, partition=1))
    records.append(rec(encode(alert("b1", "al-1")), 5, topic="cs.alerts"))
    batch = plan(records)
    assert sorted((r[0], r[1]) for r in batch.decisions) == [("b1", 1), ("b1", 2), ("b1", 3), ("b2", 7)]
    assert sorted((r[0], r[1]) for r in batch.current) == [("b1", 3), ("b2", 7)]
    assert [r[0] for r in batch.alerts] == ["al-1"]
    assert batch.offsets == {("cs.limits", 0): 3, ("cs.limits", 1): 1, ("cs.alerts", 0): 6}
    assert not batch.dead_letters


def test_plan_dead_letters_undecodable_and_misplaced_records_with_their_bytes() -> None:
    garbage = b'{"type": "limit.updated", "payload": '
    wrong = encode(alert("b1", "al-2"))  # an alert on the limits topic
    batch = plan([rec(garbage, 10), rec(wrong, 11), rec(encode(limit_update("b1", 1, "p", ["L"])), 12)])
    assert [d.payload.reason for d in batch.dead_letters] == ["malformed_json", "wrong_topic"]
    first = batch.dead_letters[0].payload
    assert base64.b64decode(first.value_b64) == garbage
    assert (first.topic, first.partition, first.offset, first.stage) == ("cs.limits", 0, 10, "ledger")
    assert batch.offsets == {("cs.limits", 0): 13}  # bad records are skipped, not retried
    assert len(batch.decisions) == 1 and len(batch.valid) == 1
    assert [b.decisions[0][1] for _, b in batch.singles()] == [1]


def test_plan_refuses_invalid_limit_update_field_by_field() -> None:
    bad = encode(limit_update("b1", 1, "p", ["L"])).replace(b'"version":1', b'"version":0')
    (dl,) = plan([rec(bad, 0)]).dead_letters
    assert dl.payload.reason == "invalid_event" and "payload.version" in dl.payload.error


def test_signature_round_trip_and_refusals() -> None:
    body = b'{"borrower_id":"b1","version":3}'
    header = sign_header("s3cret", body, now=1_700_000_000)
    assert verify_signature("s3cret", header, body, now=1_700_000_100) == 1_700_000_000
    with pytest.raises(SignatureError, match="mismatch"):
        verify_signature("s3cret", header, body.replace(b"3", b"4"), now=1_700_000_000)
    with pytest.raises(SignatureError, match="mismatch"):
        verify_signature("other", header, body, now=1_700_000_000)
    with pytest.raises(SignatureError, match="expired"):
        verify_signature("s3cret", header, body, now=1_700_000_000 + 301)
    with pytest.raises(SignatureError, match="expired"):  # from the future, too
        verify_signature("s3cret", header, body, now=1_700_000_000 - 301)
    for broken in (None, "", "t=abc,v1=00", "v1=00", "t=1", "garbage"):
        with pytest.raises(SignatureError, match="malformed"):
            verify_signature("s3cret", broken, body, now=1_700_000_000)


def test_signature_accepts_any_of_several_v1_during_secret_rotation() -> None:
    body = "{}"
    good = sign_header("new", body, now=100).split(",")[1]
    header = f"t=100,v1={'0' * 64},{good}"
    assert verify_signature("new", header, body, now=100) == 100


def test_only_funders_are_targets_and_subscriptions_only_narrow() -> None:
    payload = limit_update("b1", 1, "prog-a", ["X", "Z"]).model_dump(mode="json")["payload"]
    subs = [Subscription("X", "program", program_id="prog-a"),
            Subscription("Y", "all"),                                  # Y does not fund b1
            Subscription("Y", "borrowers", borrower_ids=frozenset({"b1"})),
            Subscription("Z", "borrowers", borrower_ids=frozenset({"b2"}))]
    assert targets(payload, subs) == ["X"]
    assert entitled(payload, "Z") and not entitled(payload, "Y")
    assert targets(payload, [Subscription("Z", "all"), Subscription("X", "program", "prog-b")]) == ["Z"]


def test_retry_policy_is_full_jitter_under_a_capped_exponential() -> None:
    policy = RetryPolicy(max_attempts=8, base_s=1.0, cap_s=30.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (7, 30.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spans the window


def test_stream_cursor() -> None:
    assert parse_cursor(None) is None and parse_cursor("") is None
    assert parse_cursor("0") == 0 and parse_cursor("42") == 42
    for bad in ("b1:3", "-1", "x"):
        with pytest.raises(CursorError):
            parse_cursor(bad)


def test_offset_tracker_commits_up_to_the_lowest_unfinished_record() -> None:
    t = OffsetTracker()
    tp = ("cs.limits", 0)
    t.add(tp, 5, 2)
    t.add(tp, 6, 0)
    t.add(tp, 7, 1)
    assert t.committable() == {tp: 5} and t.pending == 3
    t.done(tp, 7)
    assert t.committable() == {tp: 5}
    t.done(tp, 5)
    assert t.committable() == {tp: 5}
    t.done(tp, 5)
    assert t.committable() == {tp: 8} and t.pending == 0


def test_openapi_document_lists_every_route_of_the_api() -> None:
    from pathlib import Path

    from connectors.lenders.api import make_app

    doc = (Path(__file__).resolve().parents[2] / "docs" / "openapi-lender.yaml").read_text()
    routes = {r.resource.canonical for r in make_app(None).router.routes()}  # type: ignore[arg-type]
    assert routes == {"/healthz", "/v1/borrowers/{borrower_id}/limit", "/v1/stream/limits",
                      "/v1/borrowers/{borrower_id}/history", "/v1/borrowers/{borrower_id}/alerts",
                      "/v1/me", "/v1/portfolio", "/v1/operators", "/console/", "/console/{asset}",
                      "/v1/risk-pools/{pool_id}", "/ops/v1/shadows", "/ops/v1/shadows/{shadow}/divergences",
                      "/ops/v1/shadows/{shadow}/borrowers/{borrower_id}"}
    for path in routes:
        assert f"\n  {path}:\n" in doc, f"{path} missing from docs/openapi-lender.yaml"
