"""End-to-end latency, throughput, lag and errors of a load run.

The generator stamps each input with ``cs-origin-ns`` (wall clock at send); the engine
copies it onto every output the input causes. The :class:`Collector` reads the engine's
outputs (its signals topic, ``cs.limits``, ``cs.alerts``, ``cs.deadletter``) and records
``read time - origin`` in HDR histograms, per output kind and per second.
:class:`LagSampler` asks the broker for the engine group's committed offsets against the
end offsets of its input topics: consumer lag, and a timer-free count of what the engine
has processed. Shared topics carry other runs' records too, so only records whose key (or
dead-lettered original) carries the run's tag are counted.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from hdrh.histogram import HdrHistogram

from load.generator import new_histogram
from schemas.topics import ALERTS_TOPIC, DEADLETTER_TOPIC, INPUT_TOPICS, LIMITS_TOPIC, signals_topic

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
SERIES = ("all", "signal", "telemetry_signal", "limit", "alert")


def summarise(h: HdrHistogram) -> dict[str, float]:
    """Count and percentiles in milliseconds."""
    if h.get_total_count() == 0:
        return {"count": 0}
    out: dict[str, float] = {"count": h.get_total_count(), "mean": round(h.get_mean_value() / 1000, 3)}
    for p in PERCENTILES:
        out[f"p{p:g}"] = h.get_value_at_percentile(p) / 1000
    out["max"] = h.get_max_value() / 1000
    return out


def percentile_curve(h: HdrHistogram) -> list[tuple[float, float]]:
    """(percentile, ms) points from p0 to p99.999 and max, for the report's curve."""
    if h.get_total_count() == 0:
        return []
    points = []
    for p in (0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999):
        points.append((float(p), h.get_value_at_percentile(p) / 1000))
    points.append((100.0, h.get_max_value() / 1000))
    return points


@dataclass
class Second:
    """Outputs read in one second of the run and their latency figures."""

    counts: Counter[str] = field(default_factory=Counter)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0


class LatencyRecorder:
    """Pure bookkeeping: latencies per series, per second, dead letters and alerts."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.hist = {s: new_histogram() for s in SERIES}
        self.seconds: dict[int, Second] = {}
        self._second = -1
        # Per-second figures need little precision; a small histogram reset every second.
        self._current = HdrHistogram(1, 3_600_000_000, 2)
        self.deadletters: Counter[str] = Counter()
        self.deadletter_samples: list[dict[str, Any]] = []
        self.alerts: Counter[str] = Counter()
        self.untraced = 0

    def _roll(self, second: int) -> Second:
        if second != self._second:
            self._close()
            self._second = second
        return self.seconds.setdefault(second, Second())

    def _close(self) -> None:
        if self._second >= 0 and self._current.get_total_count():
            s = self.seconds[self._second]
            s.p50_ms = self._current.get_value_at_percentile(50) / 1000
            s.p99_ms = self._current.get_value_at_percentile(99) / 1000
            s.max_ms = self._current.get_max_value() / 1000
        self._current.reset()

    def record(self, series: str, origin_ns: int | None, read_ns: int) -> None:
        """One output read at ``read_ns``; ``series`` is signal, telemetry_signal, limit or alert."""
        sec = self._roll(int(read_ns / 1e9 - self.t0))
        sec.counts[series] += 1
        if origin_ns is None:
            self.untraced += 1
            return
        us = max(1, min(3_600_000_000, (read_ns - origin_ns) // 1000))
        self.hist[series].record_value(us)
        if series == "telemetry_signal":
            self.hist["signal"].record_value(us)
        self.hist["all"].record_value(us)
        self._current.record_value(us)

    def dead_letter(self, reason: str, sample: dict[str, Any], read_ns: int) -> None:
        self._roll(int(read_ns / 1e9 - self.t0)).counts["deadletter"] += 1
        self.deadletters[reason] += 1
        if len(self.deadletter_samples) < 20:
            self.deadletter_samples.append(sample)

    def alert(self, code: str) -> None:
        self.alerts[code] += 1

    def finish(self) -> None:
        self._close()

    def summary(self) -> dict[str, Any]:
        self.finish()
        return {
            "latency_ms": {s: summarise(h) for s, h in self.hist.items()},
            "percentile_curve": {s: percentile_curve(h) for s, h in self.hist.items() if s in ("all", "limit")},
            "deadletters": {"count": sum(self.deadletters.values()), "reasons": dict(self.deadletters),
                            "samples": self.deadletter_samples},
            "alerts": dict(self.alerts),
            "untraced_outputs": self.untraced,
        }


def _origin(headers: Any) -> int | None:
    from streams.metrics import origin_ns

    return origin_ns(headers)
    return None


class Collector:
    """Reads the engine's outputs of one run (by ``tag``) into a :class:`LatencyRecorder`."""

    def __init__(self, bootstrap: str, app_id: str, tag: str, recorder: LatencyRecorder) -> None:
        from streams.processors import engine_source

        self.bootstrap, self.app_id, self.tag, self.rec = bootstrap, app_id, tag.encode(), recorder
        self.signals = signals_topic(app_id)
        # Another engine reading the same inputs (a test worker, a shadow policy) publishes
        # for the run's borrowers on the shared output topics too: only this engine's
        # envelopes count. The default engine does not name itself, so it takes them all.
        source = engine_source(app_id)
        self.marker = b'"source":' + orjson.dumps(source) if source else b""
        self.consumer: AIOKafkaConsumer | None = None
        self.read = 0

    async def open(self) -> None:
        """Pin the end offsets now: outputs written before the run are never counted."""
        c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None,
                             fetch_max_wait_ms=50, max_partition_fetch_bytes=4 * 1024 * 1024)
        await c.start()
        cluster = await c._client.fetch_all_metadata()  # noqa: SLF001 - no public API
        topics = (self.signals, LIMITS_TOPIC, ALERTS_TOPIC, DEADLETTER_TOPIC)
        tps = [TopicPartition(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())]
        missing = set(topics) - {tp.topic for tp in tps}
        if missing:
            await c.stop()
            raise LookupError(f"topics not found: {sorted(missing)} (is the engine running with this app id?)")
        c.assign(tps)
        for tp, off in (await c.end_offsets(tps)).items():
            c.seek(tp, off)
        self.consumer = c

    async def close(self) -> None:
        if self.consumer:
            await self.consumer.stop()

    async def poll(self, timeout_ms: int = 200) -> int:
        """Read what is there; returns the number of this run's outputs recorded."""
        assert self.consumer is not None, "open() first"
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        now = time.time_ns()
        n = 0
        tag = self.tag
        for tp, msgs in batch.items():
            topic = tp.topic
            for m in msgs:
                key = m.key or b""
                if self.marker and topic != self.signals and self.marker not in m.value:
                    continue
                if topic == DEADLETTER_TOPIC:
                    n += self._dead_letter(key, m.value, m.headers, now)
                    continue
                if tag not in key:
                    continue
                n += 1
                if topic == self.signals:
                    kind = orjson.loads(m.value).get("kind")
                    series = "telemetry_signal" if kind in ("machine", "machine_released") else "signal"
                elif topic == LIMITS_TOPIC:
                    series = "limit"
                else:
                    series = "alert"
                    self.rec.alert(orjson.loads(m.value).get("payload", {}).get("code", "?"))
                self.rec.record(series, _origin(m.headers), now)
        self.read += n
        return n

    def _dead_letter(self, key: bytes, value: bytes, headers: Any, now: int) -> int:
        try:
            payload = orjson.loads(value)["payload"]
            original = base64.b64decode(payload.get("value_b64") or "")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return 0
        if self.tag not in key and self.tag not in original:
            return 0
        self.rec.dead_letter(payload.get("reason", "?"), {
            "topic": payload.get("topic"), "reason": payload.get("reason"),
            "error": str(payload.get("error", ""))[:300]}, now)
        return 1


