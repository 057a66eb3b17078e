"""Issue 11's attacks as the campaign runs them (`creditstream fuzz run --broker`): every
control holds against the real stack, and the counts add up. About 5 s."""

from __future__ import annotations

import pytest

from load.fuzz.attacks import WEBHOOK_URLS, attacks_campaign, lender_api_campaign
from load.fuzz.campaign import failures_report

pytestmark = pytest.mark.integration


def test_sec_issue_11_attacks_are_all_refused(pg_url: str, bootstrap: str) -> None:
    tally = attacks_campaign(pg_url, bootstrap)
    assert tally.failed == 0, failures_report([tally])
    assert tally.accepted == 3 + 5  # the other tenant's 3 requests; one copy per duplicate round
    assert sum(tally.refused[f"slow_body_{s}"] for s in (408, 429)) == 4
    assert tally.refused["slow_body_408"] >= 1
    assert tally.refused["parallel_duplicate"] == 5 * 9
    assert tally.refused["webhook_url_refused"] == len(WEBHOOK_URLS)
    assert tally.refused["data_key_missing_named"] == 20


def test_sec_lender_api_campaign_finds_no_5xx(pg_url: str) -> None:
    tally = lender_api_campaign(pg_url, 150, seed=11)
    assert tally.failed == 0, failures_report([tally])
    assert tally.tried == 150 and sum(tally.refused.values()) > 100
