"""Offline replay: a recorded event log through the same processors, no Kafka.

Signals produced by stage 1 are fed to stage 2 at once, in order, so the same log always
gives the same decisions: the basis for backtests, shadow policies and stress scenarios.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from schemas import codec
from schemas.topics import KEY_OF_TYPE, LIMITS_TOPIC, POOLS_TOPIC, SIGNALS_TOPIC, TOPIC_OF_TYPE
from streams.domain.signals import Output
from streams.processors import all_processors, dead_letter, processor_for


class Replay:
    """In-memory stores, one per processor; feed raw event bytes, collect outputs."""

    def __init__(self, policy: str | None = None) -> None:
        self.processors = all_processors(policy)
        self.stores: dict[str, dict[str, Any]] = {p.name: {} for p in self.processors}

    def feed(self, raw: bytes) -> Iterator[Output]:
        try:
            event = codec.decode(raw)
        except codec.DecodeError as exc:
            yield dead_letter("(replay)", None, None, None, raw, "replay", exc.reason, str(exc))
            return
        topic = TOPIC_OF_TYPE[event.type].name
        key = KEY_OF_TYPE[event.type](event).encode()
        yield from self._run(topic, key, raw)

    def _run(self, topic: str, key: bytes, raw: bytes) -> Iterator[Output]:
        proc = processor_for(topic, self.processors)
        for out in proc.process(self.stores[proc.name], topic, key, raw):
            if out.topic in (SIGNALS_TOPIC, POOLS_TOPIC):  # internal: on to the next stage at once
                yield from self._run(out.topic, out.key.encode(), orjson.dumps(out.value))
            else:
                yield out


def replay_lines(lines: Iterable[bytes], topics: frozenset[str] = frozenset({LIMITS_TOPIC})) -> Iterator[bytes]:
    """Decisions (by default the limit updates) as canonical JSON lines."""
    r = Replay()
    for line in lines:
        line = line.strip()
        if not line:
            continue
        for out in r.feed(line):
            if out.topic in topics:
                yield orjson.dumps(out.value, option=orjson.OPT_SORT_KEYS)
