"""Stage 1's part of MACHINE_SILENT: stage 2 learns each machine's exact last reading.

Stage 2 judges silence at every decision: more than 72 h between the borrower's
watermark and the machine's ``last_seen`` (policy.py). Stage 1 signals a machine on a
material change and at least once per 24 h of event time while it reports (the
heartbeat, machines.HEARTBEAT_S); the readings after its last signal (the *tail*) reach
stage 2 with the next signal, so when a machine stops, stage 2 held a ``last_seen`` up
to 24 h older than the last reading and judged it silent up to 24 h early (issue 10.4).
A signal per reading would double the hot path.

Instead, once stage 1's time has passed :data:`TELL_AFTER_S` after the reading it last
told stage 2 about, a machine that has read since gets one signal with its exact state
(the tail is final then: a later reading would be signalled by the heartbeat). That is
at the first record of the program on the partition at least ~25 h 10 min after the
last signal, so stage 2 knows the last reading ~46 h before it can matter.
A machine that keeps reporting is signalled by its heartbeat first and never costs one.

Stage 1's time is the event time of the pledges and readings it applied, per input
partition and per program (the pledge's): deterministic, the same in the replay (which
computes the producer's partition) and in a worker, and no other program's clock moves
this program's machines. The checks due are kept in 10-minute buckets in the partition's
store, one entry per signal, never per reading: a record that makes nothing due costs
one dict lookup. Lane stores never delete a key, so the buckets are a ring of
:data:`RING` keys per program and partition, each holding its slots' entries by slot.

A slot's entries are kept in chunks of at most :data:`CHUNK` entries, each its own key
(the clock counts a slot's chunks): a fleet onboarded together is told within one slot,
and one key per slot grew with it (75,000 machines of a program on a partition made a
1.8 MB value, rewritten to the changelog and RocksDB with every batch that told one of
them, and over the broker's message size from ~170,000 machines).
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, MutableMapping
from typing import Any

from aiokafka.partitioner import murmur2

from streams.domain.machines import HEARTBEAT_S, MachineState
from streams.domain.signals import Output

# After this much of stage 1's time without a signal, a machine's tail is final.
TELL_AFTER_S = HEARTBEAT_S + 3600.0
# Checks are bucketed by slot of event time, processed once the slot is over; a bucket
# holds ~1/144 of a day's signals of the program on the partition.
SLOT_S = 600
# Bucket keys per program and partition (reused slot % RING): a check is due ~25 h after
# it is noted, so two live slots rarely share a key (they may: entries keep their slot).
RING = 288
# Entries per chunk of a slot (~40 bytes each): a stored value stays under ~100 KB.
CHUNK = 2000

Store = MutableMapping[str, Any]


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the producers' default partitioner picks for ``key`` (murmur2, as
    Kafka's Java client and aiokafka do): the replay's stand-in for a record's partition."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def _clock_key(partition: int, program: str) -> str:
    # "~" cannot start a machine id (schemas.common.Id), so these never meet a machine's state.
    return f"~clock:{partition}:{program}"


def _bucket_key(partition: int, program: str, slot: int, chunk: int = 0) -> str:
    # Chunk 0 keeps the key of the stores written before chunks (one key per slot).
    base = f"~due:{partition}:{program}:{slot % RING}"
    return base if chunk == 0 else f"{base}:{chunk}"


def told(store: Store, partition: int, state: MachineState) -> None:
    """Note that stage 2 now knows ``state``'s reading at ``state['told']``: its tail
    is checked once stage 1's time passes it by :data:`TELL_AFTER_S`."""
    pledge = state["pledge"]
    if pledge is None:  # released: no tail to check (the callers only tell of pledged ones)
        return
    program, at = pledge["program_id"], state["told"]
    slot = int((at + TELL_AFTER_S) // SLOT_S)
    ck = _clock_key(partition, program)
    clock = store.get(ck) or {"due": []}
    chunks = clock.get("chunks", {})
    chunk = chunks.get(str(slot), 1) - 1  # the slot's last chunk
    bk = _bucket_key(partition, program, slot, chunk)
    bucket = store.get(bk) or {}
    if len(bucket.get(str(slot), ())) >= CHUNK:  # full: the slot's next chunk
        chunk += 1
        chunks[str(slot)] = chunk + 1
        clock["chunks"] = chunks
        bk = _bucket_key(partition, program, slot, chunk)
        bucket = store.get(bk) or {}
        store[ck] = clock
    bucket.setdefault(str(slot), []).append([state["mid"], at])
    store[bk] = bucket
    if slot not in clock["due"]:
        insort(clock["due"], slot)
        store[ck] = clock


def advance(store: Store, partition: int, program: str, now: float,
            tell: Callable[[MachineState], list[Output]]) -> list[Output]:
    """Stage 1's time of ``program`` on ``partition`` reached ``now``: for each check
    due (its slot is over), a machine still pledged to the program that has read since
    it was last told about is told again (``tell(state)`` returns its signal)."""
    ck = _clock_key(partition, program)
    clock = store.get(ck)
    if clock is None or not clock["due"] or (clock["due"][0] + 1) * SLOT_S > now:
        return []  # the common case: one lookup
    slots = [h for h in clock["due"] if (h + 1) * SLOT_S <= now]
    chunks = dict(clock.get("chunks", {}))
    counts = [chunks.pop(str(slot), 1) for slot in slots]
    store[ck] = {"due": clock["due"][len(slots):], **({"chunks": chunks} if chunks else {})}
    outs: list[Output] = []
    for slot, count in zip(slots, counts, strict=True):
        entries: list[list[Any]] = []
        for chunk in range(count):
            bk = _bucket_key(partition, program, slot, chunk)
            bucket = store.get(bk) or {}
            entries += bucket.pop(str(slot), ())
            store[bk] = bucket
        for mid, at in entries:
            state = store.get(mid)
            if (state is None or state.get("told") != at or state["pledge"] is None
                    or state["pledge"]["program_id"] != program or state["ts"] is None or state["ts"] <= at):
                continue  # told since, released, pledged elsewhere, or nothing read since
            outs += tell(state)
            store[mid] = state
            told(store, partition, state)
    return outs
