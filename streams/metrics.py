"""Prometheus metrics of a worker: what operators watch and the load report reads.

Series (all prefixed ``creditstream_``): events in by topic, dead letters by reason,
limit decisions out, alerts out, end-to-end latency from the producer's ``cs-origin-ns``
header to the acknowledged output, consumer lag of the fast lane, state keys per table.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from schemas.topics import ALERTS_TOPIC, LIMITS_TOPIC, POOLS_TOPIC, SIGNALS_TOPIC

REGISTRY = CollectorRegistry()
EVENTS_IN = Counter("creditstream_events_in_total", "Input records processed", ["topic"], registry=REGISTRY)
DEAD_LETTERS = Counter("creditstream_dead_letters_total", "Records refused to the dead-letter topic",
                       ["reason"], registry=REGISTRY)
DECISIONS = Counter("creditstream_decisions_total", "Limit updates published", registry=REGISTRY)
ALERTS = Counter("creditstream_alerts_total", "Alerts published", ["code"], registry=REGISTRY)
LATENCY = Histogram("creditstream_e2e_latency_seconds",
                    "From the source event's produce time to its output's acknowledgement",
                    ["output"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LAG = Gauge("creditstream_consumer_lag", "Records behind the end of the partition", ["topic", "partition"],
            registry=REGISTRY)
# The risk-sharing pools a worker's pool stage holds (docs/credit-policy.md section 14).
POOL_COVERED = Gauge("creditstream_pool_covered", "Exposure a risk-sharing pool covers", ["pool"], registry=REGISTRY)
POOL_CAPACITY = Gauge("creditstream_pool_capacity", "A risk-sharing pool's capacity (fund x leverage)", ["pool"],
                      registry=REGISTRY)
TABLE_KEYS = Gauge("creditstream_table_keys", "Estimated keys in a state store", ["table"], registry=REGISTRY)
ORIGIN_HEADER = "cs-origin-ns"


def observe_outputs(outputs: Iterable[tuple[str, dict[str, Any], int | None]]) -> None:
    """Count outputs once acknowledged; ``origin_ns`` is the trace header, if any."""
    now = time.time_ns()
    for topic, value, origin_ns in outputs:
        if topic.startswith(SIGNALS_TOPIC) or topic.startswith(POOLS_TOPIC):
            kind = "signal"  # internal: stage to stage
        elif topic == LIMITS_TOPIC:
            kind = "limit"
            DECISIONS.inc()
        elif topic == ALERTS_TOPIC:
            kind = "alert"
            ALERTS.labels(value.get("payload", {}).get("code", "?")).inc()
        else:
            kind = "deadletter"
            DEAD_LETTERS.labels(value.get("payload", {}).get("reason", "?")).inc()
        if origin_ns:
            LATENCY.labels(kind).observe(max(0.0, (now - origin_ns) / 1e9))


def trace_headers(headers: Iterable[tuple[str, bytes]] | dict[str, bytes] | None) -> list[tuple[str, bytes]] | None:
    """The producer's timestamp header, copied onto every output an input causes, so
    end-to-end latency can be measured from source event to limit update."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    found = [(k, v) for k, v in items if k == ORIGIN_HEADER]
    return found or None


def origin_ns(headers: Iterable[tuple[str, bytes]] | None) -> int | None:
    for k, v in headers or ():
        if k == ORIGIN_HEADER:
            try:
                return int(v)
            except ValueError:
                return None
    return None


def exposition() -> bytes:
    return generate_latest(REGISTRY)


def health(ok: bool, detail: dict[str, Any]) -> bytes:
    return orjson.dumps({"status": "ok" if ok else "failing", **detail})
