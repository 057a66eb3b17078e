"""`load run` says how much of a long setup is left (a world of 300,000 machines took
over five minutes to register and onboard, silently)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from load import run
from load.latency import LagSample, remaining
from load.workers import Fleet

HIGH = {"cs.pledges": {"0": 1099, "1": 549}}  # last offsets sent


def sample(p0: int, p1: int, signals: int = 0) -> LagSample:
    committed = {TopicPartition("cs.pledges", 0): p0, TopicPartition("cs.pledges", 1): p1}
    return LagSample(lag=0, by_topic={"cs.signals.e": signals}, committed=committed)


def test_remaining_counts_the_records_not_committed_past() -> None:
    assert remaining(sample(-1, -1), HIGH) == 1650  # nothing committed yet
    assert remaining(sample(1040, 550), HIGH) == 60
    assert remaining(sample(1100, 550), HIGH) == 0


class Sampler:
    def __init__(self, samples: list[LagSample]) -> None:
        self.samples = samples

    async def sample(self) -> LagSample:
        return self.samples.pop(0) if len(self.samples) > 1 else self.samples[0]


def test_the_wait_reports_progress_until_caught_up(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    # The topics held 1,500 records before these 150 (offsets are absolute).
    sampler = Sampler([sample(1000, 500), sample(1040, 550, signals=7), sample(1100, 550, signals=3),
                       sample(1100, 550)])

    async def go() -> tuple[bool, LagSample]:
        return await run._wait_caught_up(sampler, HIGH, 30.0, Fleet(), say=lines.append, what="registering",  # type: ignore[arg-type]
                                         every_s=0.0)

    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda _s: real_sleep(0))  # the wait polls every 0.5 s
    done, _ = asyncio.run(go())
    assert done
    assert lines[0].startswith("load: registering: 150 of 150 records to go, 0 signals queued (")
    assert lines[1].startswith("load: registering: 60 of 150 records to go, 7 signals queued (")
    assert lines[2].startswith("load: registering: 0 of 150 records to go, 3 signals queued (")
    assert len(lines) == 3  # nothing once caught up
