"""The worker: a Faust application whose processing runs on lanes.

Faust is the application: the worker process and its lifecycle, signals, logging, the
web server (``/metrics``, ``/healthz``, ``/readyz``) and sensors. Every processor of
streams/processors.py runs on a lane (streams/fastlane.py) inside it: stage 1 (machines,
invoices, orders, the registry) and stage 2 (facilities), each an aiokafka consumer with
its state in RocksDB and a compacted changelog. Per batch, outputs are produced and
acknowledged before state is written, and offsets are committed after both
(at-least-once); stage 2 de-duplicates by asset sequence and event id, and every limit
update carries a per-borrower version, so a redelivery never reaches a lender as a new
decision.

Invoices and orders ran as Faust agents until 2026-12-01. Under a rebalance with
business events flowing, the invoices agent skipped a record: `invoice.paid` at
cs.invoices-1 offset 1839 was never applied (no state change, no signal, no dead
letter) while 1838 and 1840 were, and the borrower kept a paid invoice in its limit
(chaos rebalance, seed 101; faust-streaming has a history of such gaps on rebalance,
faust-streaming/faust#216, #221, #312). Lanes commit explicit offsets after their
effects and drop revoked partitions whole, so they run every processor now.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import faust

from schemas import config
from schemas.topics import (
    ENGINE_ID,
    POOLS_TOPIC,
    SIGNALS_TOPIC,
    pools_topic,
    shadow_topics,
    signals_topic,
)
from streams import metrics
from streams.fastlane import Lane
from streams.processors import all_processors, engine_source

log = logging.getLogger(__name__)


class EngineApp(faust.App):
    """The Faust app, plus the lanes started with it (``on_start``, so that a new host's
    restore begins at once rather than after Faust's own start-up)."""

    lanes: tuple[Lane, ...] = ()
    _lanes_started = False
    web_address: str | None = None

    async def on_start(self) -> None:
        await super().on_start()
        if not self._lanes_started:  # on_start runs again if the app restarts
            self._lanes_started = True
            for lane in self.lanes:
                self.add_future(lane.run())
            self.add_future(self._say_when_ready())

    async def on_stop(self) -> None:
        # The lanes first, each between two batches (Lane.stop), while the app's futures,
        # the lanes' run() among them, are still running: Faust cancels them afterwards.
        await asyncio.gather(*(lane.stop() for lane in self.lanes))
        await super().on_stop()

    async def _say_when_ready(self) -> None:
        """One line on stdout once every lane holds its assignment, restored: what an
        operator watching the terminal waits for (Faust's own output is a banner)."""
        await asyncio.gather(*(lane.first_ready.wait() for lane in self.lanes))
        web = f", {self.web_address}/readyz" if self.web_address else ""
        # The process's own stdout: Faust turns print() into WARNING log records.
        print(f"worker ready: engine {self.conf.id}, lanes {', '.join(lane.name for lane in self.lanes)}{web}",
              file=sys.__stdout__, flush=True)


def create_app(worker_id: str = "w1", web_port: int | None = None, data_dir: Path | None = None,
               settings: config.Settings | None = None, app_id: str = ENGINE_ID,
               shadow: str | None = None) -> faust.App:
    """The engine app. ``app_id`` names the consumer groups (``<app_id>-<lane>``) and the
    changelog topics: every worker of one engine shares it; a test or a shadow engine
    uses its own. ``shadow`` (a policy version) makes it a shadow engine: every decision
    under that version, published to its own topics (schemas.topics.shadow_topics)."""
    s = settings or config.load()
    data_dir = data_dir or s.state_dir / "workers" / worker_id
    data_dir.mkdir(parents=True, exist_ok=True)
    app = EngineApp(
        app_id,
        broker=f"kafka://{s.kafka_bootstrap}",
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
        consumer_auto_offset_reset="earliest",
        # A killed worker's partitions move to the others (or to it, restarted) after
        # this session timeout, so it bounds the recovery time (the lanes use the same).
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        # A fleet's facility state or limit update can exceed 1 MB; the broker takes 4 MB.
        producer_max_request_size=4 * 1024 * 1024,
    )
    # Stage 1 -> stage 2 is internal to one engine: another engine id (a test, a bench, a
    # shadow policy) gets its own signals topic so the engines never read each other's.
    rename = {SIGNALS_TOPIC: signals_topic(app_id), POOLS_TOPIC: pools_topic(app_id),
              **(shadow_topics(app_id) if shadow else {})}
    lanes = [Lane(s.kafka_bootstrap, app_id, data_dir, rename, engine_source(app_id, ENGINE_ID),
                  proc=proc, replication=(s.kafka_replication, s.kafka_min_insync))
             for proc in all_processors(shadow)]
    app.lanes = tuple(lanes)
    app.web_address = f"http://127.0.0.1:{web_port}" if web_port else None

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    async def health_page(web: Any, request: Any) -> Any:
        running = {lane.name: lane.consumer is not None and not lane.failed for lane in lanes}
        ok = all(running.values())
        detail = {"engine": app_id, "lanes": {lane.name: {"running": running[lane.name], "processed": lane.processed}
                                              for lane in lanes}}
        return web.bytes(metrics.health(ok, detail), content_type="application/json",
                         status=200 if ok else 503)

    @app.page("/readyz")
    async def ready_page(web: Any, request: Any) -> Any:
        # Ready = every lane holds its assignment, restored. Events sent before that wait
        # for it: load tools start their clocks here, not at Faust's "Worker ready",
        # which comes before any assignment.
        ready = {lane.name: lane.ready and not lane.failed for lane in lanes}
        detail = {"engine": app_id, "lanes": ready}
        return web.bytes(metrics.health(all(ready.values()), detail), content_type="application/json",
                         status=200 if all(ready.values()) else 503)

    if shadow:
        import orjson

        from streams import shadow as shadow_view

        @app.page("/shadow/divergences")
        async def divergences_page(web: Any, request: Any) -> Any:
            # Today's borrowers whose champion and shadow decisions differ (docs/policy-lab.md).
            q = request.query
            try:
                body = await shadow_view.divergences_json(s.kafka_bootstrap, app_id, q.get("champion"), q.get("day"))
            except ValueError as exc:  # a day that is not YYYY-MM-DD
                return web.bytes(orjson.dumps({"error": str(exc)}), content_type="application/json", status=400)
            return web.bytes(body, content_type="application/json")

    return app


__all__ = ["create_app", "signals_topic", "ENGINE_ID"]
