"""Issue 11's attacks, run by ``creditstream fuzz run --broker`` against the real stack.

Two rows of the campaign table:

``lender api HTTP``: fuzzed paths, parameters and cursors (``load.fuzz.lender_api``) to an
in-process lender API on the stack's PostgreSQL, with a valid key. Refused = a clear 4xx,
counted by status and error code; a 5xx, a non-JSON answer or a 4xx without a reason fails.

``issue 11 attacks``: each attempt is refused (the control held, counted by how) or a
failure (the attack worked); the requests of the tenant under attack count as accepted.
- slow bodies: a tenant opens as many connections as the gateway has slots and sends a byte
  every 0.25 s; each must end 408 (body timeout) or 429 (its share is full) while another
  tenant's requests get 200;
- concurrent duplicates: rounds of ten parallel copies of one request; exactly one copy may
  be accepted per round;
- webhook URLs: schemes, metadata, loopback, private and malformed URLs at registration;
- data keys: a value sealed under a key the process does not have must fail as
  ``DataKeyError`` naming that key id;
- event ids of another tenant (item 1): tenant B's consent revocation after tenant A
  used its event id must still freeze B's facility;
- money moved by a stranger (item 2): a drawdown from a tenant that is neither a lender of
  the program nor its operator must be dead-lettered ``not_entitled``;
- amplification (item 4): an EPCIS document of refused events must not give dead letters
  larger in sum than the document, nor one over 64 KiB;
- GB/T 32960 platform access (item 9): frames before the platform login, with a wrong
  password, or for a VIN the tenant has not pledged get the standard's error answer and
  a dead letter from an in-process gateway.
The last three go through the processors the worker runs (the replay's stores) and the
EPCIS parser; the suite runs them through a real worker too (tests/engine, tests/sources).
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from typing import Any

import orjson

from load.fuzz import lender_api
from load.fuzz.broker import draw_many
from load.fuzz.campaign import Failure, Tally, sample_of
from schemas.topics import DEADLETTER_TOPIC, LIMITS_TOPIC

WEBHOOK_URLS = (
    "file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL", "ftp://lender.example/x", "dict://127.0.0.1:11211/",
    "http://169.254.169.254/latest/meta-data/", "https://169.254.169.254/", "http://lender.example/hook",
    "https://127.0.0.1:16066/", "https://localhost/", "https://[::1]/", "https://[::ffff:127.0.0.1]/",
    "https://10.0.0.5/", "https://192.168.0.1/", "https://172.16.0.1/", "https://100.64.0.1/", "https://[fd00::1]/",
    "https://[fe80::1]/", "https://0.0.0.0/", "https://224.0.0.1/", "https://bank:pw@93.184.216.34/",
    "https:///hook", "https://93.184.216.34:99999/", "javascript:alert(1)", "", "https://a b/",
)


def _fail(tally: Tally, error: str, sample: Any, where: str) -> None:
    tally.tried += 1
    tally.failed += 1
    if len(tally.failures) < 20:
        tally.failures.append(Failure(tally.name, error[:500], sample_of(sample), where))


# ---------------------------------------------------------------- the lender API
async def _lender_api_async(pg_url: str, probes: list[lender_api.Probe], tally: Tally) -> None:
    import aiohttp
    import asyncpg
    from aiohttp import web

    from connectors.lenders import repo
    from connectors.lenders.api import make_app
    from connectors.pg.migrate import migrate

    await migrate(pg_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    lender = f"fuzz-{uuid.uuid4().hex[:8]}"
    key, _ = await repo.add_lender(pool, lender, "Fuzz Bank")
    runner = web.AppRunner(make_app(pool, poll_s=0.2))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]  # noqa: SLF001
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for probe in probes:
                status, ctype, body = await lender_api.send(http, base, key, probe)
                why = lender_api.problem(status, ctype, body)
                if why:
                    _fail(tally, why, probe.path, f"HTTP {status}")
                    continue
                tally.tried += 1
                if status < 400:
                    tally.accepted += 1
                else:
                    tally.refused[lender_api.reason(status, body)] += 1
    finally:
        await runner.cleanup()
        await repo.set_active(pool, lender, False)
        await pool.close()


def lender_api_campaign(pg_url: str, sample: int, seed: int | None) -> Tally:
    tally = Tally("lender api HTTP")
    started = time.perf_counter()
    probes = draw_many(lender_api.probes(), sample, seed)
    asyncio.run(_lender_api_async(pg_url, probes, tally))
    tally.examples = len(probes)
    tally.seconds = time.perf_counter() - started
    return tally


# ---------------------------------------------------------------- issue 11's attacks
async def _slow_bodies(url: str, attacker: str, victim: str, item: dict[str, Any], slots: int,
                       tally: Tally) -> None:
    from aiohttp import ClientSession

    async def slowloris() -> int:
        host, _, port = url.removeprefix("http://").partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {attacker}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode())
        answer = asyncio.ensure_future(reader.readline())
        try:
            for _ in range(100):
                if answer.done():
                    break
                writer.write(b"x")
                await writer.drain()
                await asyncio.wait([answer], timeout=0.25)
            return int((await asyncio.wait_for(answer, timeout=5)).split()[1])
        finally:
            answer.cancel()
            writer.close()

    attack = [asyncio.ensure_future(slowloris()) for _ in range(slots)]
    await asyncio.sleep(0.4)
    async with ClientSession() as http:
        for n in range(3):
            event = dict(item, event_id=f"{item['event_id']}-{n}")
            async with http.post(f"{url}/v1/events", data=orjson.dumps(event), headers={
                    "Authorization": f"Bearer {victim}", "Content-Type": "application/json"}) as r:
                if r.status == 200:
                    tally.tried += 1
                    tally.accepted += 1
                else:
                    _fail(tally, f"another tenant got HTTP {r.status} during the attack", event["event_id"], "slow bodies")
    for status in await asyncio.gather(*attack):
        if status in (408, 429):
            tally.tried += 1
            tally.refused[f"slow_body_{status}"] += 1
        else:
            _fail(tally, f"a slow body was answered {status}", "1 byte / 0.25 s", "slow bodies")


async def _duplicates(url: str, key: str, item: dict[str, Any], rounds: int, tally: Tally) -> None:
    from aiohttp import ClientSession

    async with ClientSession() as http:
        for n in range(rounds):
            body = orjson.dumps(dict(item, event_id=f"{item['event_id']}-dup{n}"))

            async def post(body: bytes = body) -> str:
                async with http.post(f"{url}/v1/events", data=body, headers={
                        "Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as r:
                    answer = await r.json()
                    return answer["results"][0]["status"] if r.status == 200 else f"http_{r.status}"

            statuses = await asyncio.gather(*(post() for _ in range(10)))
            if statuses.count("accepted") != 1:
                _fail(tally, f"ten parallel copies answered {sorted(statuses)}", body, "concurrent duplicates")
                continue
            tally.tried += 10
            tally.accepted += 1
            for s in statuses:
                if s != "accepted":
                    tally.refused[f"parallel_{s}"] += 1


async def _webhook_urls(tally: Tally) -> None:
    from connectors.lenders.urls import UrlPolicy, WebhookUrlError, check

    for url in WEBHOOK_URLS:
        try:
            await check(url, UrlPolicy())
        except WebhookUrlError:
            tally.tried += 1
            tally.refused["webhook_url_refused"] += 1
        else:
            _fail(tally, "webhook URL accepted", url, "webhook urls")


def _data_keys(tally: Tally, tries: int = 20) -> None:
    from connectors.pg import crypto

    for _ in range(tries):
        other = secrets.token_bytes(32)
        token = crypto.seal("whsec_fuzz", "lenders.webhook_secret", key=other)
        try:
            crypto.unseal(token, "lenders.webhook_secret")
        except crypto.DataKeyError as exc:
            if crypto.key_id(other) in str(exc):
                tally.tried += 1
                tally.refused["data_key_missing_named"] += 1
                continue
            _fail(tally, f"the error does not name the key: {exc}", token, "data keys")
        except Exception as exc:  # noqa: BLE001 - any other escape is the finding
            _fail(tally, f"{type(exc).__name__}: {exc}", token, "data keys")
        else:
            _fail(tally, "opened with a key it was not sealed with", token, "data keys")


def _engine_attacks(tally: Tally, rounds: int = 10) -> None:
    from datetime import UTC, datetime

    from schemas import codec
    from schemas.factory import EventFactory
    from streams.replay import Replay

    for _ in range(rounds):
        u = uuid.uuid4().hex[:8]
        f = EventFactory(f"atk-{u}", datetime(2026, 3, 19, tzinfo=UTC))
        borrower, program = f"sup-{u}", f"prg-{u}"
        replay = Replay()
        outs = [o for e in (f.program(program), f.borrower(borrower, program), f.consent(borrower))
                for o in replay.feed(codec.encode(e))]
        revoke = f.consent(borrower, granted=False)
        squatter = f.supplies(f"x-{u}", f"y-{u}").model_copy(update={"event_id": revoke.event_id,
                                                                       "tenant": f"intruder-{u}"})
        outs = [o for e in (squatter, revoke) for o in replay.feed(codec.encode(e))]
        frozen = [o.value["payload"]["status"] for o in outs if o.topic == LIMITS_TOPIC]
        if frozen and frozen[-1] == "frozen":
            tally.tried += 1
            tally.refused["event_id_per_tenant"] += 1
        else:
            _fail(tally, f"another tenant's event id dropped the revocation (updates: {frozen})", u, "event ids")
        stranger = f.drawdown(f"ln-{u}", borrower, program, "1000").model_copy(update={"tenant": f"intruder-{u}"})
        reasons = [o.value["payload"]["reason"] for o in replay.feed(codec.encode(stranger))
                   if o.topic == DEADLETTER_TOPIC]
        if reasons == ["not_entitled"]:
            tally.tried += 1
            tally.refused["ledger_not_entitled"] += 1
        else:
            _fail(tally, f"a stranger's drawdown was not refused not_entitled ({reasons})", u, "ledger")


def _amplification(tally: Tally, rounds: int = 5) -> None:
    from connectors.sources import epcis
    from connectors.sources.common import MAX_ITEM_BYTES

    for n in range(rounds):
        # Events without a purchase order are refused; each is padded and nested.
        event = {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "shipping",
                 "eventTime": "2024-03-01T01:00:00Z", "eventTimeZoneOffset": "+00:00",
                 "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"], "pad": "x" * 4000 * (n + 1),
                 "deep": orjson.loads(b"[" * 200 + b"]" * 200)}
        doc = orjson.dumps({"type": "EPCISDocument", "epcisBody": {"eventList": [event] * 100}})
        out = epcis.parse_document(doc, tenant="t")
        sizes = [len(r.raw) for r in out.rejected]
        if len(sizes) == 100 and sum(sizes) <= len(doc) and max(sizes) <= MAX_ITEM_BYTES:
            tally.tried += 1
            tally.refused["dead_letters_bounded"] += 1
        else:
            _fail(tally, f"{len(sizes)} dead letters of {sum(sizes):,} bytes for a {len(doc):,}-byte document",
                  len(doc), "amplification")


async def _gbt_access(tally: Tally, rounds: int = 3) -> None:
    from datetime import UTC, datetime, timedelta

    from connectors.sources import gbt32960 as g
    from connectors.sources.common import Outcome
    from connectors.sources.gbt32960_access import PlatformAuth, PledgeBook
    from connectors.sources.gbt32960_client import exchange
    from connectors.sources.gbt32960_server import GbtGateway

    pledged, stranger = "LGHXCAE28M1234567", "LGHXCAE28M7654321"
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    outcomes: list[Outcome] = []

    async def sink(outcome: Outcome) -> None:
        outcomes.append(outcome)

    def frame(vin: str) -> bytes:
        return g.encode_frame(2, vin, g.realtime_data(t0, g.vehicle_block(soc=70, voltage_v=600, current_a=-20)))

    def login(password: str) -> bytes:
        return g.encode_frame(g.Command.PLATFORM_LOGIN, "PLATFORM000000001", g.platform_login_data(t0, "plat", password))

    book = PledgeBook("fleet-a")
    book.apply(orjson.dumps({"type": "registry.pledge", "tenant": "fleet-a", "payload": {"machine_id": "truck-1"}}))
    gateway = GbtGateway(sink, tenant="fleet-a", vin_map={pledged: "truck-1"}, auth=PlatformAuth("plat", "right-pw"),
                         pledged=book, max_per_peer=4, idle_timeout=5)
    await gateway.start("127.0.0.1", 0)
    attacks = (("gbt_not_logged_in", [frame(pledged)]), ("gbt_bad_credentials", [login("wrong-pw")]),
               ("gbt_vin_not_pledged", [login("right-pw"), frame(stranger)]))
    try:
        for _ in range(rounds):
            for name, frames in attacks:
                answers = await exchange("127.0.0.1", gateway.port, frames)
                if answers and answers[-1].flag == g.Flag.ERROR:
                    tally.tried += 1
                    tally.refused[name] += 1
                else:
                    _fail(tally, f"{name}: answered {[(a.command, a.flag) for a in answers]}", name, "gb/t access")
    finally:
        await gateway.stop()
    # The gateway emits only BatteryTelemetry; the Envelope base declares no payload.
    if any(e.payload.vin == stranger for o in outcomes for e in o.events):  # type: ignore[attr-defined]
        _fail(tally, "an unpledged VIN's frame was taken", stranger, "gb/t access")


async def _attacks_async(pg_url: str, bootstrap: str, tally: Tally) -> None:
    import asyncpg
    from aiohttp import web

    from connectors.gateway.app import Limits, build_app
    from connectors.gateway.store import create_key, revoke_key
    from connectors.pg.migrate import migrate
    from schemas import codec
    from schemas.examples import example_events

    run = uuid.uuid4().hex[:6]
    await migrate(pg_url)
    conn = await asyncpg.connect(pg_url)
    attacker_id, attacker = await create_key(conn, f"fuzz-slow-{run}", ["*"], ["*"], ["*"])
    victim_id, victim = await create_key(conn, f"fuzz-victim-{run}", ["*"], ["*"], ["*"])
    telemetry = orjson.loads(codec.encode(next(e for e in example_events() if e.type == "telemetry.equipment")))
    item = dict(telemetry, tenant=f"fuzz-victim-{run}", event_id=f"fuzz-{run}")
    limits = Limits(max_in_flight=4, max_in_flight_per_tenant=2, body_timeout_s=1.0)
    runner = web.AppRunner(build_app(pg_url, bootstrap, limits))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]  # noqa: SLF001
    try:
        await _slow_bodies(url, attacker, victim, item, limits.max_in_flight, tally)
    finally:
        await runner.cleanup()
    runner = web.AppRunner(build_app(pg_url, bootstrap, Limits(max_in_flight_per_tenant=16)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]  # noqa: SLF001
    try:
        await _duplicates(url, victim, item, 5, tally)
    finally:
        await runner.cleanup()
        for key_id in (attacker_id, victim_id):
            await revoke_key(conn, key_id)
        await conn.close()
    await _webhook_urls(tally)
    _data_keys(tally)
    _engine_attacks(tally)
    _amplification(tally)
    await _gbt_access(tally)


def attacks_campaign(pg_url: str, bootstrap: str) -> Tally:
    tally = Tally("issue 11 attacks")
    started = time.perf_counter()
    asyncio.run(_attacks_async(pg_url, bootstrap, tally))
    tally.examples = tally.tried
    tally.seconds = time.perf_counter() - started
    return tally