@dataclass
class LagSample:
    lag: int  # records on the input topics the engine group has not committed yet
    by_topic: dict[str, int]
    committed: dict[TopicPartition, int]


class LagSampler:
    """Consumer lag of the engine's groups on its input topics, from the broker's figures.

    Each input topic is consumed by one of the groups; per partition the furthest
    committed offset of any group counts, so a group that stopped reading a topic (its
    offsets left where they were) does not show as lag.
    """

    def __init__(self, bootstrap: str, app_id: str, groups: list[str] | None = None) -> None:
        from streams.fastlane import engine_groups

        self.bootstrap = bootstrap
        self.groups = groups or engine_groups(app_id)
        self.topics = (*INPUT_TOPICS, signals_topic(app_id))
        self.admin: Any = None
        self.consumer: AIOKafkaConsumer | None = None
        self.tps: list[TopicPartition] = []

    async def open(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self.admin.start()
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        await self.consumer.start()
        await self._partitions()

    async def _partitions(self) -> None:
        assert self.consumer is not None
        cluster = await self.consumer._client.fetch_all_metadata()  # noqa: SLF001 - no public API
        self.tps = [TopicPartition(t, p) for t in self.topics for p in sorted(cluster.partitions_for_topic(t) or ())]

    async def close(self) -> None:
        if self.consumer:
            await self.consumer.stop()
        if self.admin:
            await self.admin.close()

    async def sample(self) -> LagSample:
        assert self.consumer is not None
        if len({tp.topic for tp in self.tps}) < len(self.topics):
            # The engine's signals topic appears with its first signal: until it is in
            # the figures, "caught up" would ignore stage 2's backlog.
            await self._partitions()
        ends = await self.consumer.end_offsets(self.tps)
        committed: dict[TopicPartition, int] = {}
        for group in self.groups:
            got = await self.admin.list_consumer_group_offsets(group, partitions=self.tps)
            for tp, o in got.items():
                if o is not None and o.offset > committed.get(tp, -1):
                    committed[tp] = o.offset
        by_topic: dict[str, int] = {}
        for tp in self.tps:
            # No commit yet: the engine reads the partition from its start (earliest).
            lag = max(0, ends[tp] - committed.get(tp, 0))
            by_topic[tp.topic] = by_topic.get(tp.topic, 0) + lag
        return LagSample(sum(by_topic.values()), by_topic, committed)


def remaining(sample: LagSample, high: dict[str, dict[str, int]]) -> int:
    """Records up to ``high`` (see :func:`caught_up`) the engine has not committed past."""
    return sum(max(0, off + 1 - max(sample.committed.get(TopicPartition(topic, int(part)), 0), 0))
               for topic, parts in high.items() for part, off in parts.items())


def caught_up(sample: LagSample, high: dict[str, dict[str, int]]) -> bool:
    """Whether the engine committed past every record the generator had acknowledged.

    ``high`` is topic -> partition -> last acknowledged offset (the generator's summary).
    A committed offset is the next one to read, so it must exceed the last offset sent.
    """
    for topic, parts in high.items():
        for part, off in parts.items():
            if sample.committed.get(TopicPartition(topic, int(part)), -1) <= off:
                return False
    return True
