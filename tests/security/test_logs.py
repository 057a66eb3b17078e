"""No secret in any log line: the gateway, the lender API and the webhook dispatcher run
in this process with every logger at DEBUG (aiohttp's access log included) while they
are called with valid, wrong, malformed, rotated and revoked keys and while webhooks fail
and are retried; then no captured record may contain an API key, a webhook secret or
the data key: not its message, its arguments, its formatted traceback, nor the repr of
an exception it carries (what an error tracker would keep)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from connectors.gateway.app import Limits, build_app
from connectors.gateway.store import create_key, revoke_key
from connectors.kafka_io import produce_events
from connectors.lenders import repo
from connectors.lenders.access import RetryPolicy
from connectors.lenders.api import make_app
from connectors.lenders.webhooks import TOPIC, Dispatcher
from connectors.pg import crypto
from connectors.pg.migrate import migrate
from schemas import codec
from schemas.factory import EventFactory
from tests.lenders.ld_support import (
    DEV_URLS,
    eventually,
    group_at_end,
    limit_update,
    read_sse,
    start_site,
)

pytestmark = pytest.mark.integration


async def _raw(port: int, request_line: bytes, authorization: bytes) -> bytes:
    """A request whose Authorization header holds bytes no client library would send."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_line + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " + authorization +
                 b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer.split(b"\r\n", 1)[0]


def _texts(record: logging.LogRecord, formatter: logging.Formatter) -> Iterator[str]:
    yield record.getMessage()
    yield formatter.format(record)
    yield repr(record.args)
    exc = record.exc_info[1] if record.exc_info else None
    while exc is not None:
        yield repr(exc)
        yield repr(exc.args)
        exc = exc.__cause__ or exc.__context__


