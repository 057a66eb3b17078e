"""The operators page's figures: the engine's health from its ``/metrics``, consumer lag
per group from Kafka, and the calling lender's webhook delivery failures.

Engine figures are aggregates (rates, lag, dead letters by reason code): they name no
borrower, tenant or lender, so any signed-in lender may see them. Webhook failures are
the caller's own deliveries only, like every other read of the lender API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from connectors.lenders.repo import Conn

log = logging.getLogger(__name__)
# Counters whose rate per second the page shows: (metric sample name, label to group by).
RATES = {"events_in": "creditstream_events_in_total", "decisions": "creditstream_decisions_total",
         "alerts": "creditstream_alerts_total", "dead_letters": "creditstream_dead_letters_total"}


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus exposition text as {sample name: [(labels, value)]}."""
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name].append((dict(s.labels), float(s.value)))
    return dict(out)


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(v for _, v in samples.get(name, ()))


def by_label(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
             label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for labels, v in samples.get(name, ()):
        out[labels.get(label, "")] += v
    return dict(sorted(out.items()))


def p99_ms(samples: dict[str, list[tuple[dict[str, str], float]]], output: str = "limit") -> float | None:
    """The 99th percentile of end-to-end latency from the histogram's buckets (an upper
    bound: the smallest bucket holding 99% of observations), or None without data."""
    buckets = sorted((float(lb["le"]), v) for lb, v in samples.get("creditstream_e2e_latency_seconds_bucket", ())
                     if lb.get("output") == output)
    if not buckets or buckets[-1][1] <= 0:
        return None
    want = 0.99 * buckets[-1][1]
    for le, count in buckets:
        if count >= want:
            return None if le == float("inf") else round(le * 1000, 1)
    return None


@dataclass
class EngineScraper:
    """Scrapes the workers' ``/metrics`` and turns counters into per-second rates since
    the previous scrape (kept here: the page polls, and a rate needs two samples)."""

    urls: list[str]
    timeout_s: float = 2.0
    _previous: tuple[float, dict[str, float]] | None = field(default=None, repr=False)

    async def scrape(self) -> dict[str, Any]:
        merged: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        workers = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as http:
            for url in self.urls:
                try:
                    async with http.get(url) as r:
                        r.raise_for_status()
                        for name, s in parse(await r.text()).items():
                            merged[name].extend(s)
                    workers.append({"url": url, "up": True, "error": None})
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    workers.append({"url": url, "up": False, "error": str(exc) or type(exc).__name__})
        now = time.monotonic()
        counters = {k: total(merged, name) for k, name in RATES.items()}
        rates: dict[str, float | None] = dict.fromkeys(RATES)
        up = any(w["up"] for w in workers)
        if up and self._previous is not None and now > self._previous[0]:
            dt = now - self._previous[0]
            # A restarted worker starts its counters at 0: no negative rate, just no rate.
            rates = {k: (round((v - self._previous[1][k]) / dt, 2) if v >= self._previous[1][k] else None)
                     for k, v in counters.items()}
        if up:
            self._previous = (now, counters)
        return {
            "workers": workers, "up": up, "totals": counters, "per_second": rates,
            "events_in_by_topic": by_label(merged, "creditstream_events_in_total", "topic"),
            "dead_letters_by_reason": by_label(merged, "creditstream_dead_letters_total", "reason"),
            "alerts_by_code": by_label(merged, "creditstream_alerts_total", "code"),
            "latency_p99_ms": p99_ms(merged),
        }


async def consumer_lag(bootstrap: str, prefixes: list[str], timeout_s: float = 5.0) -> dict[str, Any]:
    """Records behind the end of their topics, per consumer group whose name starts with
    one of ``prefixes`` (an engine's lanes are groups named after its app id)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    async def measure() -> list[dict[str, Any]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
        await admin.start()
        try:
            await consumer.start()
            groups = sorted({g[0] for g in await admin.list_consumer_groups()
                             if any(g[0].startswith(p) for p in prefixes)})
            out = []
            for group in groups:
                committed = await admin.list_consumer_group_offsets(group)
                ends = await consumer.end_offsets(list(committed)) if committed else {}
                lag = sum(max(0, ends[tp] - m.offset) for tp, m in committed.items() if m.offset >= 0)
                out.append({"group": group, "lag": lag, "partitions": len(committed)})
            return out
        finally:
            await consumer.stop()
            await admin.close()

    try:
        return {"groups": await asyncio.wait_for(measure(), timeout_s * 2), "error": None}
    except Exception as exc:  # noqa: BLE001 - the page says Kafka is unreachable, never 500s
        log.warning("operators: consumer lag unavailable: %r", exc)
        return {"groups": [], "error": f"Kafka unreachable at {bootstrap}: {type(exc).__name__}"}


async def webhook_failures(conn: Conn, lender_id: str, hours: int = 24) -> dict[str, Any]:
    """The lender's own webhook attempts of the last ``hours`` by status, its dead letters,
    and its latest failed attempts."""
    counts = await conn.fetch(
        "SELECT status, count(*) AS n FROM webhook_deliveries WHERE lender_id = $1"
        " AND finished_at > now() - make_interval(hours => $2) GROUP BY status", lender_id, hours)
    dead = await conn.fetchval("SELECT count(*) FROM webhook_dead_letters WHERE lender_id = $1", lender_id)
    recent = await conn.fetch(
        "SELECT borrower_id, version, attempt, status, response_code, error, finished_at"
        " FROM webhook_deliveries WHERE lender_id = $1 AND status <> 'delivered'"
        " ORDER BY id DESC LIMIT 10", lender_id)
    return {
        "hours": hours,
        "attempts": {r["status"]: r["n"] for r in counts},
        "dead_letters": dead,
        "recent_failures": [{**dict(r), "finished_at": r["finished_at"].isoformat()} for r in recent],
    }
