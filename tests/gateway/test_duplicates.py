"""Concurrent duplicates (issue 11, item 6): the duplicate check and the produce are one
step per (tenant, event id). Real gateway on loopback, real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession

from connectors.gateway.app import NDJSON, Limits
from connectors.gateway.store import create_key
from connectors.kafka_io import TopicReader
from connectors.pg.migrate import migrate
from tests.gateway.test_http import events_for, serve

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(pg_url: str, bootstrap: str):
    """Room for ten requests of one tenant at once (the default share is 8)."""
    await migrate(pg_url)
    runner, url = await serve(pg_url, bootstrap, Limits(max_in_flight_per_tenant=16))
    yield url
    await runner.cleanup()


async def test_parallel_copies_of_a_request_are_produced_once(gateway: str, pg_url: str,
                                                              bootstrap: str, uid: str) -> None:
    """Ten identical requests at once: one is accepted, nine are duplicates, one copy on
    Kafka (before: 4 accepted, 4 copies produced). The same id twice in one body goes once.
    Another tenant's event with the same id is its own event, accepted too."""
    conn = await asyncpg.connect(pg_url)
    try:
        _, key = await create_key(conn, "sany-heavy", ["*"], ["*"], ["*"])
        _, other = await create_key(conn, f"other-{uid}", ["*"], ["*"], ["*"])
    finally:
        await conn.close()
    item = events_for(uid, "telemetry.equipment")[0]
    body = orjson.dumps(item)

    async def post(http: ClientSession, key: str, data: bytes) -> dict:
        async with http.post(f"{gateway}/v1/events", data=data, headers={
                "Authorization": f"Bearer {key}", "Content-Type": NDJSON}) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async with TopicReader(bootstrap, "cs.telemetry") as reader, ClientSession() as http:
        answers = await asyncio.gather(*(post(http, key, body) for _ in range(10)))
        twice = events_for(f"twice-{uid}", "telemetry.equipment")[0]
        in_one = await post(http, key, b"\n".join([orjson.dumps(twice)] * 3))
        theirs = await post(http, other, orjson.dumps(dict(item, tenant=f"other-{uid}")))
        mine = [x for x in await reader.read(lambda rs: False, timeout=3.0) if uid.encode() in x.value]
    statuses = sorted(a["results"][0]["status"] for a in answers)
    assert statuses == ["accepted"] + ["duplicate"] * 9
    assert [r["status"] for r in in_one["results"]] == ["accepted", "duplicate", "duplicate"]
    assert theirs["accepted"] == 1
    copies = [orjson.loads(x.value) for x in mine]
    assert sorted((c["tenant"], c["event_id"]) for c in copies) == sorted([
        ("sany-heavy", item["event_id"]), ("sany-heavy", twice["event_id"]), (f"other-{uid}", item["event_id"])])