async def test_no_api_key_webhook_secret_or_data_key_is_ever_logged(
        caplog: pytest.LogCaptureFixture, bootstrap: str, pg_url: str, producer, uid: str) -> None:
    caplog.set_level(logging.DEBUG)
    await migrate(pg_url)
    tenant, lender, offline = f"core-{uid}", f"ll-{uid}", f"lo-{uid}"
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=6)
    hooks: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        hooks.append(1)
        return web.Response(status=503 if len(hooks) == 1 else 204)  # one failed attempt, logged

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    receiver_runner, receiver_port = await start_site(receiver)
    gw_runner, gw_port = await start_site(build_app(pg_url, bootstrap, Limits()))
    ld_runner, ld_port = await start_site(make_app(pool, poll_s=0.2))
    stop, task = asyncio.Event(), None
    secrets: dict[str, str] = {}
    try:
        conn = await asyncpg.connect(pg_url)
        try:
            key_id, gw_key = await create_key(conn, tenant, ["*"], ["*"], ["*"])
        finally:
            await conn.close()
        ld_key, hook_secret = await repo.add_lender(pool, lender, "Bank L", f"http://127.0.0.1:{receiver_port}/hook",
                                                    url_policy=DEV_URLS)
        # An endpoint nobody listens on: connection errors are logged, then a dead letter.
        _, offline_secret = await repo.add_lender(pool, offline, "Bank O", "http://127.0.0.1:9/hook", url_policy=DEV_URLS)
        for lid in (lender, offline):
            await repo.subscribe(pool, lid, "all")
        secrets.update({
            "gateway key": gw_key, "gateway key secret": gw_key.split("_", 2)[2],
            "lender key": ld_key, "lender key body": ld_key.removeprefix("csk_"),
            "webhook secret": hook_secret, "webhook secret body": hook_secret.removeprefix("whsec_"),
            "other webhook secret": offline_secret,
            "data key": base64.urlsafe_b64encode(crypto.data_key()).decode().rstrip("=")})

        group = f"test-sec-webhooks-{uid}"
        await group_at_end(bootstrap, group, [TOPIC])
        dispatcher = Dispatcher(bootstrap, pool, group=group, refresh_s=0.2, url_policy=DEV_URLS,
                                policy=RetryPolicy(max_attempts=2, base_s=0.05, cap_s=0.1))
        task = asyncio.create_task(dispatcher.run(stop))

        event = EventFactory(f"sec-{uid}", datetime.now(UTC), tenant=tenant).equipment(f"exc-{uid}", 10.0)
        gw, ld = f"http://127.0.0.1:{gw_port}/v1/events", f"http://127.0.0.1:{ld_port}"
        borrower_path = f"{ld}/v1/borrowers/b-{uid}/limit"
        async with aiohttp.ClientSession() as http:

            async def status(method: str, url: str, auth: str | None, data: bytes | None = None) -> int:
                headers = {"Authorization": auth} if auth else {}
                if data is not None:
                    headers["Content-Type"] = "application/json"
                async with http.request(method, url, headers=headers, data=data) as r:
                    await r.read()
                    return r.status

            body = {"data": codec.encode(event)}
            assert await status("POST", gw, f"Bearer {gw_key}", **body) == 200
            for auth in (f"Bearer csk_{key_id}_wrong", f"Bearer {gw_key}x", f"Basic {gw_key}", gw_key):
                assert await status("POST", gw, auth, **body) == 401
            assert await _raw(gw_port, b"POST /v1/events", f"Bearer {gw_key}".encode() + b"\xff\xfe") \
                == b"HTTP/1.1 401 Unauthorized"
            assert await status("GET", borrower_path, f"Bearer {ld_key}") == 404  # valid key, no such borrower
            for auth in (f"Bearer {ld_key}x", f"Token {ld_key}", ld_key):
                assert await status("GET", borrower_path, auth) == 401
            assert await _raw(ld_port, f"GET /v1/borrowers/b-{uid}/limit".encode(),
                              f"Bearer {ld_key}".encode() + b"\xff") == b"HTTP/1.1 401 Unauthorized"

            async with http.get(f"{ld}/v1/stream/limits", headers={"Authorization": f"Bearer {ld_key}"}) as live:
                await produce_events(producer, [limit_update(f"b-{uid}", 1, f"p-{uid}", [lender, offline])])
                await read_sse(live, 0)
                await eventually(lambda: pool.fetchval(
                    "SELECT count(*) = 2 FROM webhook_progress WHERE lender_id = ANY($1::text[])",
                    [lender, offline]), timeout=30)
                new_key = await repo.rotate_key(pool, lender)  # the open stream ends
                secrets.update({"rotated lender key": new_key, "rotated key body": new_key.removeprefix("csk_")})
                assert (await asyncio.wait_for(live.content.read(), 5)).endswith(b": unauthorized\n\n")
            assert await status("GET", borrower_path, f"Bearer {ld_key}") == 401  # the rotated-out key
            await repo.set_active(pool, lender, False)
            assert await status("GET", f"{ld}/v1/stream/limits", f"Bearer {new_key}") == 401
            conn = await asyncpg.connect(pg_url)
            try:
                await revoke_key(conn, key_id)
            finally:
                await conn.close()
            assert await status("POST", gw, f"Bearer {gw_key}", **body) == 401
    finally:
        stop.set()
        if task:
            await task
        for runner in (gw_runner, ld_runner, receiver_runner):
            await runner.cleanup()
        await pool.close()

    assert hooks == [1, 1] and dispatcher.stats.dead == 1  # the failures were there to be logged
    records = caplog.records
    names = {r.name for r in records}
    assert "aiohttp.access" in names and "connectors.lenders.webhooks" in names
    access = [r.getMessage() for r in records if r.name == "aiohttp.access"]
    assert any("/v1/events" in line for line in access) and any("/v1/stream/limits" in line for line in access)
    assert not [r for r in records if r.levelno >= logging.ERROR and r.name.startswith("aiohttp")], \
        "a request failed on the server (500)"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    leaks = {(r.name, what) for r in records for text in _texts(r, formatter)
             for what, secret in secrets.items() if secret in text}
    assert not leaks, f"secrets in log records: {leaks}"
