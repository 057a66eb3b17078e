"""Lender REST and SSE through Kafka -> ledger -> PostgreSQL -> HTTP on loopback:
API-key auth, per-lender isolation, history with reasons, alerts, and stream resume."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from connectors.kafka_io import produce_events
from connectors.ledger.service import TOPICS, Ledger
from connectors.lenders import repo
from connectors.lenders.api import make_app
from connectors.pg.migrate import migrate
from tests.lenders.ld_support import alert, eventually, group_at_end, limit_update, read_sse

pytestmark = pytest.mark.integration


class Env:
    """A ledger and the lender API, both running for one test; lenders X and Y."""

    def __init__(self, bootstrap: str, pg_url: str, uid: str) -> None:
        self.bootstrap, self.pg_url, self.uid = bootstrap, pg_url, uid
        self.x, self.y = f"lx-{uid}", f"ly-{uid}"
        self.bx, self.by = f"bx-{uid}", f"by-{uid}"
        self.stop = asyncio.Event()

    async def __aenter__(self) -> Env:
        await migrate(self.pg_url)
        self.pool = await asyncpg.create_pool(self.pg_url, min_size=1, max_size=6)
        self.key_x, _ = await repo.add_lender(self.pool, self.x, "Bank X")
        self.key_y, _ = await repo.add_lender(self.pool, self.y, "Bank Y")
        await repo.subscribe(self.pool, self.x, "all")
        await repo.subscribe(self.pool, self.y, "program", program_id=f"pb-{self.uid}")
        group = f"test-api-ledger-{self.uid}"
        await group_at_end(self.bootstrap, group, list(TOPICS))
        self.ledger = Ledger(self.bootstrap, self.pg_url, group=group)
        self.task = asyncio.create_task(self.ledger.run(self.stop))
        self.runner = web.AppRunner(make_app(self.pool, poll_s=0.2))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]  # noqa: SLF001
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await self.task
        await self.http.close()
        await self.runner.cleanup()
        await self.pool.close()

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def get(self, path: str, key: str | None) -> tuple[int, object]:
        async with self.http.get(self.base + path, headers=self.auth(key) if key else {}) as r:
            return r.status, await r.json()

    async def in_ledger(self, borrower: str, version: int) -> None:
        async def there() -> bool:
            return bool(await self.pool.fetchval(
                "SELECT 1 FROM decision_log WHERE borrower_id = $1 AND version = $2", borrower, version))
        await eventually(there)


async def test_ld_rest_each_lender_reads_only_its_borrowers(bootstrap: str, pg_url: str,
                                                            producer, uid: str) -> None:
    async with Env(bootstrap, pg_url, uid) as env:
        await produce_events(producer, [limit_update(env.bx, v, f"pa-{uid}", [env.x], f"{v}000.00")
                                        for v in (1, 2, 3)])
        await produce_events(producer, [limit_update(env.by, 1, f"pb-{uid}", [env.y]),
                                        alert(env.bx, f"al-{uid}")])
        await env.in_ledger(env.bx, 3)
        await env.in_ledger(env.by, 1)
        await eventually(lambda: env.pool.fetchval("SELECT 1 FROM alerts WHERE alert_id = $1", f"al-{uid}"))

        status, body = await env.get(f"/v1/borrowers/{env.bx}/limit", env.key_x)
        assert status == 200 and body["payload"]["version"] == 3  # type: ignore[index]
        assert body["payload"]["limit"] == {"amount": "3000.00", "currency": "CNY"}  # type: ignore[index]
        status, body = await env.get(f"/v1/borrowers/{env.bx}/history?limit=2", env.key_x)
        assert status == 200
        assert [i["payload"]["version"] for i in body["items"]] == [3, 2]  # type: ignore[index]
        assert body["items"][0]["payload"]["reasons"][0]["code"] == "ORDER_CONFIRMED"  # type: ignore[index]
        assert body["next_before_version"] == 2  # type: ignore[index]
        status, body = await env.get(f"/v1/borrowers/{env.bx}/history?before_version=2", env.key_x)
        assert [i["payload"]["version"] for i in body["items"]] == [1]  # type: ignore[index]
        status, body = await env.get(f"/v1/borrowers/{env.bx}/alerts", env.key_x)
        assert status == 200 and [a["payload"]["alert_id"] for a in body["items"]] == [f"al-{uid}"]  # type: ignore[index]

        # Y funds by only: bx looks exactly like a borrower that does not exist.
        for path in ("limit", "history", "alerts"):
            assert await env.get(f"/v1/borrowers/{env.bx}/{path}", env.key_y) == (
                404, {"error": "not_found", "reason": f"no borrower {env.bx!r} in your portfolio"})
            assert (await env.get(f"/v1/borrowers/nobody-{uid}/{path}", env.key_y))[0] == 404
        assert (await env.get(f"/v1/borrowers/{env.by}/limit", env.key_y))[0] == 200
        assert (await env.get(f"/v1/borrowers/{env.by}/limit", env.key_x))[0] == 404

        assert (await env.get(f"/v1/borrowers/{env.bx}/limit", None))[0] == 401
        assert (await env.get(f"/v1/borrowers/{env.bx}/limit", "csk_wrong"))[0] == 401
        status, body = await env.get(f"/v1/borrowers/{env.bx}/history?limit=0", env.key_x)
        assert status == 400 and body["error"] == "bad_parameter"  # type: ignore[index]


async def test_ld_sse_resume_replays_exactly_the_missed_versions_then_follows_live(
        bootstrap: str, pg_url: str, producer, uid: str) -> None:
    async with Env(bootstrap, pg_url, uid) as env:
        url = env.base + "/v1/stream/limits"

        def update(v: int, borrower: str | None = None) -> object:
            b = borrower or env.bx
            return limit_update(b, v, f"pa-{uid}" if b == env.bx else f"pb-{uid}",
                                [env.x] if b == env.bx else [env.y])

        async with env.http.get(url, headers=env.auth(env.key_x)) as live:
            assert live.status == 200 and live.headers["Content-Type"].startswith("text/event-stream")
            await produce_events(producer, [update(1), update(1, env.by), update(2)])
            first = await read_sse(live, 2)
        assert [(e["event"], _version(e)) for e in first] == [("limit.updated", 1), ("limit.updated", 2)]
        last_seen = first[-1]["id"]

        # Disconnected: v3..v5 happen (and Y's borrower moves too).
        await produce_events(producer, [update(3), update(2, env.by), update(4), update(5)])
        await env.in_ledger(env.bx, 5)
        await env.in_ledger(env.by, 2)

        async with env.http.get(url, headers={**env.auth(env.key_x), "Last-Event-ID": last_seen}) as again:
            missed = await read_sse(again, 3)
            assert [_version(e) for e in missed] == [3, 4, 5]
            assert all(int(e["id"]) > int(last_seen) for e in missed)
            await produce_events(producer, [update(6)])
            (live6,) = await read_sse(again, 1)
            assert _version(live6) == 6 and live6["data"].count(env.bx) >= 1
            with pytest.raises(TimeoutError):  # nothing else: not Y's borrower, no duplicates
                await read_sse(again, 1, timeout=1.5)

        # ?since= works like Last-Event-ID; Y's stream carries only Y's borrower.
        async with env.http.get(url + f"?since={last_seen}", headers=env.auth(env.key_x)) as since:
            assert [_version(e) for e in await read_sse(since, 4)] == [3, 4, 5, 6]
        async with env.http.get(url + "?since=0", headers=env.auth(env.key_y)) as ys:
            got = await read_sse(ys, 2)
            assert [(_borrower(e), _version(e)) for e in got] == [(env.by, 1), (env.by, 2)]
            with pytest.raises(TimeoutError):
                await read_sse(ys, 1, timeout=1.0)

        async with env.http.get(url + "?since=b1:3", headers=env.auth(env.key_x)) as bad:
            assert bad.status == 400 and (await bad.json())["error"] == "bad_cursor"
        async with env.http.get(url) as anon:
            assert anon.status == 401


def _version(event: dict[str, str]) -> int:
    import orjson

    return int(orjson.loads(event["data"])["payload"]["version"])


def _borrower(event: dict[str, str]) -> str:
    import orjson

    return str(orjson.loads(event["data"])["payload"]["borrower_id"])


async def test_ld_sse_carries_only_the_callers_borrowers_whatever_it_subscribes_to(
        bootstrap: str, pg_url: str, producer, uid: str) -> None:
    """X subscribes to everything, to Y's program and to Y's borrower by name: its stream
    still carries only updates that name X among the funders, per update (a borrower
    refinanced away from X stops reaching X at that version), and REST agrees."""
    async with Env(bootstrap, pg_url, uid) as env:
        await repo.subscribe(env.pool, env.x, "program", program_id=f"pb-{uid}")
        await repo.subscribe(env.pool, env.x, "borrowers", borrower_ids=[env.by])
        shared, moved = f"bs-{uid}", f"bm-{uid}"
        await produce_events(producer, [
            limit_update(env.bx, 1, f"pa-{uid}", [env.x]),
            limit_update(env.by, 1, f"pb-{uid}", [env.y]),
            limit_update(shared, 1, f"pb-{uid}", [env.x, env.y]),
            limit_update(moved, 1, f"pb-{uid}", [env.x]),
            limit_update(moved, 2, f"pb-{uid}", [env.y]),    # refinanced: Y alone from v2
            limit_update(env.by, 2, f"pb-{uid}", [env.y])])
        await env.in_ledger(env.by, 2)
        await env.in_ledger(moved, 2)
        await env.in_ledger(shared, 1)

        async def stream(key: str) -> list[tuple[str, int]]:
            async with env.http.get(env.base + "/v1/stream/limits?since=0", headers=env.auth(key)) as r:
                got = []
                with contextlib.suppress(TimeoutError):  # everything visible, then nothing more
                    while True:
                        (event,) = await read_sse(r, 1, timeout=1.5)
                        got.append((_borrower(event), _version(event)))
                return got

        assert sorted(await stream(env.key_x)) == sorted([(env.bx, 1), (moved, 1), (shared, 1)])
        assert sorted(await stream(env.key_y)) == sorted([(env.by, 1), (env.by, 2), (moved, 2), (shared, 1)])

        assert (await env.get(f"/v1/borrowers/{moved}/limit", env.key_x))[0] == 404  # now Y's only
        status, body = await env.get(f"/v1/borrowers/{moved}/history", env.key_x)
        assert status == 200 and [i["payload"]["version"] for i in body["items"]] == [1]  # type: ignore[index]
        assert (await env.get(f"/v1/borrowers/{moved}/alerts", env.key_x))[0] == 404
        assert (await env.get(f"/v1/borrowers/{env.by}/history", env.key_x))[0] == 404


async def test_ld_rotated_key_and_disabled_lender_are_refused_at_once_even_mid_stream(
        bootstrap: str, pg_url: str, producer, uid: str) -> None:
    async with Env(bootstrap, pg_url, uid) as env:
        await produce_events(producer, [limit_update(env.bx, 1, f"pa-{uid}", [env.x])])
        await env.in_ledger(env.bx, 1)
        path, old = f"/v1/borrowers/{env.bx}/limit", env.key_x
        assert (await env.get(path, old))[0] == 200
        async with env.http.get(env.base + "/v1/stream/limits?since=0", headers=env.auth(old)) as live:
            assert [_version(e) for e in await read_sse(live, 1)] == [1]
            new = await repo.rotate_key(env.pool, env.x)
            row = dict(await env.pool.fetchrow("SELECT * FROM lenders WHERE lender_id = $1", env.x))
            assert row["api_key_hash"] == hashlib.sha256(new.encode()).digest()  # only its digest is kept
            assert new not in repr(row) and new.removeprefix("csk_") not in repr(row)
            assert (await env.get(path, old))[0] == 401        # the next request
            assert (await env.get(path, new))[0] == 200
            # The open stream was authorized by the old key: it ends within a poll.
            assert await asyncio.wait_for(live.content.read(), 5) == b": unauthorized\n\n"
        async with env.http.get(env.base + "/v1/stream/limits", headers=env.auth(new)) as live:
            assert live.status == 200
            await repo.set_active(env.pool, env.x, False)
            assert (await env.get(path, new))[0] == 401
            assert (await asyncio.wait_for(live.content.read(), 5)).endswith(b": unauthorized\n\n")
        await repo.set_active(env.pool, env.x, True)
        assert (await env.get(path, new))[0] == 200
        with pytest.raises(LookupError):
            await repo.rotate_key(env.pool, f"nobody-{uid}")
