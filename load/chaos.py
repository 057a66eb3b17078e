"""`creditstream chaos run --fault F`: a fault injected into a real engine under load.

The run produces a deterministic world (load/world.py) to a fresh engine id, injects the
fault while telemetry streams in, waits until the engine has caught up, and checks what a
lender would see against the offline replay of exactly the same records (the run without
the fault):

- lost: versions missing from a borrower's sequence, and borrowers whose final limit,
  available amount or status differ from the replay's;
- duplicates: the same (borrower, version) published twice with different content (an
  identical re-publication is what at-least-once allows: lenders de-duplicate by version);
- recovery: seconds from the fault's end until the engine commits progress again.

Faults: ``kill`` (SIGKILL the worker mid-stream, restart it), ``rebalance`` (add a second
worker, then stop the first), ``broker`` (stop Kafka for 10 s, start it again).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from connectors.kafka_io import TopicReader
from creditstream import config
from load.latency import LagSampler
from load.workers import Worker, free_port, start_at_end
from load.world import Plan, TelemetrySim, World, WorldConfig
from streams.replay import Replay

FAULTS = ("kill", "rebalance", "broker")


@dataclass
class ChaosResult:
    fault: str
    events_in: int
    updates_out: int
    borrowers: int
    lost: int
    duplicates: int
    identical_repeats: int
    final_mismatches: int
    recover_s: float

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.final_mismatches == 0

    def line(self) -> str:
        return (f"chaos {self.fault}: events in {self.events_in:,}, updates out {self.updates_out:,} "
                f"({self.borrowers} borrowers), lost {self.lost}, duplicates {self.duplicates} "
                f"(identical repeats {self.identical_repeats}), final mismatches {self.final_mismatches}, "
                f"recovered in {self.recover_s:.1f} s -> {'PASS' if self.ok else 'FAIL'}")


def _reference(records: list[tuple[str, bytes, bytes]]) -> dict[str, dict[str, Any]]:
    """Final limit update per borrower from the offline replay of the same records."""
    r = Replay()
    final: dict[str, dict[str, Any]] = {}
    for _topic, _key, value in records:
        for out in r.feed(value):
            if out.topic == "cs.limits":
                final[out.key] = out.value["payload"]
    return final


async def _wait_ready(workers: list[Worker], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not all(w.ready() for w in workers):
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers not ready; logs: {[str(w.log) for w in workers]}")
        await asyncio.sleep(0.3)


async def _wait_caught_up(sampler: LagSampler, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (await sampler.sample()).lag > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the engine did not catch up in time")
        await asyncio.sleep(0.5)


async def _progress_after(sampler: LagSampler, since: float, timeout: float = 180) -> float:
    """Seconds from ``since`` until the engine commits past what it had committed."""
    before = sum((await sampler.sample()).committed.values())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = await sampler.sample()
        if sum(s.committed.values()) > before or s.lag == 0:
            return time.monotonic() - since
        await asyncio.sleep(0.2)
    raise RuntimeError("no progress after the fault")


async def run(fault: str, events: int, machines: int, rate: float, seed: int) -> ChaosResult:
    from connectors.kafka_io import make_producer

    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")
    settings = config.load()
    bootstrap = settings.kafka_bootstrap
    tag = f"Ch{uuid.uuid4().hex[:6]}"
    app_id = f"cs-chaos-{tag.lower()}"
    home = settings.state_dir / "chaos" / app_id
    await start_at_end(bootstrap, app_id)
    workers = [Worker(app_id, "c1", home / "c1", web_port=free_port())]
    for w in workers:
        w.start()
    await _wait_ready(workers)

    world = World(WorldConfig(seed=seed, tag=tag, machines=machines, contractors=max(2, machines // 25)))
    setup = list(world.setup_records())
    telemetry = [rec for _slot, recs in TelemetrySim(world, Plan("steady")).slots(events) for rec in recs]
    records = setup + telemetry
    reference = _reference(records)

    sampler = LagSampler(bootstrap, app_id)
    await sampler.open()
    producer = make_producer(bootstrap, linger_ms=10, request_timeout_ms=120000)
    await producer.start()
    recover_s = 0.0
    try:
        async with TopicReader(bootstrap, "cs.limits") as reader:
            await asyncio.gather(*[await producer.send(t, v, key=k) for t, k, v in setup])
            await _wait_caught_up(sampler, 300)
            start = time.monotonic()
            fault_at = len(telemetry) * 2 // 5
            for i, (topic, key, value) in enumerate(telemetry):
                # Open loop: the send schedule is fixed in advance, not paced by the engine.
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await producer.send(topic, value, key=key)
                if i == fault_at:
                    recover_s = await _inject(fault, workers, app_id, home, settings, sampler)
            await producer.flush()
            await _wait_caught_up(sampler, 600)
            mine = await reader.read(lambda _recs: False, timeout=3.0)
    finally:
        await producer.stop()
        await sampler.close()
        for w in workers:
            w.stop()

    source = f"creditstream.engine.{app_id}"
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    duplicates = repeats = 0
    for rec in mine:
        try:
            value = orjson.loads(rec.value)
        except orjson.JSONDecodeError:
            continue  # someone else's malformed record on the shared topic
        if not isinstance(value, dict) or value.get("source") != source:
            continue
        p = value["payload"]
        key = (p["borrower_id"], p["version"])
        if key in seen:
            if seen[key] == p:
                repeats += 1
            else:
                duplicates += 1
        else:
            seen[key] = p
    by_borrower: dict[str, list[int]] = {}
    for b, v in seen:
        by_borrower.setdefault(b, []).append(v)
    lost = sum(max(vs) - len(vs) for vs in by_borrower.values())
    mismatches = 0
    for b, want in reference.items():
        got = seen.get((b, max(by_borrower.get(b, [0]))))
        if got is None or (got["limit"], got["available"], got["status"]) != (
                want["limit"], want["available"], want["status"]):
            mismatches += 1
    return ChaosResult(fault, len(records), len(seen), len(reference), lost, duplicates, repeats,
                       mismatches, recover_s)


async def _inject(fault: str, workers: list[Worker], app_id: str, home: Any, settings: config.Settings,
                  sampler: LagSampler) -> float:
    if fault == "kill":
        w = workers[0]
        assert w.proc is not None
        os.killpg(w.proc.pid, signal.SIGKILL)
        w.proc.wait(10)
        w.start()
        t0 = time.monotonic()
        await _wait_ready([w])
        return await _progress_after(sampler, t0)
    if fault == "rebalance":
        extra = Worker(app_id, "c2", home / "c2", web_port=free_port())
        extra.start()
        workers.append(extra)
        await _wait_ready([extra])
        await asyncio.sleep(5)
        workers[0].stop()
        t0 = time.monotonic()
        return await _progress_after(sampler, t0)
    # broker
    from creditstream.stack.kafka import Kafka

    kafka = Kafka(settings)
    kafka.stop()
    await asyncio.sleep(10)
    kafka.start()
    t0 = time.monotonic()
    await kafka.wait_ready(90)
    return await _progress_after(sampler, t0)


def main(args: Any) -> int:
    res = asyncio.run(run(args.fault, args.events, args.machines, args.rate, args.seed))
    print(orjson.dumps(asdict(res) | {"ok": res.ok}).decode())
    print(res.line())
    return 0 if res.ok else 1
