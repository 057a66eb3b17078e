"""The telemetry hot path on aiokafka directly, without Faust's per-message machinery.

docs/performance.md measured Faust's consumer-to-agent and changelog path at ~350 us per
event, against ~13 us for the stage-1 processor itself. This lane runs the same
:class:`MachineProcessor` over ``getmany`` batches, with its state in RocksDB (rocksdict,
one database per partition) and a compacted changelog topic for recovery, like a Kafka
Streams task:

1. outputs (signals, alerts, dead letters) are produced and acknowledged;
2. the batch's changed states are produced to the changelog and acknowledged, then put
   in the local database together with the changelog position;
3. the input offsets are committed.

A crash between any two steps re-reads the batch; the processor de-duplicates by event id
and is deterministic, so nothing is lost and a repeated output is identical.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError
from rocksdict import Options, Rdict, WriteBatch

from streams import metrics
from streams.processors import MachineProcessor, encode_output

log = logging.getLogger(__name__)
_OFFSET_KEY = b"\x00changelog-offset"


def fast_lane() -> bool:
    """On unless CREDITSTREAM_FASTLANE=0 (which runs machines as a Faust agent again)."""
    return os.environ.get("CREDITSTREAM_FASTLANE", "1") != "0"


def lane_group(app_id: str) -> str:
    """The consumer group of an engine's fast lane (its Faust agents use ``app_id``)."""
    return f"{app_id}-machines"


