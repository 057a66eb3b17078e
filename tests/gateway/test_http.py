"""The gateway over real HTTP, Kafka and PostgreSQL on loopback."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession, web

from connectors.gateway.app import NDJSON, Limits, build_app
from connectors.gateway.store import create_key, revoke_key
from connectors.kafka_io import TopicReader
from connectors.pg.migrate import migrate
from creditstream.stack.process import free_port
from schemas import codec
from schemas.examples import example_events

pytestmark = pytest.mark.integration


async def serve(pg_url: str, bootstrap: str, limits: Limits | None = None):
    runner = web.AppRunner(build_app(pg_url, bootstrap, limits or Limits()))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def events_for(uid: str, *types: str) -> list[dict]:
    out = []
    for e in example_events():
        if e.type in types:
            raw = orjson.loads(codec.encode(e))
            raw["event_id"] = f"{raw['event_id']}-{uid}"
            out.append(raw)
    return out


@pytest.fixture
async def gateway(pg_url: str, bootstrap: str):
    await migrate(pg_url)
    runner, url = await serve(pg_url, bootstrap)
    yield url
    await runner.cleanup()


@pytest.fixture
async def key(pg_url: str):
    conn = await asyncpg.connect(pg_url)
    try:
        key_id, key = await create_key(conn, "sany-heavy", ["*"], ["sany-heavy", "sup-hydraulics"], ["*"])
        row = await conn.fetchrow("SELECT secret_hash FROM api_keys WHERE key_id = $1", key_id)
        assert key.split("_", 2)[2] not in row["secret_hash"]  # only the hash is stored
        yield key_id, key
    finally:
        await conn.close()


async def test_batch_accepted_produced_and_idempotent(gateway: str, key, bootstrap: str, uid: str) -> None:
    items = events_for(uid, "invoice.issued", "invoice.confirmed", "telemetry.equipment")
    body = b"\n".join(orjson.dumps(i) for i in items)
    headers = {"Authorization": f"Bearer {key[1]}", "Content-Type": NDJSON}
    async with TopicReader(bootstrap, "cs.invoices", "cs.telemetry") as reader, ClientSession() as http:
        async with http.post(f"{gateway}/v1/events", data=body, headers=headers) as r:
            first = await r.json()
            assert r.status == 200, first
        got = await reader.read(lambda rs: len([x for x in rs if uid.encode() in x.value]) >= 3)
        async with http.post(f"{gateway}/v1/events", data=body, headers=headers) as r:
            again = await r.json()
        extra = await reader.read(lambda rs: False, timeout=1.5)
    assert first["accepted"] == 3 and [x["status"] for x in again["results"]] == ["duplicate"] * 3
    assert len([x for x in got if uid.encode() in x.value]) == 3
    assert not [x for x in extra if uid.encode() in x.value]  # a retried request is not produced twice


async def test_per_item_errors_and_partial_batches(gateway: str, key, uid: str) -> None:
    good = events_for(uid, "invoice.issued")[0]
    bad = dict(good, event_id=f"bad-{uid}", occurred_at="2026-03-02T08:00:00")
    other_buyer = events_for(uid, "invoice.confirmed")[0]
    other_buyer["payload"]["buyer_id"] = "xcmg"
    body = b"\n".join([orjson.dumps(good), orjson.dumps(bad), b"{not json", orjson.dumps(other_buyer)])
    async with ClientSession() as http, http.post(
            f"{gateway}/v1/events", data=body,
            headers={"Authorization": f"Bearer {key[1]}", "Content-Type": NDJSON}) as r:
        res = await r.json()
    assert r.status == 207
    by_index = {x["index"]: x for x in res["results"]}
    assert by_index[0]["status"] == "accepted"
    assert by_index[1]["status"] == "rejected" and by_index[1]["errors"][0]["field"] == "occurred_at"
    assert by_index[2]["reason"] == "malformed_json"
    assert by_index[3]["status"] == "forbidden" and "buyer 'xcmg'" in by_index[3]["reason"]


async def test_unknown_revoked_and_cross_tenant(gateway: str, key, pg_url: str, uid: str) -> None:
    item = events_for(uid, "telemetry.equipment")[0]
    async with ClientSession() as http:
        async with http.post(f"{gateway}/v1/events", json=item, headers={"Authorization": "Bearer csk_000000000000_x"}) as r:
            assert r.status == 401
        foreign = dict(item, tenant="xcmg")
        async with http.post(f"{gateway}/v1/events", json=foreign, headers={"Authorization": f"Bearer {key[1]}"}) as r:
            assert r.status == 403 and "tenant" in (await r.json())["results"][0]["reason"]
        conn = await asyncpg.connect(pg_url)
        await revoke_key(conn, key[0])
        await conn.close()
        async with http.post(f"{gateway}/v1/events", json=item, headers={"Authorization": f"Bearer {key[1]}"}) as r:
            assert r.status == 401


async def test_size_limits(pg_url: str, bootstrap: str, key, uid: str) -> None:
    runner, url = await serve(pg_url, bootstrap, Limits(max_body_bytes=2048, max_items=2))
    try:
        items = events_for(uid, "telemetry.equipment", "telemetry.battery", "ledger.drawdown")
        headers = {"Authorization": f"Bearer {key[1]}", "Content-Type": NDJSON}
        async with ClientSession() as http:
            async with http.post(f"{url}/v1/events", data=b"\n".join(orjson.dumps(i) for i in items),
                                 headers=headers) as r:
                assert r.status == 413
            async with http.post(f"{url}/v1/events", data=b"x" * 5000, headers=headers) as r:
                assert r.status == 413
    finally:
        await runner.cleanup()


async def test_backpressure_when_kafka_does_not_answer(pg_url: str, key, uid: str) -> None:
    # A "broker" that accepts connections and never answers: Kafka at its slowest.
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    blackhole = await asyncio.start_server(hold, "127.0.0.1", 0)
    dead = f"127.0.0.1:{blackhole.sockets[0].getsockname()[1]}"
    runner, url = await serve(pg_url, dead, Limits(max_in_flight=1, produce_timeout_s=1.0))
    try:
        item = events_for(uid, "telemetry.equipment")[0]
        headers = {"Authorization": f"Bearer {key[1]}"}
        async with ClientSession() as http:
            slow = asyncio.ensure_future(http.post(f"{url}/v1/events", json=item, headers=headers))
            await asyncio.sleep(0.3)
            async with http.post(f"{url}/v1/events", json=item, headers=headers) as r:
                assert r.status == 429 and r.headers["Retry-After"] == "1"
            first = await slow
            assert first.status == 503 and first.headers["Retry-After"] == "5"
            first.release()
            async with http.get(f"{url}/healthz") as r:
                assert r.status == 503
    finally:
        await runner.cleanup()
        for w in held:
            w.close()
        blackhole.close()


async def test_a_tenant_cannot_take_over_another_tenants_programs_borrowers_or_machines(
        gateway: str, pg_url: str, bootstrap: str, uid: str) -> None:
    """Core enterprise A, even with a key that speaks for B's supplier or for any program,
    cannot move B's borrower into its program, pledge B's machine, add collateral to B's
    borrower or redefine B's program; B still can. Refused items never reach Kafka."""
    from datetime import UTC, datetime

    from schemas.factory import EventFactory

    a, b = f"core-a-{uid}", f"core-b-{uid}"
    prg_a, prg_b, sup, machine = f"prg-a-{uid}", f"prg-b-{uid}", f"sup-{uid}", f"exc-b-{uid}"
    now = datetime.now(UTC)
    fa, fb = EventFactory(f"a-{uid}", now, tenant=a), EventFactory(f"b-{uid}", now, tenant=b)
    conn = await asyncpg.connect(pg_url)
    try:
        _, key_b = await create_key(conn, b, ["*"], [b, sup], [prg_b])
        _, key_a = await create_key(conn, a, ["*"], [a, sup], [prg_a])   # speaks for the shared supplier too
        _, key_a_any = await create_key(conn, a, ["*"], ["*"], ["*"])     # any party, any program
    finally:
        await conn.close()

    async def post(http: ClientSession, key: str, event) -> tuple[int, dict]:
        async with http.post(f"{gateway}/v1/events", data=codec.encode(event),
                             headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as r:
            return r.status, (await r.json())["results"][0]

    refused = []
    async with TopicReader(bootstrap, "cs.registry") as reader, ClientSession() as http:
        for event in (fb.program(prg_b), fb.borrower(sup, prg_b), fb.pledge(machine, sup, prg_b), fa.program(prg_a)):
            assert (await post(http, key_b if event.tenant == b else key_a, event))[0] == 200
        for key, event, why in (
                (key_a, fa.borrower(sup, prg_a), f"borrower '{sup}' is registered by another tenant"),
                (key_a, fa.pledge(machine, f"own-{uid}", prg_a), f"machine '{machine}' is registered by another tenant"),
                (key_a, fa.pledge(f"exc-a-{uid}", sup, prg_a), f"borrower '{sup}' is registered by another tenant"),
                (key_a_any, fa.program(prg_b), f"program '{prg_b}' is registered by another tenant"),
                (key_a_any, fa.borrower(f"own-{uid}", prg_b), f"program '{prg_b}' is registered by another tenant"),
                (key_a, fa.program(prg_b), f"the key may not publish for program '{prg_b}'")):
            status, item = await post(http, key, event)
            assert (status, item["status"], item["reason"]) == (403, "forbidden", why)
            refused.append(event.event_id)
        # The owner still may re-register its own borrower.
        assert (await post(http, key_b, fb.borrower(sup, prg_b)))[0] == 200
        # Two tenants registering the same new borrower at once: exactly one wins.
        racers = await asyncio.gather(post(http, key_a, fa.borrower(f"new-{uid}", prg_a)),
                                      post(http, key_b, fb.borrower(f"new-{uid}", prg_b)))
        assert sorted(status for status, _ in racers) == [200, 403]
        last = fa.program(prg_a)
        assert (await post(http, key_a, last))[0] == 200
        logged = await reader.read(lambda rs: any(last.event_id.encode() in r.value for r in rs))
    on_log = {orjson.loads(r.value)["event_id"] for r in logged}
    assert last.event_id in on_log and not on_log & set(refused)
