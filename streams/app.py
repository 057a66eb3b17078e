"""The Faust worker: the processors of streams/processors.py wired to topics and tables.

One agent per processor; each agent's table is co-partitioned with its source topics and
backed by RocksDB (rocksdict) with a changelog topic for recovery. Outputs are sent with
``topic.send`` inside the stream, which Faust attaches to the source offset: they are
published before that offset is committed (at-least-once). Stage 2 de-duplicates by
asset sequence and event id, and every limit update carries a per-borrower version, so a
redelivery never reaches a lender as a new decision.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.serializers import codecs

from creditstream import config
from schemas.topics import BY_NAME
from streams.domain.signals import SIGNALS_TOPIC
from streams.processors import Processor, all_processors, encode_output

log = logging.getLogger(__name__)


class OrjsonCodec(codecs.Codec):
    """Table values are plain JSON-able dicts; orjson is several times faster than json."""

    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


codecs.register("orjson", OrjsonCodec())


ENGINE_ID = "creditstream-engine"


def signals_topic(app_id: str) -> str:
    return SIGNALS_TOPIC if app_id == ENGINE_ID else f"{SIGNALS_TOPIC}.{app_id}"


def create_app(worker_id: str = "w1", web_port: int | None = None, data_dir: Path | None = None,
               settings: config.Settings | None = None, app_id: str = ENGINE_ID) -> faust.App:
    """The engine app. ``app_id`` names the consumer group and the changelog topics: every
    worker of one engine shares it; a test or a shadow engine uses its own."""
    s = settings or config.load()
    data_dir = data_dir or s.state_dir / "workers" / worker_id
    data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=f"kafka://{s.kafka_bootstrap}",
        store="rocksdb://",
        datadir=str(data_dir),
        processing_guarantee="at_least_once",
        producer_acks=-1,
        topic_partitions=4,
        topic_replication_factor=1,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_bind="127.0.0.1",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
    )
    # Stage 1 -> stage 2 is internal to one engine: another engine id (a test, a bench, a
    # shadow policy) gets its own signals topic so the engines never read each other's.
    signals = signals_topic(app_id)
    rename = {SIGNALS_TOPIC: signals}
    for proc in all_processors():
        _wire(app, proc, rename)
    return app


ORIGIN_HEADER = "cs-origin-ns"


def origin_header(headers: Any) -> list[tuple[str, bytes]] | None:
    """The producer's timestamp header, copied onto every output an input causes, so
    end-to-end latency can be measured from source event to limit update."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    for k, v in items:
        if k == ORIGIN_HEADER:
            return [(k, v)]
    return None


def _wire(app: faust.App, proc: Processor, rename: dict[str, str]) -> None:
    partitions = BY_NAME[proc.topics[0]].partitions
    table = app.Table(proc.name, partitions=partitions,
                      schema=faust.Schema(key_serializer="orjson", value_serializer="orjson"))
    source = app.topic(*(rename.get(t, t) for t in proc.topics), key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw", partitions=partitions)
    sinks: dict[str, faust.TopicT] = {}

    def sink(name: str) -> faust.TopicT:
        if name not in sinks:
            sinks[name] = app.topic(rename.get(name, name), key_type=bytes, value_type=bytes,
                                    key_serializer="raw", value_serializer="raw",
                                    partitions=BY_NAME[name].partitions)
        return sinks[name]

    async def agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            trace = origin_header(msg.headers)
            topic = SIGNALS_TOPIC if msg.topic.startswith(SIGNALS_TOPIC) else msg.topic
            for out in proc.process(table, topic, msg.key, msg.value, msg.partition, msg.offset):
                await sink(out.topic).send(key=out.key.encode(), value=encode_output(out),
                                           headers=trace)

    app.agent(source, name=f"creditstream.{proc.name}")(agent)


__all__ = ["create_app"]
