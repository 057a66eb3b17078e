"""Slow clients (issue 11, item 5): a body has a deadline, and one tenant's connections
cannot take every slot. Real gateway on loopback, real Kafka and PostgreSQL; a few seconds."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession

from connectors.gateway.app import Limits
from connectors.gateway.store import create_key
from tests.gateway.test_http import events_for, serve

pytestmark = pytest.mark.integration


async def slowloris(url: str, key: str, body: bytes, every_s: float) -> tuple[int, float]:
    """POST ``body`` one byte every ``every_s`` seconds; (status, seconds until the answer)."""
    host, _, port = url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    t0 = time.monotonic()
    writer.write(f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    answer = asyncio.ensure_future(reader.readline())
    try:
        for byte in body:
            if answer.done():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.wait([answer], timeout=every_s)
        line = await asyncio.wait_for(answer, timeout=5)
        return int(line.split()[1]), time.monotonic() - t0
    finally:
        answer.cancel()
        writer.close()


async def test_one_tenants_slow_bodies_do_not_starve_another_tenant(pg_url: str, bootstrap: str,
                                                                    uid: str) -> None:
    """Tenant A opens as many slow connections as there are slots. Before: every slot was
    A's and tenant B got 429 for the whole attack. Now A holds at most its share, its
    extra connections get 429, its slow bodies 408 after the body timeout, and B is served."""
    conn = await asyncpg.connect(pg_url)
    try:
        _, key_a = await create_key(conn, f"slow-a-{uid}", ["*"], ["*"], ["*"])
        _, key_b = await create_key(conn, "sany-heavy", ["*"], ["*"], ["*"])
    finally:
        await conn.close()
    limits = Limits(max_in_flight=4, max_in_flight_per_tenant=2, body_timeout_s=1.5)
    runner, url = await serve(pg_url, bootstrap, limits)
    try:
        item = events_for(uid, "telemetry.equipment")[0]
        attack = [asyncio.ensure_future(slowloris(url, key_a, b"x" * 100, 0.25)) for _ in range(limits.max_in_flight)]
        await asyncio.sleep(0.5)  # every attacking connection has sent its headers
        async with ClientSession() as http:
            for _ in range(2):  # twice, while the attack goes on
                async with http.post(f"{url}/v1/events", data=orjson.dumps(item), headers={
                        "Authorization": f"Bearer {key_b}", "Content-Type": "application/json"}) as r:
                    assert r.status == 200, await r.text()
            done = await asyncio.gather(*attack)
            # A's own requests go through again once its slow bodies are cut.
            again = dict(item, tenant=f"slow-a-{uid}", event_id=f"{item['event_id']}-a")
            async with http.post(f"{url}/v1/events", data=orjson.dumps(again), headers={
                    "Authorization": f"Bearer {key_a}", "Content-Type": "application/json"}) as r:
                assert r.status == 200, await r.text()
    finally:
        await runner.cleanup()
    statuses = sorted(status for status, _ in done)
    assert statuses == [408, 408, 429, 429], done
    for status, spent in done:
        if status == 408:
            assert 1.4 <= spent <= 4.0, done  # cut at the body timeout, not at the client's pace
