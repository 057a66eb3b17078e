"""The campaign through the real stack: fuzzed records into a running worker, fuzzed
bodies into the HTTP gateway.

Engine: a worker on a fresh engine id (its groups start at the end of the inputs) reads
a sample of fuzzed records sent to the input topics. Each record must either be
accepted or become a dead letter on ``cs.deadletter`` from that engine, matched by its
origin (topic, partition, offset), carrying the reason and the original bytes; records
the codec or the routing rules refuse must be dead-lettered with exactly the reason the
in-process check predicts; no dead letter may be an ``internal_error``; the engine must
commit past every record (nothing stuck), and the worker must still be alive and answer
``/healthz`` with 200 at the end.

Gateway: fuzzed NDJSON bodies; every answer is JSON with a status below 500, one result
per item and a reason per refused item.

Ids and the seller tax id of the example events are rewritten per run, so the sample
never touches the parties of another run, a test or the demo on the shared topics.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from load.fuzz import inputs
from load.fuzz.campaign import Failure, Tally, sample_of
from schemas import codec
from schemas.examples import SELLER_TAX_ID
from schemas.topics import DEADLETTER_TOPIC, route

# Larger records are refused by the producer (Kafka's 1 MB request limit), not the engine.
MAX_RECORD_BYTES = 900 * 1024
DECODE_REASONS = frozenset({"malformed_json", "not_an_object", "invalid_event", "too_large"})


def isolate(data: bytes, run: str) -> bytes:
    """``data`` with the example parties, programs, assets and tax id made unique to ``run``."""
    for ident in sorted(inputs.PLAUSIBLE_IDS, key=len, reverse=True):
        if len(ident) > 2:
            data = data.replace(ident.encode(), f"{ident}-{run}".encode())
    return data.replace(SELLER_TAX_ID.encode(), f"FZ{run.upper()}TAX"[:18].ljust(18, "0").encode())


def draw_many(strategy: st.SearchStrategy[Any], n: int, seed: int | None) -> list[Any]:
    """``n`` values of ``strategy`` (outside a test: hypothesis as a generator)."""
    got: list[Any] = []

    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        got.append(value)

    if seed is not None:
        collect = hypothesis_seed(seed)(collect)
    collect()
    return got[:n]


@dataclass
class Sent:
    delivery: inputs.Delivery
    topic: str
    partition: int
    offset: int
    expect: str | None  # the reason the codec or routing refuses it with, None if accepted


@dataclass
class EngineResult:
    tally: Tally
    not_sent: int = 0
    worker_alive: bool = False
    healthz: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def expected_refusal(d: inputs.Delivery, topic: str, key: bytes | None) -> str | None:
    """What the engine must answer before any state is read: a decode or routing refusal."""
    from streams.processors import all_processors, processor_for

    try:
        event = codec.decode(d.value)
    except codec.DecodeError as exc:
        return exc.reason
    if event.type not in processor_for(topic, all_processors()).types:
        return "wrong_topic"
    if key is not None and key.decode(errors="replace") != route(event)[1].decode():
        return "misrouted"
    return None


async def _send(bootstrap: str, records: list[inputs.Delivery]) -> list[Sent]:
    from connectors.kafka_io import make_producer

    producer = make_producer(bootstrap, max_request_size=1024 * 1024)
    await producer.start()
    sent: list[Sent] = []
    try:
        for d in records:
            topic, key = inputs.destination(d)
            meta = await producer.send_and_wait(topic, d.value, key=key)
            sent.append(Sent(d, topic, meta.partition, meta.offset, expected_refusal(d, topic, key)))
    finally:
        await producer.stop()
    return sent


async def _committed(bootstrap: str, app_id: str) -> dict[tuple[str, int], int]:
    """The highest offset any of the engine's groups committed, per topic partition."""
    from aiokafka.admin import AIOKafkaAdminClient

    from streams.fastlane import engine_groups

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    out: dict[tuple[str, int], int] = {}
    try:
        for group in engine_groups(app_id):
            for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
                out[(tp.topic, tp.partition)] = max(out.get((tp.topic, tp.partition), -1), meta.offset)
    finally:
        await admin.close()
    return out


