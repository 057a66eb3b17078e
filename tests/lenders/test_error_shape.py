"""One error shape across the ingest gateway and the lender API (issue 14, item 6):
``{"error", "reason"}``; a refused batch item carries its event_id; 207 only when the
request accepted something new and refused something (docs/gateway.md)."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from connectors.gateway.app import NDJSON, build_app
from connectors.gateway.store import create_key
from connectors.pg.migrate import migrate
from schemas import codec
from schemas.examples import example_events
from tests.lenders.ld_support import start_site
from tests.lenders.test_api import Env

pytestmark = pytest.mark.integration


def _events(uid: str, n: int) -> list[dict]:
    base = next(e for e in example_events() if e.type == "telemetry.equipment")
    return [orjson.loads(codec.encode(base.model_copy(update={"event_id": f"shape-{uid}-{i}"})))
            for i in range(n)]


async def test_ld_gateway_refused_items_carry_event_ids_and_207_means_something_new(
        bootstrap: str, pg_url: str, uid: str) -> None:
    import asyncpg

    await migrate(pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        tenant = next(e for e in example_events() if e.type == "telemetry.equipment").tenant
        _, key = await create_key(conn, tenant, ["telemetry.equipment"], [], [])
    finally:
        await conn.close()
    runner, port = await start_site(build_app(pg_url, bootstrap))
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}", "Content-Type": NDJSON}
    first, second, third = _events(uid, 3)
    invalid = dict(second, occurred_at="2026-03-02T08:00:00")           # no timezone
    foreign = dict(third, tenant="someone-else")
    try:
        async with aiohttp.ClientSession() as http:
            async def post(*items: dict | bytes) -> tuple[int, dict]:
                body = b"\n".join(i if isinstance(i, bytes) else orjson.dumps(i) for i in items)
                async with http.post(f"{url}/v1/events", data=body, headers=headers) as r:
                    return r.status, await r.json()

            status, body = await post(first, invalid, b"{not json")
            assert status == 207
            assert [(r["event_id"], r["status"]) for r in body["results"]] == [
                (first["event_id"], "accepted"), (second["event_id"], "rejected"), (None, "rejected")]
            # Nothing new accepted: the duplicate does not make a refusal a partial success.
            assert (await post(first, foreign))[0] == 403        # was 207
            status, body = await post(first, invalid)
            assert status == 422 and body["duplicates"] == 1 and body["refused"] == 1
            assert (await post(first))[0] == 200                 # duplicates alone: all on the log
            for method, path, code in (("GET", "/nowhere", 404), ("GET", "/v1/events", 405)):
                async with http.request(method, url + path) as r:
                    assert r.status == code and set(await r.json()) == {"error", "reason"}
            async with http.post(f"{url}/v1/events", data=b"{}") as r:
                assert r.status == 401 and set(await r.json()) == {"error", "reason"}
    finally:
        await runner.cleanup()


async def test_ld_lender_api_errors_have_the_gateway_shape(bootstrap: str, pg_url: str, uid: str) -> None:
    async with Env(bootstrap, pg_url, uid) as env:
        for path, key in (("/v1/borrowers/x/limit", None), ("/v1/borrowers/x/limit", env.key_x),
                          ("/v1/portfolio?sort=nope", env.key_x), ("/v1/stream/limits?since=-1", env.key_x)):
            async with env.http.get(env.base + path, headers=env.auth(key) if key else {}) as r:
                assert r.status >= 400 and set(await r.json()) == {"error", "reason"}, path


