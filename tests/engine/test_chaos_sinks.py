"""Short sink faults under load through a real engine, Kafka and PostgreSQL: the ledger
with PostgreSQL stopped for 5 s, a lender's webhook endpoint down for 10 s. Nothing lost,
nothing a lender would see twice, versions in order. (The 30 s and 2-minute runs are
benchmarks: `creditstream chaos run --fault pg|webhook`, docs/reliability.md.)"""

from __future__ import annotations

import asyncio

import pytest

from creditstream.stack.postgres import Postgres
from load import chaos_pg, chaos_webhook
from schemas.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def suite_postgres(settings: Settings):
    """The PostgreSQL of the stack this test run uses (its CREDITSTREAM_STATE_DIR), which
    the pg fault stops for real. Tests run one at a time, so nothing else is mid-query; the
    fixture makes sure it answers before, and again after the module whatever happened,
    so the tests that follow (and their pools, which reconnect) never notice."""
    pg = Postgres(settings)
    await pg.wait_ready(60)
    yield pg
    if not pg.external and pg.pid() is None:
        await asyncio.to_thread(pg.start)
    await pg.wait_ready(90)


@pytest.mark.stack_cycle
async def test_ledger_loses_and_duplicates_nothing_across_a_postgres_outage(suite_postgres: Postgres) -> None:
    res = await chaos_pg.run(events=3000, machines=120, rate=1000, seed=3, outage_s=5)
    assert res.notes["published_meanwhile"] > 0 and res.notes["ledger_retries"] > 0, res.line()
    assert (res.lost, res.duplicates, res.order_violations) == (0, 0, 0), res.line()
    assert res.notes["missing_in_decision_log"] == res.notes["current_limits_off"] == 0
    assert not res.failures, res.line()
    assert suite_postgres.pid() is not None, "PostgreSQL was not started again"


async def test_webhooks_arrive_complete_and_in_order_after_the_endpoint_returns(suite_postgres: Postgres) -> None:
    res = await chaos_webhook.run(events=3000, machines=120, rate=1000, seed=3, outage_s=10)
    assert res.updates_out > 0 and res.notes["backlog"] > 0, res.line()
    assert (res.lost, res.duplicates, res.order_violations) == (0, 0, 0), res.line()
    assert res.notes["dead_letters"] == 0 and not res.failures, res.line()
    assert res.recover_s < 60, res.line()
