"""Promotion (issue 18, part 4): a registry event names who promoted which version; from
it on every borrower is decided under that version, each update names its version, and
the first one under it tells lenders why (POLICY_CHANGED)."""

from __future__ import annotations

from datetime import timedelta

from schemas import codec
from schemas import events as ev
from streams.domain.policy import POLICY_VERSION
from streams.replay import Replay
from tests.engine import scenarios as sc

CANDIDATE = "2027.01-1"  # shipped: streams/domain/policies/2027.01-1.toml


def promotion(at, version: str = CANDIDATE, tenant: str = "creditstream", n: int = 1) -> ev.PolicyPromoted:
    return ev.PolicyPromoted(
        event_id=f"promo-{n}", type="registry.policy_promoted", tenant=tenant, source="test",
        occurred_at=at, recorded_at=at,
        payload=ev.PolicyPromotedPayload(version=version, promoted_by="Credit committee (Li Wei)",
                                         reason="minutes 2027-01"))


def _run(events: list) -> tuple[list[dict], list[dict]]:
    r = Replay()
    limits, dead = [], []
    for e in events:
        for o in r.feed(codec.encode(e)):
            if o.topic == "cs.limits":
                limits.append(o.value["payload"])
            elif o.topic == "cs.deadletter":
                dead.append(o.value["payload"])
    return limits, dead


def test_a_promotion_changes_the_version_and_says_so_once() -> None:
    events, _ = sc.utilisation_rising("pp1")
    last_at = max(e.occurred_at for e in events)
    before, dead = _run(events)
    assert dead == [] and {u["policy_version"] for u in before} == {POLICY_VERSION}
    after, dead = _run([*events, promotion(last_at + timedelta(minutes=1))])
    assert dead == []
    new = after[len(before):]
    # One update per borrower, at the promotion, naming the new version and why.
    assert new and {u["policy_version"] for u in new} == {CANDIDATE}
    assert len({u["borrower_id"] for u in new}) == len(new)
    for u in new:
        changed = [r for r in u["reasons"] if r["code"] == "POLICY_CHANGED"]
        assert len(changed) == 1 and f"from version {POLICY_VERSION} to {CANDIDATE}" in changed[0]["text"]
        assert u["trigger_event_ids"][-1] == "promo-1"  # after inputs that moved nothing visible
    # Equipment at a loan-to-value of 0.55 instead of 0.60.
    last = {u["borrower_id"]: u for u in before}
    assert all(float(u["limit"]["amount"]) < float(last[u["borrower_id"]]["limit"]["amount"]) for u in new)


def test_borrowers_registered_after_a_promotion_start_under_it_and_repeats_change_nothing() -> None:
    events, _ = sc.receivables("pp2")
    first_at = min(e.occurred_at for e in events)
    promo = promotion(first_at - timedelta(minutes=1))
    limits, dead = _run([promo, *events, promo])
    assert dead == [] and limits
    assert {u["policy_version"] for u in limits} == {CANDIDATE}
    assert not any(r["code"] == "POLICY_CHANGED" for u in limits for r in u["reasons"])


def test_a_promotion_by_another_tenant_or_of_an_unknown_version_is_refused() -> None:
    events, _ = sc.receivables("pp3")
    last_at = max(e.occurred_at for e in events)
    before, _ = _run(events)
    limits, dead = _run([*events, promotion(last_at, tenant="bank-a", n=2),
                         promotion(last_at, version="2099.01-1", n=3)])
    assert [d["reason"] for d in dead] == ["not_policy_owner", "unknown_policy"]
    assert limits == before


def test_an_engine_pinned_to_a_version_does_not_read_promotions() -> None:
    """A shadow or a diff decides under its own version whatever is promoted, and the
    promotion's time does not move its borrowers' clocks either."""
    events, _ = sc.utilisation_rising("pp4")
    last_at = max(e.occurred_at for e in events)

    def pinned(evs: list) -> list[dict]:
        r = Replay(CANDIDATE)
        return [o.value for e in evs for o in r.feed(codec.encode(e)) if o.topic == "cs.limits"]

    alone = pinned(events)
    assert alone and {u["payload"]["policy_version"] for u in alone} == {CANDIDATE}
    assert pinned([*events, promotion(last_at + timedelta(days=30), version=POLICY_VERSION, n=4)]) == alone


def test_an_engine_run_pinned_and_then_not_is_not_left_pinned() -> None:
    from streams.processors import FacilityProcessor

    events, _ = sc.receivables("pp5")
    r = Replay(CANDIDATE)
    for e in events:
        list(r.feed(codec.encode(e)))
    store = r.stores["facilities"]
    assert store["sup-pp5"]["pinned"] == CANDIDATE
    assert "pinned" not in FacilityProcessor()._state(store, "sup-pp5")
