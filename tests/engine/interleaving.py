"""A model of how a worker reads a backlog: every input partition is its own queue, and
stage 1's signals go through borrower-keyed signal partitions before stage 2 reads them.

Kafka orders records within a partition only. A worker that falls behind (a pause, a
crash, a rebalance, a late start) reads whole runs of one partition before the next, in
an order no one chooses. :func:`final_limits` runs the same processors as the worker and
the replay over one such random schedule, so a property test can check that the final
limit of every borrower does not depend on it (issue 19).

With ``aligned`` the schedule follows the runtime: a lane reads its co-partitioned
topics merged by record timestamp, and a signal carries the timestamp of the input that
caused it (streams/fastlane.py). Without it, a processor takes whichever of its topics
comes: the stronger property that the domain itself does not depend on the order of
independent topics. Which processor partition runs next, and for how many records, is
random. A record's timestamp here is its position in the log.
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from typing import Any

import orjson

from load.world import Rec
from schemas.topics import LIMITS_TOPIC, SIGNALS_TOPIC
from streams.processors import Processor, all_processors

PARTITIONS = 4
Queue = deque[tuple[int, bytes, bytes]]  # (timestamp, key, value)


def final_limits(setup: list[Rec], stream: list[Rec], rng: random.Random, longest_run: int = 50,
                 late: bool = False, aligned: bool = True) -> dict[str, dict[str, Any]]:
    """The last limit update payload per borrower when ``stream`` is read in a random
    schedule, in runs of 1 to ``longest_run`` records of one processor partition. The
    ``setup`` is read in order and caught up first (as the chaos runs do), unless
    ``late``: then it is part of the backlog too (a worker started after everything)."""
    procs = all_processors()
    stores: dict[str, dict[str, Any]] = {p.name: {} for p in procs}
    queues: dict[tuple[str, int], Queue] = {}
    final: dict[str, dict[str, Any]] = {}

    def push(topic: str, key: bytes, value: bytes, ts: int) -> None:
        # Any stable hash will do: what matters is that a key meets the same partition
        # number on co-partitioned topics, as with Kafka's default partitioner.
        part = 0 if topic == "cs.registry" else zlib.crc32(key) % PARTITIONS
        queues.setdefault((topic, part), deque()).append((ts, key, value))

    def heads(proc: Processor, part: int) -> list[tuple[str, int]]:
        return [q for t in proc.topics if queues.get(q := (t, part))]

    def step(proc: Processor, part: int) -> bool:
        live = heads(proc, part)
        if not live:
            return False
        queue = min(live, key=lambda q: queues[q][0][0]) if aligned else rng.choice(live)
        ts, key, value = queues[queue].popleft()
        for out in proc.process(stores[proc.name], queue[0], key, value, part, 0):
            if out.topic == SIGNALS_TOPIC:
                push(SIGNALS_TOPIC, out.key.encode(), orjson.dumps(out.value), ts)
            elif out.topic == LIMITS_TOPIC:
                final[out.key] = out.value["payload"]
        return True

    def units() -> list[tuple[Processor, int]]:
        return [(p, n) for p in procs for n in range(PARTITIONS) if heads(p, n)]

    backlog = [*setup, *stream] if late else stream
    if not late:
        for ts, (topic, key, value) in enumerate(setup):  # in log order, caught up, like the replay
            push(topic, key, value, ts)
            while live := units():
                step(*live[0])
    for ts, (topic, key, value) in enumerate(backlog, start=len(setup) if not late else 0):
        push(topic, key, value, ts)
    while live := units():
        proc, part = rng.choice(live)
        for _ in range(rng.randint(1, longest_run)):
            if not step(proc, part):
                break
    return final


def differences(reference: dict[str, dict[str, Any]], got: dict[str, dict[str, Any]]) -> list[str]:
    """Borrowers whose final limit, available amount or status differ."""
    def fig(p: dict[str, Any] | None) -> tuple[Any, ...]:
        return (None,) if p is None else (p["limit"]["amount"], p["available"]["amount"], p["status"])

    return [f"{b}: replay {fig(want)}, interleaved {fig(got.get(b))}"
            for b, want in sorted(reference.items()) if fig(want) != fig(got.get(b))]