class PartitionStore(MutableMapping[str, Any]):
    """One partition's machine states: a RocksDB database plus this batch's writes."""

    def __init__(self, path: Path) -> None:
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        self.db = Rdict(str(path), options=opts)
        self.dirty: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self.dirty:
            return self.dirty[key]
        raw = self.db.get(key.encode())
        if raw is None:
            raise KeyError(key)
        return orjson.loads(raw)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: str, value: Any) -> None:
        self.dirty[key] = value

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError("machine state is never deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self.dirty)

    def __len__(self) -> int:
        return len(self.dirty)

    @property
    def changelog_offset(self) -> int:
        raw = self.db.get(_OFFSET_KEY)
        return int(raw) if raw else 0

    def apply(self, items: list[tuple[bytes, bytes]], next_offset: int) -> None:
        wb = WriteBatch(raw_mode=True)
        for key, value in items:
            wb.put(key, value)
        wb.put(_OFFSET_KEY, str(next_offset).encode())
        self.db.write(wb)

    def estimated_keys(self) -> int:
        return int(self.db.property_int_value("rocksdb.estimate-num-keys") or 0)

    def close(self) -> None:
        self.db.close()


class FastLane:
    """Stage 1 for machines: cs.telemetry + cs.pledges -> signals, alerts, dead letters."""

    def __init__(self, bootstrap: str, app_id: str, data_dir: Path, rename: dict[str, str],
                 source: str | None = None, max_records: int = 2000) -> None:
        self.source = source
        self.bootstrap = bootstrap
        self.group = lane_group(app_id)
        self.changelog = f"{app_id}-machines-changelog"
        self.data_dir = data_dir / "fastlane"
        self.rename = rename
        self.max_records = max_records
        self.proc = MachineProcessor()
        self.stores: dict[int, PartitionStore] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.processed = 0
        self.failed = False

    async def ensure_changelog(self, partitions: int) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            if self.changelog not in await admin.list_topics():
                await admin.create_topics([NewTopic(self.changelog, partitions, 1,
                                                    topic_configs={"cleanup.policy": "compact"})])
        finally:
            await admin.close()

    async def _restore(self, partition: int) -> None:
        """Bring the local database up to the end of its changelog partition."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store = self.stores.get(partition) or PartitionStore(self.data_dir / f"machines-{partition}.db")
        self.stores[partition] = store
        tp = TopicPartition(self.changelog, partition)
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                  max_poll_records=5000)
        await reader.start()
        try:
            reader.assign([tp])
            end = (await reader.end_offsets([tp]))[tp]
            start = store.changelog_offset
            if start >= end:
                return
            reader.seek(tp, start)
            restored = 0
            while True:
                batch = await reader.getmany(tp, timeout_ms=1000)
                msgs = batch.get(tp, [])
                if msgs:
                    store.apply([(m.key, m.value) for m in msgs], msgs[-1].offset + 1)
                    restored += len(msgs)
                if not msgs or msgs[-1].offset + 1 >= end:
                    break
            log.info("fastlane: restored %d machine states of partition %d", restored, partition)
        finally:
            await reader.stop()

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        lane = self

        class Rebalance(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                pass  # every batch is fully committed before the next poll

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                for p in sorted({tp.partition for tp in assigned}):
                    await lane._restore(p)

        await self.ensure_changelog(4)
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                         enable_idempotence=True, linger_ms=2,
                                         max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group,
                                         enable_auto_commit=False, auto_offset_reset="earliest",
                                         max_poll_records=self.max_records,
                                         fetch_max_bytes=32 * 1024 * 1024,
                                         partition_assignment_strategy=(RangePartitionAssignor,),
                                         session_timeout_ms=10000, heartbeat_interval_ms=3000)
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe(list(self.proc.topics), listener=Rebalance())
        try:
            while not (stopping and stopping.is_set()):
                batch = await self.consumer.getmany(timeout_ms=200, max_records=self.max_records)
                if not batch:
                    continue
                try:
                    await self._process(batch)
                except KafkaError as exc:
                    # The broker went away mid-batch: forget the batch's unwritten state and
                    # read it again from the committed offsets once the broker answers.
                    log.warning("fastlane: %r; re-reading the batch from committed offsets", exc)
                    await self._rewind()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Nothing was committed for the failed batch: stop the worker so that it is
            # read again after the restart (see streams.app.fail_stop).
            self.failed = True
            from streams.app import fail_stop

            fail_stop("fast lane")
        finally:
            await self.consumer.stop()
            await self.producer.stop()
            for store in self.stores.values():
                store.close()

    async def _rewind(self) -> None:
        assert self.consumer is not None
        for store in self.stores.values():
            store.dirty.clear()
        while True:
            try:
                for tp in self.consumer.assignment():
                    committed = await self.consumer.committed(tp)
                    if committed is None:
                        await self.consumer.seek_to_beginning(tp)
                    else:
                        self.consumer.seek(tp, committed)
                return
            except KafkaError as exc:
                log.warning("fastlane: waiting for the broker (%r)", exc)
                await asyncio.sleep(1.0)

    async def _process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        assert self.producer is not None and self.consumer is not None
        send = self.producer.send
        acks = []
        observed: list[tuple[str, dict, int | None]] = []
        touched: set[int] = set()
        for tp, msgs in batch.items():
            store = self.stores.get(tp.partition)
            if store is None:  # assigned without restore: cannot happen, but never guess
                await self._restore(tp.partition)
                store = self.stores[tp.partition]
            touched.add(tp.partition)
            for m in msgs:
                outs = self.proc.process(store, tp.topic, m.key, m.value, tp.partition, m.offset)
                if outs:
                    trace = metrics.trace_headers(m.headers)
                    origin = metrics.origin_ns(trace)
                    for out in outs:
                        acks.append(await send(self.rename.get(out.topic, out.topic),
                                               encode_output(out, self.source), key=out.key.encode(),
                                               headers=trace))
                        observed.append((out.topic, out.value, origin))
            self.processed += len(msgs)
            metrics.EVENTS_IN.labels(tp.topic).inc(len(msgs))
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - msgs[-1].offset - 1))
        if acks:
            await asyncio.gather(*acks)
            metrics.observe_outputs(observed)
        # State after outputs: a crash in between repeats outputs, never loses them.
        pending = []
        for p in touched:
            store = self.stores[p]
            for key, value in store.dirty.items():
                pending.append((p, key.encode(), orjson.dumps(value)))
        results = [await send(self.changelog, v, key=k, partition=p) for p, k, v in pending]
        metas = await asyncio.gather(*results) if results else []
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        last: dict[int, int] = {}
        for (p, k, v), meta in zip(pending, metas, strict=True):
            by_partition.setdefault(p, []).append((k, v))
            last[p] = max(last.get(p, 0), meta.offset + 1)
        for p in touched:
            store = self.stores[p]
            if p in by_partition:
                store.apply(by_partition[p], last[p])
            store.dirty.clear()
        metrics.TABLE_KEYS.labels("machines").set(sum(s.estimated_keys() for s in self.stores.values()))
        try:
            await self.consumer.commit()
        except CommitFailedError:
            # A rebalance took the partitions: their new owner re-reads this batch and,
            # the processor being idempotent, produces the same outputs.
            log.warning("fastlane: commit failed after a rebalance; the batch will be re-read")
