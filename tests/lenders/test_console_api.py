"""The endpoints the console uses, through Kafka -> ledger -> PostgreSQL -> HTTP: the
portfolio (filter, sort, totals, isolation), the caller's profile, the stream's
portfolio scope, the operators figures, and the console's static files and headers."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from connectors.kafka_io import produce_events
from connectors.lenders import repo
from connectors.lenders.api import make_app
from tests.lenders.ld_support import limit_update, read_sse
from tests.lenders.test_api import Env

pytestmark = pytest.mark.integration


async def test_ld_portfolio_lists_filters_sorts_and_totals_only_the_callers_borrowers(
        bootstrap: str, pg_url: str, producer, uid: str) -> None:
    async with Env(bootstrap, pg_url, uid) as env:
        pa, pb = f"pa-{uid}", f"pb-{uid}"
        shared, other = f"bs-{uid}", f"bo-{uid}"
        await produce_events(producer, [
            limit_update(env.bx, 1, pa, [env.x], "1000.00"),
            limit_update(env.bx, 2, pa, [env.x], "3000.50"),
            limit_update(shared, 1, pb, [env.x, env.y], "8000.00"),    # X's share 0.5
            limit_update(env.by, 1, pb, [env.y], "500.00"),
            limit_update(other, 1, pa, [env.x], "700.00"),
            limit_update(other, 2, pa, [env.y], "700.00")])            # refinanced away from X
        for b, v in ((env.bx, 2), (shared, 1), (env.by, 1), (other, 2)):
            await env.in_ledger(b, v)

        status, body = await env.get("/v1/portfolio", env.key_x)
        assert status == 200
        assert [i["borrower_id"] for i in body["items"]] == sorted([env.bx, shared])
        row = {i["borrower_id"]: i for i in body["items"]}
        assert row[env.bx]["version"] == 2 and row[env.bx]["limit"]["amount"] == "3000.50"
        assert row[shared]["share"] == "0.5000" and row[shared]["lender_limit"]["amount"] == "8000.00"
        assert row[env.bx]["last_change"]["code"] == "ORDER_CONFIRMED"
        assert body["totals"] == [{"currency": "CNY", "borrowers": 2, "limit": "11000.50",
                                   "available": "11000.50", "lender_limit": "11000.50"}]
        assert body["programs"] == sorted([pa, pb]) and body["matching"] == 2
        assert isinstance(body["cursor"], int)

        status, body = await env.get(f"/v1/portfolio?program={pb}", env.key_x)
        assert [i["borrower_id"] for i in body["items"]] == [shared]
        status, body = await env.get("/v1/portfolio?sort=limit&order=desc", env.key_x)
        assert [i["borrower_id"] for i in body["items"]] == [shared, env.bx]
        status, body = await env.get(f"/v1/portfolio?q={env.bx[:3].upper()}", env.key_x)
        assert [i["borrower_id"] for i in body["items"]] == [env.bx]       # case-insensitive
        status, body = await env.get("/v1/portfolio?q=%25", env.key_x)     # '%' is literal
        assert body["items"] == [] and body["totals"] == []
        status, body = await env.get("/v1/portfolio?status=frozen", env.key_x)
        assert body["items"] == []

        status, body = await env.get("/v1/portfolio", env.key_y)
        assert sorted(i["borrower_id"] for i in body["items"]) == sorted([env.by, shared, other])
        for bad in ("sort=password", "status=gone", "order=up", "limit=0", "program=a%00b"):
            status, body = await env.get(f"/v1/portfolio?{bad}", env.key_x)
            assert status == 400 and body["error"] == "bad_parameter", bad
        assert (await env.get("/v1/portfolio", None))[0] == 401


async def test_ld_me_and_operators_figures(bootstrap: str, pg_url: str, uid: str) -> None:
    async with Env(bootstrap, pg_url, uid) as env:
        status, body = await env.get("/v1/me", env.key_x)
        assert status == 200 and body == {"lender_id": env.x, "name": "Bank X",
                                          "subscriptions": [{"scope": "all"}]}
        status, body = await env.get("/v1/operators", env.key_x)
        # No worker metrics configured and no Kafka given to this app: said, not a 500.
        assert status == 200
        assert body["engine"]["up"] is False and body["consumer_lag"]["groups"] == []
        assert body["webhooks"]["attempts"] == {} and body["webhooks"]["dead_letters"] == 0


async def test_ld_operators_reads_engine_metrics_and_lag(bootstrap: str, pg_url: str, uid: str) -> None:
    """A stand-in worker's /metrics: totals, rates on the second scrape, dead letters by
    reason, and a group's lag from Kafka."""
    from tests.lenders.ld_support import start_site

    counter = {"n": 10}

    async def metrics(request: web.Request) -> web.Response:
        counter["n"] += 50
        return web.Response(text=(
            "# TYPE creditstream_events_in_total counter\n"
            f'creditstream_events_in_total{{topic="cs.invoices"}} {counter["n"]}\n'
            "# TYPE creditstream_dead_letters_total counter\n"
            'creditstream_dead_letters_total{reason="unknown_borrower"} 3\n'))

    fake = web.Application()
    fake.router.add_get("/metrics", metrics)
    runner, port = await start_site(fake)
    async with Env(bootstrap, pg_url, uid) as env:
        app = make_app(env.pool, engine_metrics=[f"http://127.0.0.1:{port}/metrics"],
                       bootstrap=bootstrap, lag_groups=(f"test-api-ledger-{uid}",))
        ops, ops_port = await start_site(app)
        try:
            async with aiohttp.ClientSession() as http:
                url, auth = f"http://127.0.0.1:{ops_port}/v1/operators", env.auth(env.key_x)
                async with http.get(url, headers=auth) as r:
                    first = await r.json()
                async with http.get(url, headers=auth) as r:
                    second = await r.json()
        finally:
            await ops.cleanup()
            await runner.cleanup()
    assert first["engine"]["up"] and first["engine"]["per_second"]["events_in"] is None
    assert second["engine"]["totals"]["events_in"] == 110
    assert second["engine"]["per_second"]["events_in"] > 0
    assert second["engine"]["dead_letters_by_reason"] == {"unknown_borrower": 3.0}
    assert second["engine"]["events_in_by_topic"] == {"cs.invoices": 110.0}
    assert [g["group"] for g in second["consumer_lag"]["groups"]] == [f"test-api-ledger-{uid}"]