async def _engine_async(bootstrap: str, app_id: str, records: list[inputs.Delivery],
                        timeout: float) -> tuple[list[Sent], dict[tuple[str, int, int], dict[str, Any]], bool]:
    from connectors.kafka_io import TopicReader

    source = f"creditstream.engine.{app_id}"
    letters: dict[tuple[str, int, int], dict[str, Any]] = {}
    async with TopicReader(bootstrap, DEADLETTER_TOPIC) as reader:
        sent = await _send(bootstrap, records)
        last: dict[tuple[str, int], int] = {}
        for s in sent:
            last[(s.topic, s.partition)] = max(last.get((s.topic, s.partition), -1), s.offset)
        deadline = time.monotonic() + timeout
        caught_up = False
        while time.monotonic() < deadline:
            committed = await _committed(bootstrap, app_id)
            if all(committed.get(tp, -1) > off for tp, off in last.items()):
                caught_up = True
                break
            await asyncio.sleep(0.5)
        # The engine acknowledges a batch's dead letters before it commits the batch: all of
        # them are below the dead-letter topic's end offsets now. Read up to there, however
        # long it takes on a loaded machine (one more read of a second missed some).
        for r in await reader.read_to_end(timeout=max(30.0, deadline - time.monotonic())):
            value = orjson.loads(r.value)
            p = value.get("payload", {})
            if value.get("source") == source and p.get("offset") is not None:
                letters[(p["topic"], p["partition"], p["offset"])] = value
    return sent, letters, caught_up


def judge(sent: list[Sent], letters: dict[tuple[str, int, int], dict[str, Any]], tally: Tally) -> None:
    """Each sent record: accepted, or dead-lettered with its reason and bytes; else a failure."""
    def fail(s: Sent, error: str) -> None:
        tally.failed += 1
        if len(tally.failures) < 20:
            tally.failures.append(Failure(tally.name, error, sample_of(s.delivery.value), f"{s.topic}-{s.partition}@{s.offset}"))

    for s in sent:
        tally.tried += 1
        letter = letters.get((s.topic, s.partition, s.offset))
        if letter is None:
            if s.expect is not None:
                fail(s, f"no dead letter, expected one with reason {s.expect}")
            else:
                tally.accepted += 1
            continue
        p = letter["payload"]
        try:
            codec.decode_obj(letter)
        except codec.DecodeError as exc:
            fail(s, f"the dead letter is not a valid record: {exc}")
            continue
        if base64.b64decode(p["value_b64"]) != s.delivery.value:
            fail(s, "the dead letter does not carry the original bytes")
        elif p["reason"] == "internal_error":
            fail(s, f"internal error: {p['error']}")
        elif s.expect is not None and p["reason"] != s.expect:
            fail(s, f"dead-lettered as {p['reason']}, expected {s.expect}")
        elif s.expect is None and p["reason"] in DECODE_REASONS:
            fail(s, f"dead-lettered as {p['reason']}, but the codec accepts it")
        else:
            tally.refused[p["reason"]] += 1


def engine_campaign(bootstrap: str, sample: int, seed: int | None, root: Path,
                    timeout: float = 180.0) -> EngineResult:
    """Start a worker on a fresh engine id, send ``sample`` fuzzed records, judge each."""
    import urllib.request

    from load.workers import start_workers

    run = uuid.uuid4().hex[:6]
    strategy = st.one_of(inputs.deliveries(), inputs.envelopes.map(lambda b: [inputs.Delivery(b)]))
    records: list[inputs.Delivery] = []
    for batch in draw_many(strategy, sample, seed):
        records += [inputs.Delivery(isolate(d.value, run), d.topic, d.key, d.wrong_key) for d in batch]
    records = records[:sample]
    fits = [d for d in records if len(d.value) <= MAX_RECORD_BYTES]
    result = EngineResult(Tally("engine (Kafka)", examples=len(fits)), not_sent=len(records) - len(fits))
    started = time.perf_counter()
    app_id = f"cs-fuzz-{run}"
    (worker,) = start_workers(app_id, 1, root)
    try:
        sent, letters, caught_up = asyncio.run(_engine_async(bootstrap, app_id, fits, timeout))
        if not caught_up:
            result.notes.append(f"the engine did not commit past every record within {timeout:.0f} s")
            result.tally.failed += 1
        judge(sent, letters, result.tally)
        result.worker_alive = worker.proc is not None and worker.proc.poll() is None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/healthz", timeout=5) as r:
                result.healthz = r.status
        except OSError as exc:
            result.notes.append(f"/healthz: {exc}")
            result.healthz = getattr(exc, "code", None)
    finally:
        worker.stop()
    if not result.worker_alive or result.healthz != 200:
        result.tally.failed += 1
        result.notes.append(f"worker alive={result.worker_alive}, /healthz={result.healthz}; log {worker.log}")
    result.seconds = result.tally.seconds = time.perf_counter() - started
    return result


