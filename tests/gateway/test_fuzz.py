"""Fuzzing the gateway: whatever the body, the answer is a JSON 2xx/4xx, never a 5xx or a crash."""

from __future__ import annotations

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.gateway.store import create_key
from connectors.pg.migrate import migrate
from schemas import codec
from schemas.examples import example_events
from tests.gateway.test_http import serve

pytestmark = pytest.mark.integration
BASE = orjson.loads(codec.encode(next(e for e in example_events() if e.type == "telemetry.equipment")))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)


@st.composite
def mutated_events(draw) -> bytes:
    event = orjson.loads(orjson.dumps(BASE))
    kind = draw(st.sampled_from(["field", "payload", "raw", "truncate", "unicode"]))
    if kind == "field":
        event[draw(st.sampled_from(sorted(event)))] = draw(json_values)
    elif kind == "payload":
        event["payload"][draw(st.sampled_from(sorted(event["payload"])))] = draw(json_values)
    elif kind == "raw":
        return draw(st.binary(max_size=300))
    elif kind == "unicode":
        event["event_id"] = draw(st.text(min_size=1, max_size=80))
    data = orjson.dumps(event)
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    return data


@pytest.fixture(scope="module")
async def gateway_and_key(pg_url: str, bootstrap: str):
    await migrate(pg_url)
    conn = await asyncpg.connect(pg_url)
    _, key = await create_key(conn, "sany-heavy", ["telemetry.equipment"], [], [])
    await conn.close()
    runner, url = await serve(pg_url, bootstrap)
    yield url, key
    await runner.cleanup()


TRIED = {"n": 0}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(bodies=st.lists(mutated_events(), min_size=1, max_size=5))
async def test_fuzzed_bodies_get_clear_answers(gateway_and_key, bodies: list[bytes]) -> None:
    url, key = gateway_and_key
    TRIED["n"] += len(bodies)
    body = b"\n".join(b.replace(b"\n", b" ") for b in bodies)
    async with ClientSession() as http, http.post(f"{url}/v1/events", data=body, headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}) as r:
        assert r.status < 500, await r.text()
        answer = await r.json()
    if r.status in (200, 207, 403, 422):
        assert len(answer["results"]) == len([b for b in body.split(b"\n") if b.strip()])
        for item in answer["results"]:
            assert item["status"] in ("accepted", "duplicate", "rejected", "forbidden")
            if item["status"] not in ("accepted", "duplicate"):
                assert item.get("reason")
    else:
        assert r.status in (400, 413) and answer["reason"]


def test_the_fuzz_campaign_ran() -> None:
    print(f"gateway fuzz: {TRIED['n']} inputs tried")
    assert TRIED["n"] >= 300
