"""The PostgreSQL ledger through the real broker and database: idempotence, version guard,
alerts, dead letters, and a PostgreSQL outage survived without loss or duplicates."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
import pytest
from aiokafka import TopicPartition

from connectors.kafka_io import TopicReader, produce_events
from connectors.ledger.service import TOPICS, Ledger
from connectors.pg.migrate import migrate
from schemas.codec import decode, encode
from schemas.topics import route
from tests.lenders.ld_support import (
    TcpProxy,
    alert,
    committed,
    eventually,
    group_at_end,
    limit_update,
)

pytestmark = pytest.mark.integration


async def _start(bootstrap: str, pg_url: str, uid: str, **kw: object) -> tuple[Ledger, asyncio.Event, asyncio.Task[None]]:
    group = f"test-ledger-{uid}"
    await group_at_end(bootstrap, group, list(TOPICS))
    ledger = Ledger(bootstrap, pg_url, group=group, **kw)  # type: ignore[arg-type]
    stop = asyncio.Event()
    return ledger, stop, asyncio.create_task(ledger.run(stop))


async def _versions(conn: asyncpg.Connection, borrower: str) -> list[int]:
    return [r["version"] for r in await conn.fetch(
        "SELECT version FROM decision_log WHERE borrower_id = $1 ORDER BY version", borrower)]


async def test_ld_same_updates_twice_and_older_versions_change_nothing(
        bootstrap: str, pg_url: str, producer, uid: str) -> None:
    await migrate(pg_url)
    b = f"bor-{uid}"
    ups = [limit_update(b, v, f"prg-{uid}", [f"L-{uid}"], amount=f"{v}0000.00") for v in (1, 2, 3)]
    al = alert(b, f"al-{uid}")
    ledger, stop, task = await _start(bootstrap, pg_url, uid)
    conn = await asyncpg.connect(pg_url)
    try:
        async with TopicReader(bootstrap, "cs.deadletter") as dlq:
            await produce_events(producer, [*ups, al])
            await produce_events(producer, [*ups, al])          # redelivered as a whole
            await produce_events(producer, [ups[0], ups[1]])    # stale versions arrive late
            garbage = b'{"type":"limit.updated","payload":{"borrower_id":'
            await producer.send_and_wait("cs.limits", garbage, key=f"junk-{uid}".encode())

            def is_mine(value: bytes) -> bool:
                return base64.b64decode(orjson.loads(value)["payload"]["value_b64"]) == garbage

            dead = await dlq.read(lambda rs: any(is_mine(r.value) for r in rs))
            mine = [decode(r.value) for r in dead if is_mine(r.value)]
            assert mine, "the undecodable record was not dead-lettered"
            assert mine[0].payload.reason == "malformed_json" and mine[0].payload.stage == "ledger"

            # Valid by the contract but refused by PostgreSQL (jsonb has no \u0000): only
            # that record is dead-lettered, the records around it are still written.
            raw = encode(limit_update(f"nul-{uid}", 1, "prg", ["L"]))
            raw = raw.replace(b"Order confirmed (v1).", b"bad\\u0000byte")
            assert decode(raw).payload.reasons[0].text == "bad\x00byte"  # type: ignore[attr-defined]
            await producer.send_and_wait("cs.limits", raw, key=f"nul-{uid}".encode())
            await produce_events(producer, [limit_update(f"ok-{uid}", 1, "prg", ["L"])])
            dead = await dlq.read(lambda rs: any(f"lu-nul-{uid}-1".encode() in
                                                 base64.b64decode(orjson.loads(r.value)["payload"]["value_b64"])
                                                 for r in rs))
            refused = [decode(r.value) for r in dead
                       if f"lu-nul-{uid}-1".encode() in base64.b64decode(orjson.loads(r.value)["payload"]["value_b64"])]
            assert refused and refused[0].payload.reason == "ledger_rejected"
        await eventually(lambda: _has(conn, f"ok-{uid}", [1]))
        assert await _versions(conn, f"nul-{uid}") == []

        async def caught_up() -> bool:
            return ledger.stats.records >= 13 and await _versions(conn, b) == [1, 2, 3]
        await eventually(caught_up)
        await asyncio.sleep(0.5)
        assert await _versions(conn, b) == [1, 2, 3]
        cur = await conn.fetchrow("SELECT version, limit_amount, payload FROM current_limits"
                                  " WHERE borrower_id = $1", b)
        assert cur["version"] == 3 and str(cur["limit_amount"]) == "30000.00"
        assert orjson.loads(cur["payload"])["payload"]["version"] == 3
        row = await conn.fetchrow("SELECT reasons, trigger_event_ids, policy_version FROM decision_log"
                                  " WHERE borrower_id = $1 AND version = 2", b)
        assert orjson.loads(row["reasons"])[0]["code"] == "ORDER_CONFIRMED"
        assert orjson.loads(row["trigger_event_ids"]) == [f"ev-{b}-2"]
        assert await conn.fetchval("SELECT count(*) FROM alerts WHERE borrower_id = $1", b) == 1
    finally:
        stop.set()
        await task
        await conn.close()


async def test_ld_postgres_outage_loses_nothing_and_commits_nothing_meanwhile(
        bootstrap: str, pg_url: str, producer, uid: str) -> None:
    await migrate(pg_url)
    proxy, via_proxy = await _through_proxy(pg_url)
    b = f"bor-{uid}"
    ledger, stop, task = await _start(bootstrap, via_proxy, uid, backoff_base=0.1, backoff_cap=0.5,
                                      connect_timeout=1.0)
    conn = await asyncpg.connect(pg_url)
    try:
        await produce_events(producer, [limit_update(b, v, "prg", ["L"]) for v in (1, 2)])
        await eventually(lambda: _has(conn, b, [1, 2]))

        await proxy.stop()                                   # PostgreSQL goes away
        sent = []
        for v in (3, 4, 5):
            topic, key = route(limit_update(b, v, "prg", ["L"]))
            sent.append(await producer.send_and_wait(topic, encode(limit_update(b, v, "prg", ["L"])), key=key))
        await produce_events(producer, [alert(b, f"al-{uid}")])
        tp = TopicPartition(sent[0].topic, sent[0].partition)
        await eventually(lambda: _true(ledger.stats.retries >= 3), timeout=15)
        assert await _versions(conn, b) == [1, 2]
        # Nothing at or after v3 may be committed while its rows are not durable.
        assert (await committed(bootstrap, ledger.group)).get(tp, 0) <= sent[0].offset

        await proxy.start()                                  # and comes back on the same port
        await eventually(lambda: _has(conn, b, [1, 2, 3, 4, 5]))
        await eventually(lambda: _true(ledger.stats.commits > 0 and ledger.stats.batches >= 3))
        assert await conn.fetchval("SELECT version FROM current_limits WHERE borrower_id = $1", b) == 5
        assert await conn.fetchval("SELECT count(*) FROM alerts WHERE borrower_id = $1", b) == 1
        await eventually(lambda: _committed_past(bootstrap, ledger.group, tp, sent[-1].offset))
    finally:
        stop.set()
        await task
        await proxy.stop()
        await conn.close()


async def test_ld_connection_stuck_by_a_shutdown_notice_is_replaced(
        bootstrap: str, pg_url: str, producer, uid: str) -> None:
    """PostgreSQL's FATAL notice reaching an idle connection before its close leaves
    asyncpg stuck ("cannot switch to state 15; another operation (2) is in progress",
    MagicStack/asyncpg#784): the ledger must drop that connection and carry on."""
    await migrate(pg_url)
    proxy, via_proxy = await _through_proxy(pg_url)
    b = f"bor-{uid}"
    ledger, stop, task = await _start(bootstrap, via_proxy, uid, backoff_base=0.1, backoff_cap=0.5)
    conn = await asyncpg.connect(pg_url)
    try:
        await produce_events(producer, [limit_update(b, 1, "prg", ["L"])])
        await eventually(lambda: _has(conn, b, [1]))
        proxy.announce_shutdown()
        await asyncio.sleep(0.2)
        await produce_events(producer, [limit_update(b, v, "prg", ["L"]) for v in (2, 3)])
        await eventually(lambda: _has(conn, b, [1, 2, 3]))
        assert not task.done()
        assert ledger.stats.retries >= 1
        assert await conn.fetchval("SELECT version FROM current_limits WHERE borrower_id = $1", b) == 3
    finally:
        stop.set()
        await task
        await proxy.stop()
        await conn.close()


async def _through_proxy(pg_url: str) -> tuple[TcpProxy, str]:
    """A started proxy to the stack's PostgreSQL, and the URL that goes through it."""
    real = urlsplit(pg_url)
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 5432)
    await proxy.start()
    netloc = real.netloc.rsplit("@", 1)
    return proxy, urlunsplit(real._replace(netloc=f"{netloc[0]}@127.0.0.1:{proxy.port}"))


async def _true(value: bool) -> bool:
    return value


async def _has(conn: asyncpg.Connection, borrower: str, versions: list[int]) -> bool:
    return await _versions(conn, borrower) == versions


async def _committed_past(bootstrap: str, group: str, tp: TopicPartition, offset: int) -> bool:
    return (await committed(bootstrap, group)).get(tp, 0) > offset
