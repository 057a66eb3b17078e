"""The worker: the processors of streams/processors.py wired to topics and state.

Stage 1 (telemetry and pledges, the hot path), stage 2 (facilities) and the registry run
on aiokafka lanes (streams/fastlane.py); the low-volume processors (invoices, orders) are
Faust agents, each with a table co-partitioned with its source topics, on RocksDB
(rocksdict) with a changelog topic for recovery. In both, a batch's
outputs are produced and acknowledged before its state is written, and offsets are
committed after both (at-least-once). Stage 2 de-duplicates by asset sequence and event
id, and every limit update carries a per-borrower version, so a redelivery never reaches
a lender as a new decision.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.serializers import codecs
from faust.streams import _current_event, current_event
from faust.types import EventT

from creditstream import config
from schemas.topics import BY_NAME
from streams import metrics
from streams.domain.signals import SIGNALS_TOPIC
from streams.failstop import fail_stop
from streams.fastlane import LANES, Lane
from streams.processors import (
    Processor,
    all_processors,
    encode_output,
    engine_source,
)

log = logging.getLogger(__name__)


class OrjsonCodec(codecs.Codec):
    """Table values are plain JSON-able dicts; orjson is several times faster than json."""

    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


codecs.register("orjson", OrjsonCodec())


ENGINE_ID = "creditstream-engine"


class EngineApp(faust.App):
    """The Faust app, plus the lanes started with it.

    Faust starts ``app.task`` functions only once its own tables are recovered; the lanes
    need nothing from those tables, and on a new host their restore (the machine and
    facility changelogs) is the long part, so they start with the app instead and the two
    recoveries overlap (docs/memory-recovery.md)."""

    lanes: tuple[Lane, ...] = ()
    _lanes_started = False

    async def on_start(self) -> None:
        await super().on_start()
        if not self._lanes_started:  # on_start runs again if the app restarts
            self._lanes_started = True
            for lane in self.lanes:
                self.add_future(lane.run())


def signals_topic(app_id: str) -> str:
    return SIGNALS_TOPIC if app_id == ENGINE_ID else f"{SIGNALS_TOPIC}.{app_id}"


def create_app(worker_id: str = "w1", web_port: int | None = None, data_dir: Path | None = None,
               settings: config.Settings | None = None, app_id: str = ENGINE_ID) -> faust.App:
    """The engine app. ``app_id`` names the consumer group and the changelog topics: every
    worker of one engine shares it; a test or a shadow engine uses its own."""
    s = settings or config.load()
    data_dir = data_dir or s.state_dir / "workers" / worker_id
    data_dir.mkdir(parents=True, exist_ok=True)
    app = EngineApp(
        app_id,
        broker=f"kafka://{s.kafka_bootstrap}",
        store="rocksdb://",
        datadir=str(data_dir),
        processing_guarantee="at_least_once",
        producer_acks=-1,
        topic_partitions=4,
        topic_replication_factor=s.kafka_replication,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_bind="127.0.0.1",
        broker_commit_every=10000,
        broker_commit_interval=1.0,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        # A killed worker's partitions move to the others (or to it, restarted) after
        # this session timeout, so it bounds the recovery time.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        # A fleet's facility state or limit update can exceed 1 MB; the broker takes 4 MB.
        producer_max_request_size=4 * 1024 * 1024,
        stream_buffer_maxsize=8192,
    )
    # Stage 1 -> stage 2 is internal to one engine: another engine id (a test, a bench, a
    # shadow policy) gets its own signals topic so the engines never read each other's.
    signals = signals_topic(app_id)
    rename = {SIGNALS_TOPIC: signals}
    lanes: list[Lane] = []
    for proc in all_processors():
        if proc.name in LANES:
            lanes.append(Lane(s.kafka_bootstrap, app_id, data_dir, rename, engine_source(app_id, ENGINE_ID),
                              proc=proc, replication=(s.kafka_replication, s.kafka_min_insync)))
        else:
            _wire(app, proc, rename, engine_source(app_id, ENGINE_ID))
    app.lanes = tuple(lanes)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    async def health_page(web: Any, request: Any) -> Any:
        running = {lane.name: lane.consumer is not None and not lane.failed for lane in lanes}
        ok = all(running.values()) and not app.consumer.should_stop
        detail = {"engine": app_id, "lanes": {lane.name: {"running": running[lane.name], "processed": lane.processed}
                                              for lane in lanes}}
        return web.bytes(metrics.health(ok, detail), content_type="application/json",
                         status=200 if ok else 503)

    @app.page("/readyz")
    async def ready_page(web: Any, request: Any) -> Any:
        # Ready = every lane holds its assignment, restored, and Faust's agents have theirs
        # with their tables recovered (Faust ends a rebalance after recovery). Events sent
        # before that wait for it: load tools start their clocks here, not at Faust's
        # "Worker ready", which comes before any assignment.
        lanes_ready = {lane.name: lane.ready and not lane.failed for lane in lanes}
        agents_ready = app.rebalancing_count > 0 and not app.rebalancing
        ok = all(lanes_ready.values()) and agents_ready and not app.consumer.should_stop
        detail = {"engine": app_id, "agents": agents_ready, "lanes": lanes_ready}
        return web.bytes(metrics.health(ok, detail), content_type="application/json",
                         status=200 if ok else 503)

    return app


BATCH_SIZE = 1000
BATCH_WINDOW_S = 0.05


@contextmanager
def event_context(event: EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event (the partition tables and sends act on)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class BatchStore(MutableMapping[str, Any]):
    """A write-back cache over a Faust table for one batch.

    Reads fall through to the table; writes stay here until :meth:`flush`, which writes
    each key once, under the event that last changed it: one changelog record per key
    per batch instead of one per event.
    """

    def __init__(self, table: faust.Table) -> None:
        self.table = table
        self.local: dict[str, Any] = {}
        self.owner: dict[str, EventT] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self.local:
            return self.local[key]
        return self.table[key]

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.local:
            return self.local[key]
        # The store directly: Faust's Table.get adds sensor bookkeeping per read.
        value = self.table.data.get(key)
        return default if value is None else value

    def __setitem__(self, key: str, value: Any) -> None:
        event = current_event()
        if event is None:
            raise RuntimeError("BatchStore written outside an event context")
        self.local[key] = value
        # The key's partition is the partition of the event that wrote it.
        self.owner[key] = event

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError("processors never delete state")

    def __iter__(self) -> Iterator[str]:
        return iter(self.local)

    def __len__(self) -> int:
        return len(self.local)

    def touched(self) -> list[tuple[str, EventT]]:
        return list(self.owner.items())

    def flush(self) -> None:
        for key, value in self.local.items():
            with event_context(self.owner[key]):
                self.table[key] = value
        self.local.clear()
        self.owner.clear()


def _wire(app: faust.App, proc: Processor, rename: dict[str, str], engine: str | None) -> None:
    partitions = BY_NAME[proc.topics[0]].partitions
    if any(BY_NAME[t].partitions != partitions for t in proc.topics):
        raise ValueError(f"{proc.name}: its topics must be co-partitioned: {proc.topics}")
    table = app.Table(proc.name, partitions=partitions,
                      schema=faust.Schema(key_serializer="orjson", value_serializer="orjson"))
    # The changelog is created with ``partitions`` and the sources are checked above, so
    # Faust's own check is redundant, and it is wrong in a window after the changelog is
    # created: the consumer's metadata then counts 0 partitions, and the first table
    # write raised PartitionsMismatch and stopped the worker (seen in CI, 2026-11-29).
    table._verified_source_topics_for_partitions.update(rename.get(t, t) for t in proc.topics)
    source = app.topic(*(rename.get(t, t) for t in proc.topics), key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw", partitions=partitions)

    producer = app.producer

    async def agent(stream: faust.StreamT) -> None:
        # Batches amortise Faust's per-event cost. Each record runs under its own event
        # context, so table reads and changelog partitions belong to its partition. Order
        # of effects: outputs are produced and acknowledged first, then the batch's state
        # goes to the changelog, then (later, by Faust) the offsets are committed. A crash
        # at any point therefore loses no output: the inputs are read again and, the
        # processors being deterministic, the same outputs are produced again.
        store = BatchStore(table)
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_WINDOW_S):
            try:
                await handle(store, events)
            except Exception:
                fail_stop(f"agent {proc.name}")

    async def handle(store: BatchStore, events: list[EventT]) -> None:
        acks = []
        observed: list[tuple[str, dict, int | None]] = []
        for event in events:
            msg = event.message
            topic = SIGNALS_TOPIC if msg.topic.startswith(SIGNALS_TOPIC) else msg.topic
            with event_context(event):
                outs = proc.process(store, topic, msg.key, msg.value, msg.partition, msg.offset)
            metrics.EVENTS_IN.labels(msg.topic).inc()
            if outs:
                trace = metrics.trace_headers(msg.headers)
                origin = metrics.origin_ns(trace)
                for out in outs:
                    # A signal carries its cause's timestamp: stage 2 merges signals with the
                    # ledger by the time of their inputs (streams/fastlane.py).
                    acks.append(await producer.send(
                        rename.get(out.topic, out.topic), out.key.encode(), encode_output(out, engine),
                        partition=None, timestamp=msg.timestamp if out.topic == SIGNALS_TOPIC else None,
                        headers=trace))
                    observed.append((out.topic, out.value, origin))
        if acks:
            await asyncio.gather(*acks)
            metrics.observe_outputs(observed)
        store.flush()

    app.agent(source, name=f"creditstream.{proc.name}")(agent)


__all__ = ["create_app"]
