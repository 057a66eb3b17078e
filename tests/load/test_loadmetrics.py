"""The workers' Prometheus figures read into the load report."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from load.metrics import parse, scrape
from tests.lenders.ld_support import start_site


def exposition() -> str:
    reg = CollectorRegistry()
    events = Counter("creditstream_events_in", "events in", ["topic"], registry=reg)
    events.labels("cs.telemetry").inc(120)
    events.labels("cs.ledger").inc(3)
    Gauge("creditstream_table_keys", "keys", registry=reg).set(42)
    Gauge("python_gc_objects", "not ours", registry=reg).set(7)
    return generate_latest(reg).decode()


def test_parse_keeps_creditstream_series_with_labels() -> None:
    values = parse(exposition())
    assert values['creditstream_events_in_total{topic="cs.telemetry"}'] == 120
    assert values['creditstream_events_in_total{topic="cs.ledger"}'] == 3
    assert values["creditstream_table_keys"] == 42
    assert not [k for k in values if k.startswith("python")]


async def test_scrape_sums_workers_and_notes_missing_endpoints() -> None:
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=exposition())

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner, port = await start_site(app)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        out = await scrape([url, url, f"http://127.0.0.1:{port}/nothing"])
    finally:
        await runner.cleanup()
    assert out["values"]['creditstream_events_in_total{topic="cs.telemetry"}'] == 240
    assert list(out["errors"].values()) == ["HTTP 404"]


def test_bench_counts_only_its_engines_dead_letters_by_topic_and_reason() -> None:
    """`load bench` refuses a figure when its engine dead-lettered any reading (issue 13:
    3.7% of the telemetry was refused `unpledged_machine` in 7 of 12 runs)."""
    import orjson

    from connectors.kafka_io import Record
    from load.bench import BenchResult, dead_letters_by_reason

    def dl(source: str, topic: str, reason: str) -> Record:
        value = {"source": source, "payload": {"topic": topic, "reason": reason}}
        return Record("cs.deadletter", 0, 0, b"k", orjson.dumps(value), {}, 0)

    mine = "creditstream.engine.cs-bench-x"
    recs = [dl(mine, "cs.telemetry", "unpledged_machine"), dl(mine, "cs.telemetry", "unpledged_machine"),
            dl(mine, "cs.signals", "unknown_signal"), dl("creditstream.engine.other", "cs.telemetry", "x"),
            Record("cs.deadletter", 0, 1, b"k", b"not json", {}, 0)]
    counts = dead_letters_by_reason(recs, mine)
    assert counts == {"cs.signals:unknown_signal": 1, "cs.telemetry:unpledged_machine": 2}
    assert BenchResult(1, 1, 1.0, 1.0, dead_letters=counts).telemetry_refused == 2
