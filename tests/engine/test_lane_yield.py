"""A lane hands the event loop back while it processes a batch (streams/fastlane.py,
``YIELD_EVERY_S``): the producer sends the outputs made so far and the worker's other
lanes run, instead of waiting for the whole batch (issue 13: a stage-2 batch of first
readings held every output ~1 s). Pure: the producer and consumer here are stand-ins
that record when they are called; the store is a real RocksDB."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from schemas.topics import ALERTS_TOPIC
from streams.domain.signals import Output
from streams.fastlane import YIELD_EVERY_S, Lane, PartitionStore
from streams.processors import Processor

TP = TopicPartition("cs.telemetry", 0)
RECORDS = 40
WORK_S = 0.002  # per record: the batch takes ~80 ms, 16 times YIELD_EVERY_S


@dataclass
class Rec:
    offset: int
    key: bytes = b"k"
    value: bytes = b"{}"
    timestamp: int = 0
    headers: tuple = ()


class Busy(Processor):
    name = "busy"
    topics = ("cs.telemetry",)

    def process(self, store: Any, topic: str, key: bytes | None, value: bytes,
                partition: int | None = None, offset: int | None = None) -> list[Output]:
        end = time.perf_counter() + WORK_S  # CPU, as a processor's decisions are
        while time.perf_counter() < end:
            pass
        return [Output(ALERTS_TOPIC, "k", {"n": offset})]


@dataclass
class Producer:
    sent_at: list[float] = field(default_factory=list)

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[None]:
        self.sent_at.append(time.perf_counter())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Consumer:
    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        return None


def test_other_tasks_run_while_a_batch_is_processed(tmp_path: Path) -> None:
    lane = Lane("127.0.0.1:1", "t", tmp_path, {}, proc=Busy())
    lane.producer, lane.consumer = Producer(), Consumer()
    lane.stores[0] = PartitionStore(tmp_path / "busy-0.db")
    ticks: list[float] = []

    async def ticker() -> None:  # another lane, the producer's sender, the web server...
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0)

    async def main() -> tuple[float, float]:
        other = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        began = time.perf_counter()
        await lane._process([(TP, [Rec(i) for i in range(RECORDS)])])
        ended = time.perf_counter()
        other.cancel()
        await lane._settle_commit()
        return began, ended

    began, ended = asyncio.run(main())
    during = [t for t in ticks if began < t < lane.producer.sent_at[-1]]
    # The other task ran throughout the batch, at least once per YIELD_EVERY_S of work.
    assert len(during) >= (RECORDS * WORK_S) / YIELD_EVERY_S * 0.5, (len(during), ended - began)
    lane.stores[0].close()
