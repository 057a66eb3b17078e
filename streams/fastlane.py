"""The hot path on aiokafka directly, without Faust's per-message machinery.

docs/performance.md measured Faust's consumer-to-agent and changelog path at ~350 us per
event, against ~13 us for the stage-1 processor itself. A lane runs one processor (stage
1, :class:`MachineProcessor`, or stage 2, :class:`FacilityProcessor`) over ``getmany``
batches, with its state in RocksDB (rocksdict, one database per partition) and a
compacted changelog topic for recovery, like a Kafka Streams task:

1. outputs (signals, alerts, dead letters) are produced and acknowledged;
2. the batch's changed states are produced to the changelog and acknowledged, then put
   in the local database together with the changelog position;
3. the input offsets are committed.

A crash between any two steps re-reads the batch; the processor de-duplicates by event id
and is deterministic, so nothing is lost and a repeated output is identical.

Co-partitioned inputs (telemetry and pledges; signals and the ledger) are read in record
timestamp order, as Kafka Streams does: when a worker falls behind, a fetch returns whole
runs of one topic, and a reading processed before the pledge produced ahead of it would be
refused. Partition *n*'s records are therefore merged by timestamp, and held while a
co-partitioned input is known to have earlier records not yet fetched (bounded by
:data:`MAX_HOLD_S`). Stage 1 gives each signal the timestamp of the record that caused
it, so stage 2 orders signals and ledger events by the time of their inputs too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from connectors.kafka_io import group_offsets
from schemas.topics import BY_NAME, POOLS_TOPIC, SIGNALS_TOPIC
from streams import metrics
from streams.errors import LaneError
from streams.failstop import fail_stop
from streams.processors import MachineProcessor, Processor, encode_output

log = logging.getLogger(__name__)
_OFFSET_KEY = b"\x00changelog-offset"
_ADOPTING_KEY = b"\x00adopting"
# A partition's last batch of outputs, kept with its states (Processor.outbox).
OUTBOX_KEY = "\x00outbox"
# ... in chunks of at most this much output text, one changelog record each: kept as one
# record, a backlog's batch of large fleets' decisions outgrew the broker's message limit
# (message.max.bytes, 4 MB on the local stack), the broker refused it every time
# (MessageSizeTooLarge) and the lane re-read the same batch forever. A chunk holds one
# output at least.
OUTBOX_CHUNK_CHARS = 256 * 1024


def _outbox_key(chunk: int) -> str:
    return OUTBOX_KEY if chunk == 0 else f"{OUTBOX_KEY}.{chunk}"


def read_outbox(store: MutableMapping[str, Any]) -> list[list[Any]]:
    """The outputs recorded with a partition's states: its chunks up to the first empty
    or missing one (chunks past it are an older, longer outbox's, sent before)."""
    recorded: list[list[Any]] = []
    chunk = 0
    while part := store.get(_outbox_key(chunk)):
        recorded += part
        chunk += 1
    return recorded


def record_outbox(store: MutableMapping[str, Any], records: list[list[Any]]) -> None:
    """Record a batch's outputs (``[topic, key, value, headers, timestamp]``) with the
    partition's states, replacing the last batch's; nothing is written when both are empty."""
    chunks: list[list[list[Any]]] = []
    size = 0
    for rec in records:
        n = len(rec[2]) + 256  # the value, and room for topic, key and headers
        if not chunks or (chunks[-1] and size + n > OUTBOX_CHUNK_CHARS):
            chunks.append([])
            size = 0
        chunks[-1].append(rec)
        size += n
    for i, part in enumerate(chunks):
        store[_outbox_key(i)] = part
    end = _outbox_key(len(chunks))
    if store.get(end):  # ends the sequence: the last outbox had more chunks
        store[end] = []
# The longest a partition's fetched records wait for a co-partitioned input that may
# hold earlier records. Kafka Streams (KIP-695) waits without a bound for records known
# to be on the broker; this bound only ends the stall of an input that cannot be fetched
# at all. It was 2 s: on a loaded 2-core box a worker's fetch of the pledges took 2.5-4.2
# s, the readings went on without them and 374 of 200,000 were dead-lettered
# `unpledged_machine` (load bench, 2026-12-01 07:36): a limit wrong because the engine
# fell behind, which is what the hold is for.
MAX_HOLD_S = 30.0
# Fetched records kept per input partition before its fetching is paused.
MAX_BUFFERED = 20000
# A batch hands the event loop back at least this often while it is processed: the
# producer then sends the outputs so far, and the worker's other lanes take their turn.
# Without it a stage-2 batch of 2,000 first readings (~1 s of decisions) held every
# output, and stage 1, until its end: the first seconds of a load run (issue 13).
YIELD_EVERY_S = 0.005


# Every processor runs on a lane (streams/app.py says why invoices and orders moved off
# Faust agents); the registry's lane restores ~70k records/s where Faust's table did
# 1.3-4k/s (docs/memory-recovery.md).
LANES = ("registry", "machines", "invoices", "orders", "dealers", "receipts", "facilities", "pools")
# Records from stage to stage keep their cause's timestamp (see the module docstring).
STAGED = (SIGNALS_TOPIC, POOLS_TOPIC)


def lane_group(app_id: str, name: str = "machines") -> str:
    """The consumer group of one of an engine's lanes."""
    return f"{app_id}-{name}"


def processor_group(app_id: str, name: str) -> str:
    """The consumer group that commits processor ``name``'s input offsets."""
    return lane_group(app_id, name)


def lane_folder(data_dir: Path, name: str) -> Path:
    """Where lane ``name`` keeps its RocksDB databases (one a partition) in a worker's data
    folder; the machines lane keeps the folder it had as the first lane."""
    return data_dir / ("fastlane" if name == "machines" else f"lane-{name}")


def partition_databases(data_dir: Path, name: str) -> list[Path]:
    """The databases of lane ``name`` in a worker's data folder, by name."""
    return sorted(lane_folder(data_dir, name).glob(f"{name}-*.db"))


def lane_groups(app_id: str) -> list[str]:
    """Every lane group an engine may have (whether or not this worker runs them): a new
    engine id is positioned at the end of its inputs for all of them."""
    return [lane_group(app_id, n) for n in LANES]


def engine_groups(app_id: str) -> list[str]:
    """Every consumer group of one engine: Faust's (the app id) and its lanes'."""
    return [app_id, *lane_groups(app_id)]


class PartitionStore(MutableMapping[str, Any]):
    """One partition's states: a RocksDB database, a bounded cache of decoded states, and
    this batch's writes.

    The cache saves a RocksDB read and a JSON decode per event for the states in use
    (profiled at ~9% of the lane's time). Its bound is in bytes of the states' JSON, not
    in states: a facility's state grows with its fleet (50 machines make ~30 KB), and a
    bound in states let 20,000 facilities hold ~2.5 GB. It holds only states that are in
    the database as written; :meth:`discard` empties it whenever the database may have
    moved without it (a rewind after a broker error, a restore from the changelog)."""

    def __init__(self, path: Path, cache_bytes: int = 8 * 1024 * 1024) -> None:
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        # Memory per partition stays bounded whatever the number of keys: two memtables of
        # 16 MB (RocksDB's default is 64 MB, and a worker has a database per partition and
        # lane) plus the cache of decoded states (8 MB of JSON, ~4x that as Python objects).
        opts.set_write_buffer_size(16 * 1024 * 1024)
        opts.set_max_write_buffer_number(2)
        self.db = Rdict(str(path), options=opts)
        # No write-ahead log (~0.9 us a state): the changelog topic is the log. A crash
        # loses the memtable, states and the changelog offset of the same write batches
        # alike, so the restore re-reads the changelog from where the database stands.
        writes = WriteOptions()
        # rocksdict's stub declares a method; at run time it is a property (it is set here).
        writes.disable_wal = True  # type: ignore[method-assign, assignment]
        self.db.set_write_options(writes)
        self.dirty: dict[str, Any] = {}
        self.cache: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}  # JSON bytes of each cached state, oldest first
        self.cached_bytes = 0
        self.cache_bytes = cache_bytes

    def __getitem__(self, key: str) -> Any:
        value = self.dirty.get(key)
        if value is not None:
            return value
        value = self.cache.get(key)
        if value is not None:
            return value
        raw = self.db.get(key.encode())
        if raw is None:
            raise KeyError(key)
        value = orjson.loads(raw)
        self._remember(key, value, len(raw))
        return value

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: str, value: Any) -> None:
        self.dirty[key] = value

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError("processors never delete state")

    def __iter__(self) -> Iterator[str]:
        return iter(self.dirty)

    def __len__(self) -> int:
        return len(self.dirty)

    def _remember(self, key: str, value: Any, size: int) -> None:
        sizes = self.sizes
        self.cached_bytes += size - sizes.get(key, 0)
        self.cache[key] = value
        sizes[key] = size
        if self.cached_bytes > self.cache_bytes:
            # Oldest first (insertion order), down to 90% in one pass: cheaper than LRU
            # bookkeeping on every hit, and machines report in rounds, so the oldest
            # entry is the next to be due anyway.
            target, freed, drop = self.cache_bytes * 0.9, 0, []
            for old, n in sizes.items():
                if self.cached_bytes - freed <= target:
                    break
                drop.append(old)
                freed += n
            for old in drop:
                del self.cache[old], sizes[old]
            self.cached_bytes -= freed

    def forget(self, key: str) -> None:
        """Drop the cached state of ``key`` (a processor refused an event for it, and may
        have changed the cached object before refusing)."""
        self.cache.pop(key, None)
        self.cached_bytes -= self.sizes.pop(key, 0)

    def discard(self) -> None:
        """Forget this batch's writes and every cached state (they may be ahead of the
        database, or behind it)."""
        self.dirty.clear()
        self.cache.clear()
        self.sizes.clear()
        self.cached_bytes = 0

    @property
    def changelog_offset(self) -> int:
        raw = self.db.get(_OFFSET_KEY)
        return int(raw) if raw else 0

    def apply(self, items: list[tuple[bytes, bytes]], next_offset: int) -> None:
        """Write changelog records (and the position after them) to the database."""
        wb = WriteBatch(raw_mode=True)
        for key, value in items:
            wb.put(key, value)
        wb.put(_OFFSET_KEY, str(next_offset).encode())
        self.db.write(wb)

    def commit(self, items: list[tuple[bytes, bytes]], next_offset: int) -> None:
        """Write this batch's states, already in the changelog up to ``next_offset``;
        ``items`` are their records, in the order of :attr:`dirty`."""
        self.apply(items, next_offset)
        for (key, value), (_k, raw) in zip(self.dirty.items(), items, strict=True):
            self._remember(key, value, len(raw))
        self.dirty.clear()

    def estimated_keys(self) -> int:
        return int(self.db.property_int_value("rocksdb.estimate-num-keys") or 0)

    def close(self) -> None:
        self.db.close()


