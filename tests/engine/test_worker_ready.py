"""The worker's /readyz: 200 only once every lane holds its assignment, restored. Load tools start their clocks there; Faust's "Worker ready" line
comes before any partition is assigned, and events sent then waited for the rebalance
(the README's load example missed its p99 in the first seconds, issue 13)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid

import orjson
import pytest

from connectors.kafka_io import start_at_end
from load.workers import Worker, free_port
from schemas import config
from streams.fastlane import engine_groups
from streams.processors import all_processors

pytestmark = pytest.mark.integration


def test_readyz_answers_once_every_lane_is_assigned(tmp_path) -> None:
    settings = config.load()
    app_id = f"cs-ready-{uuid.uuid4().hex[:8]}"
    asyncio.run(start_at_end(settings.kafka_bootstrap, engine_groups(app_id)))
    worker = Worker(app_id, "r1", tmp_path / "r1", web_port=free_port())
    worker.start()
    try:
        deadline = time.monotonic() + 90
        while not worker.ready():
            assert time.monotonic() < deadline, f"not ready in 90 s; log {worker.log}"
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/readyz", timeout=5) as resp:
            body = orjson.loads(resp.read())
        assert body["status"] == "ok"
        # ... and the worker said so on its terminal, with the address (issue 14).
        deadline = time.monotonic() + 10
        while b"worker ready: engine " + app_id.encode() not in worker.log.read_bytes():
            assert time.monotonic() < deadline, "no ready line"
            time.sleep(0.2)
        assert f"http://127.0.0.1:{worker.web_port}/readyz".encode() in worker.log.read_bytes()
        assert body["lanes"] == {p.name: True for p in all_processors()}
    finally:
        worker.stop()
