"""The bad-input campaign through the real broker, a real worker and the HTTP gateway."""

from __future__ import annotations

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession

from connectors.gateway.store import create_key, revoke_key
from load.fuzz import broker
from load.fuzz.campaign import failures_report
from schemas import codec
from schemas.examples import example_events
from tests.gateway.test_http import serve

pytestmark = pytest.mark.integration


def test_fuzzed_records_are_accepted_or_dead_lettered_and_the_worker_stays_healthy(settings) -> None:
    result = broker.engine_campaign(settings.kafka_bootstrap, 80, 20261122, settings.state_dir / "test-workers")
    t = result.tally
    print(f"engine fuzz: {t.tried} records tried, {t.accepted} accepted, {sum(t.refused.values())} "
          f"dead-lettered {dict(t.refused)}, {t.failed} failures")
    assert t.failed == 0, failures_report([t]) + "\n" + "\n".join(result.notes)
    assert t.tried + result.not_sent == 80 and t.tried == t.accepted + sum(t.refused.values())
    assert result.worker_alive and result.healthz == 200
    assert {"invalid_event", "malformed_json"} <= set(t.refused)  # the sample reached the decoder's refusals


def test_fuzzed_bodies_get_clear_gateway_answers(settings) -> None:
    t = broker.gateway_campaign(settings.pg_url, settings.kafka_bootstrap, 60, 20261122)
    print(f"gateway fuzz: {t.examples} bodies, {t.tried} items tried, {t.failed} failures")
    assert t.failed == 0, failures_report([t])
    assert t.examples == 60 and t.tried >= 60


async def test_gateway_refuses_a_time_past_9999_in_utc_instead_of_failing(pg_url: str, bootstrap: str) -> None:
    # Regression: the clock-skew rule overflowed and the gateway answered 500.
    event = orjson.loads(codec.encode(next(e for e in example_events() if e.type == "telemetry.equipment")))
    event["occurred_at"] = event["recorded_at"] = "9999-12-31T23:59:59-12:00"
    conn = await asyncpg.connect(pg_url)
    key_id, key = await create_key(conn, "sany-heavy", ["*"], ["*"], ["*"])
    runner, url = await serve(pg_url, bootstrap)
    try:
        async with ClientSession() as http, http.post(f"{url}/v1/events", data=orjson.dumps(event), headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as r:
            assert r.status == 422, await r.text()
            (item,) = (await r.json())["results"]
    finally:
        await runner.cleanup()
        await revoke_key(conn, key_id)
        await conn.close()
    assert item["reason"] == "invalid_event" and "outside years 1-9999" in item["errors"][0]["rule"]