# ---------------------------------------------------------------- gateway
@st.composite
def gateway_bodies(draw: st.DrawFn) -> bytes:
    """An NDJSON body: a few broken events, now and then a batch or a body over the limits."""
    kind = draw(st.sampled_from(("small",) * 8 + ("many", "huge")))
    if kind == "many":
        # A small item: the batch probes the count limits. A huge envelope (up to 8 MB)
        # repeated 5,000 times took the campaign to 23 GB and the OOM killer (2026-11-29).
        item = draw(inputs.envelopes.filter(lambda b: len(b) <= 4096))
        return b"\n".join([item.replace(b"\n", b" ")] * draw(st.sampled_from((999, 1001, 5000))))
    if kind == "huge":
        return b'{"event_id":"' + b"A" * 5_000_000 + b'"}'
    items = draw(st.lists(inputs.envelopes, min_size=1, max_size=5))
    return b"\n".join(i.replace(b"\n", b" ") for i in items)


async def _gateway_async(pg_url: str, bootstrap: str, bodies: list[bytes], tenant: str, tally: Tally) -> None:
    import asyncpg
    from aiohttp import ClientSession, web

    from connectors.gateway.app import NDJSON, Limits, build_app
    from connectors.gateway.store import create_key, revoke_key
    from connectors.pg.migrate import migrate
    from creditstream.stack.process import free_port

    await migrate(pg_url)
    conn = await asyncpg.connect(pg_url)
    key_id, key = await create_key(conn, tenant, ["*"], ["*"], ["*"])
    runner = web.AppRunner(build_app(pg_url, bootstrap, Limits()))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    statuses: Counter[int] = Counter()
    try:
        async with ClientSession() as http:
            for body in bodies:
                items = [line for line in body.split(b"\n") if line.strip()]
                async with http.post(f"http://127.0.0.1:{port}/v1/events", data=body, headers={
                        "Authorization": f"Bearer {key}", "Content-Type": NDJSON}) as r:
                    status, text = r.status, await r.read()
                statuses[status] += 1
                problem = _gateway_problem(status, text, items, tally)
                if problem:
                    tally.failed += 1
                    if len(tally.failures) < 20:
                        tally.failures.append(Failure(tally.name, problem, sample_of(body), f"HTTP {status}"))
    finally:
        await runner.cleanup()
        await revoke_key(conn, key_id)
        await conn.close()


def _gateway_problem(status: int, text: bytes, items: list[bytes], tally: Tally) -> str | None:
    """None when the answer is a clear one, counting its distinct items; else what is wrong.

    A long batch repeats one item: it is counted once (with its first result)."""
    if status >= 500:
        return f"HTTP {status}: {text[:200]!r}"
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        return f"HTTP {status} answer is not JSON: {text[:200]!r}"
    distinct = {item: n for n, item in reversed(list(enumerate(items)))}
    if status in (400, 413):
        tally.tried += len(distinct)
        tally.refused[f"http_{status}"] += len(distinct)
        return None if answer.get("reason") else f"HTTP {status} without a reason"
    results = answer.get("results") or []
    if len(results) != len(items):
        return f"{len(results)} results for {len(items)} items"
    for item in (results[n] for n in sorted(distinct.values())):
        tally.tried += 1
        if item["status"] in ("accepted", "duplicate"):
            tally.accepted += 1
        elif item.get("reason"):
            tally.refused[item["reason"] if item["status"] == "rejected" else item["status"]] += 1
        else:
            return f"item {item.get('index')} {item['status']} without a reason"
    return None


def gateway_campaign(pg_url: str, bootstrap: str, sample: int, seed: int | None) -> Tally:
    """POST ``sample`` fuzzed bodies to a gateway on this machine's stack; judge each answer."""
    run = uuid.uuid4().hex[:6]
    bodies = [isolate(b, run) for b in draw_many(gateway_bodies(), sample, seed)]
    tally = Tally("gateway (HTTP)")
    started = time.perf_counter()
    # The example tenant, made unique like the parties: the key may publish what it names.
    asyncio.run(_gateway_async(pg_url, bootstrap, bodies, f"sany-heavy-{run}", tally))
    tally.examples = len(bodies)
    tally.seconds = time.perf_counter() - started
    return tally