async def test_ld_stream_portfolio_scope_follows_every_visible_borrower(
        bootstrap: str, pg_url: str, producer, uid: str) -> None:
    """Y subscribes to program pb only; with scope=portfolio its stream also carries its
    borrower in another program, and still nothing of X's."""
    async with Env(bootstrap, pg_url, uid) as env:
        elsewhere = f"be-{uid}"
        await produce_events(producer, [limit_update(elsewhere, 1, f"pz-{uid}", [env.y]),
                                        limit_update(env.bx, 1, f"pa-{uid}", [env.x]),
                                        limit_update(env.by, 1, f"pb-{uid}", [env.y])])
        await env.in_ledger(env.by, 1)
        await env.in_ledger(elsewhere, 1)
        url = env.base + "/v1/stream/limits?since=0"
        async with env.http.get(url, headers=env.auth(env.key_y)) as r:
            assert [e["data"].count(env.by) > 0 for e in await read_sse(r, 1)] == [True]
        async with env.http.get(url + "&scope=portfolio", headers=env.auth(env.key_y)) as r:
            got = [e["data"] for e in await read_sse(r, 2)]
            assert sorted(elsewhere in d for d in got) == [False, True]
            assert not any(env.bx in d for d in got)
        async with env.http.get(url + "&scope=everything", headers=env.auth(env.key_y)) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_parameter"


