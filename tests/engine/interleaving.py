"""A model of how a worker reads a backlog: every input partition is its own queue, and
stage 1's signals go through borrower-keyed signal partitions before stage 2 reads them.

Kafka orders records within a partition only. A worker that falls behind (a pause, a
crash, a rebalance, a late start) reads whole runs of one partition before the next, in
an order no one chooses. :func:`final_limits` runs the same processors as the worker and
the replay over one such random merge, so a property test can check that the final limit
of every borrower does not depend on it (issue 19).
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from typing import Any

import orjson

from load.world import Rec
from streams.domain.signals import LIMITS_TOPIC, SIGNALS_TOPIC
from streams.processors import all_processors, processor_for

PARTITIONS = 4


def final_limits(setup: list[Rec], stream: list[Rec], rng: random.Random,
                 longest_run: int = 50) -> dict[str, dict[str, Any]]:
    """The last limit update payload per borrower when ``setup`` is read in order and
    caught up (as the chaos runs do), then ``stream`` is read as a random merge of its
    partitions, in runs of 1 to ``longest_run`` records of one partition."""
    procs = all_processors()
    stores: dict[str, dict[str, Any]] = {p.name: {} for p in procs}
    queues: dict[tuple[str, int], deque[tuple[bytes, bytes]]] = {}
    final: dict[str, dict[str, Any]] = {}

    def push(topic: str, key: bytes, value: bytes) -> None:
        # Any stable hash will do: what matters is that a key meets the same partition
        # number on co-partitioned topics, as with Kafka's default partitioner.
        part = 0 if topic == "cs.registry" else zlib.crc32(key) % PARTITIONS
        queues.setdefault((topic, part), deque()).append((key, value))

    def step(queue: tuple[str, int]) -> None:
        key, value = queues[queue].popleft()
        topic = queue[0]
        proc = processor_for(topic, procs)
        for out in proc.process(stores[proc.name], topic, key, value, queue[1], 0):
            if out.topic == SIGNALS_TOPIC:
                push(SIGNALS_TOPIC, out.key.encode(), orjson.dumps(out.value))
            elif out.topic == LIMITS_TOPIC:
                final[out.key] = out.value["payload"]

    for topic, key, value in setup:  # in log order, fully caught up, like the replay
        push(topic, key, value)
        while live := [q for q in queues if queues[q]]:
            step(live[0] if (topic, 0) not in live else (topic, 0))
    for topic, key, value in stream:
        push(topic, key, value)
    while live := [q for q in queues if queues[q]]:
        queue = rng.choice(live)
        for _ in range(rng.randint(1, longest_run)):
            if not queues[queue]:
                break
            step(queue)
    return final


def differences(reference: dict[str, dict[str, Any]], got: dict[str, dict[str, Any]]) -> list[str]:
    """Borrowers whose final limit, available amount or status differ."""
    def fig(p: dict[str, Any] | None) -> tuple[Any, ...]:
        return (None,) if p is None else (p["limit"]["amount"], p["available"]["amount"], p["status"])

    return [f"{b}: replay {fig(want)}, interleaved {fig(got.get(b))}"
            for b, want in sorted(reference.items()) if fig(want) != fig(got.get(b))]