class Lane:
    """One processor on aiokafka: its topics in, outputs out, state in RocksDB + changelog.

    ``rename`` maps canonical output topics to this engine's (its own signals topic);
    the processor's input topics are renamed the same way, and it is always told the
    canonical name of the topic a record came from."""

    def __init__(self, bootstrap: str, app_id: str, data_dir: Path, rename: dict[str, str],
                 source: str | None = None, max_records: int = 2000,
                 proc: Processor | None = None, replication: tuple[int, int] = (1, 1)) -> None:
        self.proc = proc or MachineProcessor()
        self.name = self.proc.name
        self.source = source
        self.bootstrap = bootstrap
        self.app_id = app_id
        self.group = lane_group(app_id, self.name)
        # Stage 2 on Faust kept its table in "<app>-facilities-changelog" with JSON-encoded
        # keys; a lane's changelog has raw keys, so it must never share that topic.
        self.changelog = (f"{app_id}-machines-changelog" if self.name == "machines"
                          else f"{app_id}-lane-{self.name}-changelog")
        # The table's changelog when this processor ran on a Faust agent: adopted once.
        self.faust_changelog = f"{app_id}-{self.name}-changelog"
        self.data_dir = lane_folder(data_dir, self.name)
        self.rename = rename
        self.topics = [rename.get(t, t) for t in self.proc.topics]
        self.canonical = {rename.get(t, t): t for t in self.proc.topics}
        self.max_records = max_records
        self.replication = replication  # (replicas, min.insync.replicas) of the changelog
        self.stores: dict[int, PartitionStore] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.processed = 0
        self.failed = False
        self.ready = False  # holds an assignment, restored (the worker's /readyz)
        self.first_ready = asyncio.Event()  # set the first time it is ready
        self.batch_lock = asyncio.Lock()  # a batch, or a rebalance's close or restore: never both
        # Fetched, not yet processed records per input partition, and since when a
        # partition number's records have been held for a lagging co-partitioned input.
        self.buffers: dict[TopicPartition, deque[Any]] = {}
        self.held_since: dict[int, float] = {}
        self.assigned: set[TopicPartition] = set()
        self.committing: asyncio.Future[None] | None = None  # the offset commit in flight
        # Partitions whose recorded outputs are sent again before anything else: restored
        # from the changelog, or rewound after a broker error (Processor.outbox).
        self.unsent: set[int] = set()
        # A stop ends the run between batches (see stop()); ``stopped`` is set when run() ends.
        self.stopping = asyncio.Event()
        self.stopped = asyncio.Event()
        self.running = False

    async def ensure_changelog(self, partitions: int) -> None:
        """Create the changelog topic if needed, and adopt the Faust table's changelog."""
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            topics = set(await admin.list_topics())
            created = self.changelog not in topics
            if created:
                # Compaction only cleans closed segments: with the default 1 GB / 7-day
                # segments a new host restored every version of every state (2 million
                # records for 1 million machines). Segments roll after 10 minutes, and
                # the cleaner runs once a tenth of the log is superseded.
                replicas, min_insync = self.replication
                await admin.create_topics([NewTopic(self.changelog, partitions, replicas, topic_configs={
                    "cleanup.policy": "compact", "segment.ms": "600000",
                    "min.cleanable.dirty.ratio": "0.1", "min.insync.replicas": str(min_insync)})])
            if self.faust_changelog != self.changelog and self.faust_changelog in topics:
                await self._take_over_faust_changelog(admin, created, partitions)
        finally:
            await admin.close()

    async def _take_over_faust_changelog(self, admin: Any, created: bool, partitions: int) -> None:
        """Adopt the Faust table's changelog and delete it, unless it is older than what
        this lane has already written."""
        if not created and (not await self._adoption_started() or await self._group_committed(admin)):
            log.warning("lane %s: %s is older than this lane's changelog and is left alone",
                        self.name, self.faust_changelog)
            return
        await self._adopt_faust_changelog(partitions)
        # Deleted, or adopted again on the next start, over what the lane has written
        # since: a failure stops the worker rather than risk that.
        response = await admin.delete_topics([self.faust_changelog])
        for topic, code, *_ in response.topic_error_codes:
            if code not in (0, 3):  # 3: already deleted (another worker)
                raise LaneError(f"lane {self.name}: {topic} adopted but not deleted "
                                f"(Kafka error {code}); delete it before restarting")

    async def _inherit_faust_offsets(self) -> None:
        """A lane whose group has committed nothing starts where this processor's Faust
        agent (group ``app_id``) left off, not at the start of its topics' history:
        invoices and orders ran on Faust agents until 2026-12-01."""
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.structs import OffsetAndMetadata

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            if await self._group_committed(admin):
                return
            theirs = await group_offsets(admin, self.app_id)
        finally:
            await admin.close()
        inherit = {tp: OffsetAndMetadata(meta.offset, "") for tp, meta in theirs.items()
                   if tp.topic in self.topics and meta.offset >= 0}
        if not inherit:
            return
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(list(inherit))
            await consumer.commit(inherit)
            log.info("lane %s: starts where the Faust agent left off (%d partitions)", self.name, len(inherit))
        except KafkaError as exc:  # another worker of the engine joined first and did it
            log.info("lane %s: Faust offsets not taken over (%r)", self.name, exc)
        finally:
            await consumer.stop()

    def _changelog_producer(self, linger_ms: int) -> AIOKafkaProducer:
        # Idempotent with acks=all: a retried batch never lands twice or out of order.
        # zstd: the states are JSON of one shape, 11x smaller in a batch of machine states
        # (1,086 -> 96 bytes a record, 5.7 us to compress) and 49x in facility states,
        # which a signal re-writes whole; measured in docs/performance.md.
        return AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=linger_ms, max_batch_size=512 * 1024,
                                max_request_size=4 * 1024 * 1024, compression_type="zstd")

    def _changelog_reader(self) -> AIOKafkaConsumer:
        # Large fetches: a facility's state is ~30 KB, and with aiokafka's default of 1 MB
        # per partition a new host read stage 2's changelog ~35 states per round trip.
        return AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                max_poll_records=20000, fetch_max_bytes=64 * 1024 * 1024,
                                max_partition_fetch_bytes=16 * 1024 * 1024)

    async def _group_committed(self, admin: Any) -> bool:
        """Whether this lane's group has committed offsets: it has processed records, so a
        copy of the Faust changelog would land after newer states."""
        offsets = await group_offsets(admin, self.group)
        return any(meta.offset >= 0 for meta in offsets.values())

    async def _adoption_started(self) -> bool:
        """Whether this lane's changelog begins with the adoption marker (a restart after
        an adoption that did not finish)."""
        tp = TopicPartition(self.changelog, 0)
        reader = self._changelog_reader()
        await reader.start()
        try:
            reader.assign([tp])
            await reader.seek_to_beginning(tp)
            if (await reader.end_offsets([tp]))[tp] == 0:
                return True
            first = (await reader.getmany(tp, timeout_ms=5000, max_records=1)).get(tp, [])
            return bool(first) and first[0].key == _ADOPTING_KEY
        finally:
            await reader.stop()

    async def _adopt_faust_changelog(self, partitions: int) -> None:
        """Copy the state this processor kept in its Faust table (JSON-encoded keys) into
        the lane's changelog (raw keys), partition by partition and in order, so that an
        engine switched from Faust to the lane loses no state.

        A marker record goes first; until the old topic is deleted, a restart that finds
        the marker and no committed offsets of the lane's group copies everything again
        (copies of the same records in the same order restore the same states). Workers
        starting together could both copy: the first start after the move is one worker's
        (docs/architecture.md)."""
        producer, reader = self._changelog_producer(linger_ms=5), self._changelog_reader()
        await producer.start()
        await reader.start()
        copied = 0
        try:
            await producer.send_and_wait(self.changelog, self.faust_changelog.encode(), key=_ADOPTING_KEY,
                                         partition=0)
            for p in range(partitions):
                src = TopicPartition(self.faust_changelog, p)
                reader.assign([src])
                await reader.seek_to_beginning(src)
                end = (await reader.end_offsets([src]))[src]
                acks = []
                while await reader.position(src) < end:
                    for m in (await reader.getmany(src, timeout_ms=1000)).get(src, []):
                        if m.key is None or m.value is None:
                            continue  # Faust tables' deletions: processors never delete
                        key = orjson.loads(m.key)
                        acks.append(await producer.send(self.changelog, m.value, partition=p,
                                                        key=key.encode() if isinstance(key, str) else m.key))
                await asyncio.gather(*acks)
                copied += len(acks)
        finally:
            await reader.stop()
            await producer.stop()
        log.info("lane %s: adopted %d states from %s", self.name, copied, self.faust_changelog)

    def _store_for_restore(self, partition: int) -> PartitionStore:
        store = self.stores.get(partition)
        if store is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            store = self.stores[partition] = PartitionStore(self.data_dir / f"{self.name}-{partition}.db")
        else:
            store.discard()  # another owner may have written since: trust only the changelog
        return store

    async def _restore(self, partitions: list[int]) -> None:
        """Bring the local databases of ``partitions`` up to the end of their changelog
        partitions, all read by one consumer at once.

        The restore waits for the broker rather than give up: a lane that went on with
        part of its state would compute limits from stale states."""
        if not partitions:
            # A member with no partition of this lane (more workers than partitions):
            # nothing to restore. A changelog reader assigned no partition also never
            # stops (aiokafka 0.14: stop() waits for its committed-offsets routine), and
            # the lane, inside this rebalance callback, was never ready again.
            return
        stores = {TopicPartition(self.changelog, p): self._store_for_restore(p) for p in partitions}
        reader = self._changelog_reader()
        await reader.start()
        try:
            reader.assign(list(stores))
            ends = await reader.end_offsets(list(stores))
            pending = {tp for tp, store in stores.items() if store.changelog_offset < ends[tp]}
            if not pending:
                return
            for tp in pending:
                reader.seek(tp, stores[tp].changelog_offset)
            reader.pause(*(set(stores) - pending))
            loop = asyncio.get_running_loop()
            started = report = loop.time()
            restored, total = 0, sum(ends[tp] - stores[tp].changelog_offset for tp in pending)
            while pending:
                batch = await reader.getmany(*pending, timeout_ms=1000)
                for tp, msgs in batch.items():
                    stores[tp].apply([(m.key, m.value) for m in msgs], msgs[-1].offset + 1)
                    restored += len(msgs)
                for tp in list(pending):
                    # The position, not the last offset seen: compaction leaves gaps.
                    if await reader.position(tp) >= ends[tp]:
                        if stores[tp].changelog_offset < ends[tp]:
                            stores[tp].apply([], ends[tp])
                        pending.discard(tp)
                        reader.pause(tp)
                if loop.time() - report >= 5.0:
                    report = loop.time()
                    log.info("lane %s: restoring partitions %s: %d of at most %d records, %.0f s",
                             self.name, partitions, restored, total, report - started)
            log.info("lane %s: restored %d states of partitions %s in %.1f s", self.name, restored,
                     partitions, loop.time() - started)
        finally:
            await reader.stop()

    async def stop(self, timeout: float = 30.0) -> None:
        """End ``run`` between batches: the batch in flight finishes, its offsets are
        committed, then the consumer leaves its group. A worker's graceful stop must come
        here first: cancelling ``run`` can land after a batch's outputs were published
        and before its offsets were committed, and the partitions' next owner then
        decides that batch again, from inputs it may see in another order (a borrower's
        version published twice with different content: chaos churn on the cluster)."""
        self.stopping.set()
        if not self.running:
            return
        try:
            await asyncio.wait_for(self.stopped.wait(), timeout)
        except TimeoutError:
            log.warning("lane %s: did not stop within %.0f s; it is cancelled", self.name, timeout)

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        lane = self
        stopping = stopping or self.stopping
        self.running = True

        class Rebalance(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                # The batch in flight finishes (and commits, which the group still
                # allows here) first; then nothing of the revoked partitions is kept:
                # their next owner writes to the changelog, so a store kept open here
                # would be stale if they came back.
                async with lane.batch_lock:
                    lane.ready = False
                    await lane._settle_commit(quiet=True)
                    await lane._mark_sent({tp.partition for tp in revoked})
                    lane._close(revoked)

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                # aiokafka runs this in its coordinator task, and records of the new
                # assignment may already be fetched: a restore (which discards the
                # cache) must never overlap a batch, or it drops the batch's states.
                async with lane.batch_lock:
                    lane.assigned = set(assigned)
                    partitions = sorted({tp.partition for tp in assigned})
                    # Partitions kept through the rebalance: their batches all ended here.
                    taken = [p for p in partitions if p not in lane.stores]
                    await lane._restore(partitions)
                    if lane.proc.outbox:
                        lane.unsent.update(taken)
                    lane.ready = True
                    lane.first_ready.set()

        log.info("lane %s: starting", self.name)  # load bench times the lane from here
        await self.ensure_changelog(BY_NAME[self.proc.topics[0]].partitions)
        await self._inherit_faust_offsets()
        self.producer = self._changelog_producer(linger_ms=2)  # outputs and changelog alike
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group,
                                         enable_auto_commit=False, auto_offset_reset="earliest",
                                         max_poll_records=self.max_records,
                                         fetch_max_bytes=32 * 1024 * 1024,
                                         partition_assignment_strategy=(RangePartitionAssignor,),
                                         session_timeout_ms=10000, heartbeat_interval_ms=3000)
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe(self.topics, listener=Rebalance())
        try:
            while not (stopping and stopping.is_set()):
                # Shorter waits while records are held for a lagging co-partitioned input.
                held = any(self.buffers.values())
                batch = await self.consumer.getmany(timeout_ms=20 if held else 200, max_records=self.max_records)
                if not batch and not held and not self.unsent:
                    continue
                async with self.batch_lock:
                    try:
                        if self.unsent:
                            await self._send_outboxes()
                        self._buffer(batch)
                        runs = await self._aligned()
                        if runs:
                            await self._process(runs)
                    except KafkaError as exc:
                        # The broker went away mid-batch: forget the batch's unwritten state and
                        # read it again from the committed offsets once the broker answers.
                        log.warning("lane %s: %r; re-reading the batch from committed offsets", self.name, exc)
                        if not exc.retriable:
                            await self._replace_producer()
                        await self._rewind()
            # A stop between batches: every output is sent, so the next owner has none to send.
            async with self.batch_lock:
                await self._mark_sent(set(self.stores))
        except asyncio.CancelledError:
            raise
        except Exception:
            # Nothing was committed for the failed batch: stop the worker so that it is
            # read again after the restart.
            self.failed = True
            fail_stop(f"lane {self.name}")
        finally:
            try:
                await self._settle_commit(quiet=True)
                await self.consumer.stop()
                await self.producer.stop()
                for store in self.stores.values():
                    store.close()
            finally:
                self.running = False
                self.stopped.set()

    def _close(self, revoked: list[TopicPartition]) -> None:
        """Drop everything held for ``revoked``: fetched records, and the stores of the
        partition numbers this lane no longer reads."""
        gone = set(revoked)
        self.assigned -= gone
        for tp in gone:
            self.buffers.pop(tp, None)
        kept = {tp.partition for tp in self.assigned}
        for p in [p for p in self.stores if p not in kept]:
            self.stores.pop(p).close()
            self.held_since.pop(p, None)
            self.unsent.discard(p)
            metrics.TABLE_KEYS.labels(self.name).set(sum(s.estimated_keys() for s in self.stores.values()))

    def _buffer(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Keep fetched records until their turn; pause a partition whose buffer is full."""
        assert self.consumer is not None
        for tp, msgs in batch.items():
            if tp not in self.assigned:
                continue  # fetched before a revocation
            buf = self.buffers.setdefault(tp, deque())
            buf.extend(msgs)
            if len(buf) >= MAX_BUFFERED:
                self.consumer.pause(tp)

    async def _may_have_earlier(self, tp: TopicPartition) -> bool:
        """Whether ``tp`` may hold records on the broker that are not fetched yet."""
        assert self.consumer is not None
        try:
            highwater = self.consumer.highwater(tp)
        except AssertionError:  # aiokafka's word for "not assigned"
            return False
        if highwater is None:
            return True  # no fetch answered since it was assigned
        try:
            # A known highwater means a fetch answered, so the position is normally valid
            # and this returns at once. Never wait for it: this runs under the batch lock,
            # and a position reset waits on the group coordinator, which may itself be
            # waiting for that lock in a revocation.
            # (A timeout scope, not wait_for: no task per call, ~8 calls per batch.)
            async with asyncio.timeout(0.05):
                return await self.consumer.position(tp) < highwater
        except TimeoutError:
            return True  # unknown: held at most MAX_HOLD_S
        except IllegalStateError:
            return False  # revoked meanwhile

    async def _aligned(self) -> list[tuple[TopicPartition, list[Any]]]:
        """This batch: per partition number, the buffered records of its input topics in
        timestamp order (ties: the order of the processor's topics), as runs of one
        topic partition; at most ``max_records`` records."""
        assert self.consumer is not None
        runs: list[tuple[TopicPartition, list[Any]]] = []
        budget = self.max_records
        now = asyncio.get_running_loop().time()
        for p in sorted({tp.partition for tp in self.assigned}):
            tps = [tp for t in self.topics if (tp := TopicPartition(t, p)) in self.assigned]
            if budget <= 0 or not any(self.buffers.get(tp) for tp in tps):
                continue
            # Inputs with records on the broker not yet fetched: the partition's records
            # wait while one of them has nothing buffered, and a merge stops where one
            # runs dry.
            lagging = {tp for tp in tps if await self._may_have_earlier(tp)}
            if any(not self.buffers.get(tp) for tp in lagging):
                since = self.held_since.setdefault(p, now)
                if now - since < MAX_HOLD_S:
                    continue
                log.warning("lane %s: %s gave no records for %.1f s; going on without them",
                            self.name, sorted(f"{tp.topic}-{tp.partition}" for tp in lagging), now - since)
                lagging = set()
            self.held_since.pop(p, None)
            live = [(tp, buf) for tp in tps if (buf := self.buffers.get(tp))]
            if len(live) == 1 and not lagging - {live[0][0]}:
                # The common case (telemetry alone): the whole buffer, no merge.
                tp, buf = live[0]
                n = min(budget, len(buf))
                runs.append((tp, [buf.popleft() for _ in range(n)]))
                budget -= n
            else:
                budget = self._merge(tps, lagging, budget, runs)
            for tp in tps:
                buf = self.buffers.get(tp)
                if buf is not None and len(buf) < MAX_BUFFERED // 2 and tp in self.consumer.paused():
                    self.consumer.resume(tp)
        return runs

    def _merge(self, tps: list[TopicPartition], lagging: set[TopicPartition], budget: int,
               runs: list[tuple[TopicPartition, list[Any]]]) -> int:
        """Append to ``runs`` the records of ``tps`` by timestamp until the budget is spent
        or an input that may hold earlier records runs dry; return the budget left."""
        rank = {tp: i for i, tp in enumerate(tps)}
        while budget > 0:
            heads = [(buf[0].timestamp, rank[tp], tp) for tp in tps if (buf := self.buffers.get(tp))]
            if not heads or (len(heads) < len(tps) and any(not self.buffers.get(tp) for tp in lagging)):
                break
            _ts, _r, tp = min(heads)
            record = self.buffers[tp].popleft()
            if runs and runs[-1][0] == tp:
                runs[-1][1].append(record)
            else:
                runs.append((tp, [record]))
            budget -= 1
        return budget

    async def _replace_producer(self) -> None:
        """Start a new producer in place of one that failed for good.

        A producer error that is not retriable leaves the producer unusable: after a
        broker restart the broker may refuse an idempotent producer's next sequence
        number on a partition (OutOfOrderSequenceNumber), and it refuses every later one
        too. The batch is re-read anyway, so a new producer (a new producer id, sequences
        from zero) sends it again; what the old one delivered is at most repeated, which
        the processors' versioned outputs make harmless (chaos run 3314)."""
        if self.producer is not None:
            try:
                await asyncio.wait_for(self.producer.stop(), 10.0)
            except (TimeoutError, KafkaError) as exc:
                log.warning("lane %s: the failed producer did not stop cleanly (%r)", self.name, exc)
        while True:
            producer = self._changelog_producer(linger_ms=2)
            try:
                await producer.start()
            except KafkaError as exc:
                log.warning("lane %s: waiting for the broker to start a producer (%r)", self.name, exc)
                await producer.stop()
                await asyncio.sleep(1.0)
                continue
            self.producer = producer
            log.warning("lane %s: producer replaced after a fatal producer error", self.name)
            return

    async def _rewind(self) -> None:
        assert self.consumer is not None
        await self._settle_commit(quiet=True)
        self.buffers.clear()  # read again from the committed offsets
        for store in self.stores.values():
            store.discard()  # cached states may hold the failed batch's changes
        if self.proc.outbox:
            # The batch's states may be written while its outputs were not all sent: the
            # re-read inputs are then duplicates that decide nothing, and the outputs go
            # out from the record kept with the states.
            self.unsent.update(self.stores)
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
                log.warning("lane %s: waiting for the broker (%r)", self.name, exc)
                await asyncio.sleep(1.0)

    async def _process(self, runs: list[tuple[TopicPartition, list[Any]]]) -> None:
        assert self.producer is not None and self.consumer is not None
        send = self.producer.send
        acks = []
        # With an outbox, a partition's outputs wait here until they are in the changelog.
        outbox: dict[int, list[list[Any]]] | None = {} if self.proc.outbox else None
        observed: list[tuple[str, dict, int | None]] = []
        touched: set[int] = set()
        loop = asyncio.get_running_loop()
        turn = loop.time() + YIELD_EVERY_S
        for tp, msgs in runs:
            store = self.stores.get(tp.partition)
            if store is None:  # assigned without restore: cannot happen, but never guess
                await self._restore([tp.partition])
                store = self.stores[tp.partition]
            touched.add(tp.partition)
            topic = self.canonical.get(tp.topic, tp.topic)
            for m in msgs:
                outs = self.proc.process(store, topic, m.key, m.value, tp.partition, m.offset)
                if outs:
                    trace = metrics.trace_headers(m.headers)
                    origin = metrics.origin_ns(trace)
                    for out in outs:
                        # A signal carries its cause's timestamp, so stage 2 merges it with
                        # the ledger by the time of the inputs (see the module docstring).
                        to = self.rename.get(out.topic, out.topic)
                        stamp = m.timestamp if out.topic in STAGED else None
                        if outbox is None:
                            acks.append(await send(to, encode_output(out, self.source), key=out.key.encode(),
                                                   headers=trace, timestamp_ms=stamp))
                        else:
                            outbox.setdefault(tp.partition, []).append(
                                [to, out.key, encode_output(out, self.source).decode(),
                                 [[k, v.decode("latin-1")] for k, v in trace or ()], stamp])
                        observed.append((out.topic, out.value, origin))
                if loop.time() >= turn:
                    await asyncio.sleep(0)  # the batch lock is held: no rebalance meanwhile
                    turn = loop.time() + YIELD_EVERY_S
            self.processed += len(msgs)
            metrics.EVENTS_IN.labels(tp.topic).inc(len(msgs))
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - msgs[-1].offset - 1))
        if outbox is not None:
            # Outputs with the states, then published: a crash in between re-publishes
            # the recorded outputs (restore: unsent), never decides them again.
            for p in touched:
                record_outbox(self.stores[p], outbox.get(p, []))
        else:
            await asyncio.gather(*acks)
            # Counted as acknowledged, before the state write: the next stage may already
            # have acted on them, and its outputs must not be counted before their causes.
            metrics.observe_outputs(observed)
        # State after outputs (or with them, above): a crash in between repeats outputs,
        # never loses them.
        for p, (items, next_offset) in (await self._write_changelog(touched)).items():
            self.stores[p].commit(items, next_offset)
        if outbox is not None:
            await self._publish([rec for p in sorted(outbox) for rec in outbox[p]])
            metrics.observe_outputs(observed)
        metrics.TABLE_KEYS.labels(self.name).set(sum(s.estimated_keys() for s in self.stores.values()))
        # Explicit offsets: records fetched but held back (see _aligned) are not done.
        done = {tp: msgs[-1].offset + 1 for tp, msgs in runs}
        # The commit is not waited for: the next batch is fetched and processed while it
        # is on its way (a commit takes ~6 ms here, a third of a batch's waits). One at a
        # time and in order; a revocation, a rewind and the stop wait for it first, and a
        # broker error in it is raised here, at the next batch (whose state is written:
        # both are read again from the committed offsets, as after a crash).
        await self._settle_commit()
        self.committing = asyncio.ensure_future(self._commit(done))

    async def _send_outboxes(self) -> None:
        """Send again the outputs recorded with the states of the partitions in
        :attr:`unsent`, and wait for them: identical repeats when they were sent before."""
        recorded: list[list[Any]] = []
        for p in sorted(self.unsent):
            store = self.stores.get(p)
            recorded += read_outbox(store) if store is not None else []
        await self._publish(recorded)
        if recorded:
            log.info("lane %s: sent again %d outputs recorded with partitions %s", self.name, len(recorded),
                     sorted(self.unsent))
        self.unsent.clear()

    async def _mark_sent(self, partitions: set[int]) -> None:
        """Record that the outputs kept with ``partitions``' states were all sent (called
        between batches, when they were), so that their next owner, after a graceful
        stop or a rebalance, does not send them again. A failure only costs repeats."""
        if not self.proc.outbox or self.unsent:
            return
        mine = {p for p in partitions if p in self.stores and self.stores[p].get(OUTBOX_KEY)}
        if not mine:
            return
        try:
            for p in mine:
                record_outbox(self.stores[p], [])
            for p, (items, next_offset) in (await self._write_changelog(mine)).items():
                self.stores[p].commit(items, next_offset)
        except KafkaError as exc:
            for p in mine:
                self.stores[p].discard()
            log.warning("lane %s: outputs not marked sent (%r); the next owner sends them again", self.name, exc)

    async def _publish(self, recorded: list[list[Any]]) -> None:
        """Send outputs as an outbox records them ([topic, key, value, headers, timestamp],
        text that JSON can hold) and wait for every acknowledgement."""
        assert self.producer is not None
        send = self.producer.send
        await asyncio.gather(*[await send(topic, value.encode(), key=key.encode(), timestamp_ms=stamp,
                                          headers=[(k, v.encode("latin-1")) for k, v in headers] or None)
                               for topic, key, value, headers, stamp in recorded])

    async def _commit(self, done: dict[TopicPartition, int]) -> None:
        assert self.consumer is not None
        try:
            await self.consumer.commit(done)
        except CommitFailedError:
            # A rebalance took the partitions: their new owner re-reads this batch and,
            # the processor being idempotent, produces the same outputs.
            log.warning("lane %s: commit failed after a rebalance; the batch will be re-read", self.name)

    async def _settle_commit(self, quiet: bool = False) -> None:
        """Wait for the commit in flight; its broker error is raised (or, ``quiet``,
        logged: the batch is then read again by whoever holds its partitions next)."""
        task, self.committing = self.committing, None
        if task is None:
            return
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # this lane is being cancelled, not its commit
            log.warning("lane %s: commit cancelled; the batch will be re-read", self.name)
        except KafkaError as exc:
            if not quiet:
                raise
            log.warning("lane %s: commit failed (%r); the batch will be re-read", self.name, exc)

    async def _write_changelog(self, touched: set[int]) -> dict[int, tuple[list[tuple[bytes, bytes]], int]]:
        """Produce the touched partitions' changed states to the changelog and wait for the
        acknowledgements; return per partition the records and the offset after them.

        Whole batches rather than one ``send`` per state: a future per record was ~8% of
        the lane's time, and a batch's base offset gives every record's offset."""
        assert self.producer is not None
        producer = self.producer
        sent: list[tuple[int, int, asyncio.Future[Any]]] = []  # partition, records, future
        written: dict[int, list[tuple[bytes, bytes]]] = {}
        for p in touched:
            store = self.stores[p]
            if not store.dirty:
                continue
            items = written[p] = [(k.encode(), orjson.dumps(v)) for k, v in store.dirty.items()]
            batch, n = producer.create_batch(), 0
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    if n:  # full: send it and start the next
                        sent.append((p, n, await producer.send_batch(batch, self.changelog, partition=p)))
                        batch, n = producer.create_batch(), 0
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"lane {self.name}: a state of {len(value)} bytes "
                                         "does not fit in a producer batch")
                n += 1
            sent.append((p, n, await producer.send_batch(batch, self.changelog, partition=p)))
        metas = await asyncio.gather(*(f for _p, _n, f in sent))
        after: dict[int, int] = {}
        for (p, n, _f), meta in zip(sent, metas, strict=True):
            after[p] = max(after.get(p, 0), meta.offset + n)
        return {p: (written[p], after[p]) for p in written}