async def test_ld_console_is_served_with_a_strict_content_security_policy(
        bootstrap: str, pg_url: str, uid: str) -> None:
    async with Env(bootstrap, pg_url, uid) as env:
        for path, kind in (("/console/", "text/html"), ("/console/console.js", "text/javascript"),
                           ("/console/console.css", "text/css")):
            async with env.http.get(env.base + path) as r:   # no key needed: files only
                assert r.status == 200 and r.content_type == kind
                csp = r.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
                assert r.headers["Referrer-Policy"] == "no-referrer"
                body = await r.text()
                assert "http://" not in body.replace("http://www.w3.org/2000/svg", "")
                assert "https://" not in body                  # nothing from the internet
        for path in ("/console/../api.py", "/console/nope.js", "/console/__init__.py"):
            async with env.http.get(env.base + path) as r:
                assert r.status == 404, path


async def test_ld_error_shape_is_error_and_reason(bootstrap: str, pg_url: str, uid: str) -> None:
    """One error shape with the gateway: {"error", "reason"} (the API said "detail")."""
    async with Env(bootstrap, pg_url, uid) as env:
        for path, key, code in ((f"/v1/borrowers/{env.bx}/limit", None, 401),
                                (f"/v1/borrowers/{env.bx}/limit", env.key_x, 404),
                                (f"/v1/borrowers/{env.bx}/history?limit=0", env.key_x, 400),
                                ("/v1/nowhere", env.key_x, 404)):
            status, body = await env.get(path, key)
            assert status == code and set(body) == {"error", "reason"}, (path, body)
        assert (await repo.profile(env.pool, env.y))["subscriptions"] == [
            {"scope": "program", "program_id": f"pb-{uid}"}]


async def test_ld_open_streams_end_when_the_server_stops(bootstrap: str, pg_url: str, uid: str) -> None:
    """A console left open held `lenders serve`'s shutdown for aiohttp's 60 s grace
    period: its stream now ends at once, and the page resumes with Last-Event-ID."""
    import time

    from tests.lenders.ld_support import start_site

    async with Env(bootstrap, pg_url, uid) as env:
        runner, port = await start_site(make_app(env.pool, poll_s=0.2))
        async with env.http.get(f"http://127.0.0.1:{port}/v1/stream/limits?scope=portfolio",
                                headers=env.auth(env.key_x)) as r:
            assert r.status == 200
            await r.content.readline()
            t0 = time.monotonic()
            await runner.cleanup()
            assert time.monotonic() - t0 < 5


async def test_ld_api_answers_503_json_while_postgres_is_away(pg_url: str, uid: str) -> None:
    """PostgreSQL restarting under the API gave a 500 with a plain-text body (the console
    then failed to parse it): now a 503 in the error shape, with Retry-After."""
    from urllib.parse import urlsplit

    import asyncpg

    from connectors.pg.migrate import migrate
    from tests.lenders.ld_support import TcpProxy, start_site

    await migrate(pg_url)
    url = urlsplit(pg_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    pool = await asyncpg.create_pool(url._replace(netloc=f"{url.username}:{url.password}@127.0.0.1:{proxy.port}")
                                     .geturl(), min_size=0, max_size=2)
    key, _ = await repo.add_lender(pool, f"l503-{uid}", "Bank 503")
    runner, port = await start_site(make_app(pool))
    try:
        async with aiohttp.ClientSession() as http:
            auth = {"Authorization": f"Bearer {key}"}
            async with http.get(f"http://127.0.0.1:{port}/v1/portfolio", headers=auth) as r:
                assert r.status == 200
            await proxy.stop()
            for path in ("/v1/portfolio", "/v1/me", "/v1/borrowers/b1/limit"):
                async with http.get(f"http://127.0.0.1:{port}{path}", headers=auth) as r:
                    assert r.status == 503 and r.headers["Retry-After"] == "2"
                    assert await r.json() == {"error": "unavailable",
                                              "reason": "the ledger database is not reachable; retry shortly"}
    finally:
        await runner.cleanup()
        await pool.close()
