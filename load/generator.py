"""Open-loop load generator: events leave on a schedule fixed in advance.

Each generator process owns the machines ``index % processes == p`` and sends their
readings when the schedule says, whatever the broker or engine does; process 0 also sends
the business events and the scenario's scripted events. Sends are not paced by
acknowledgements: acks are counted in callbacks. When a process cannot keep up, its
events go out late; how late is recorded per event (an HDR histogram of lateness) and
every second in which it fell behind by more than ``behind_ms`` is reported, so a run
whose generator could not hold the rate says so instead of silently measuring less load.

Every record carries the header ``cs-origin-ns`` (the wall clock at send, ns since the
epoch) that the engine copies onto the outputs the record causes.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import multiprocessing as mp
import queue as queue_mod
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hdrh.histogram import HdrHistogram

from load.schedule import Schedule
from load.world import BusinessSim, Plan, Rec, TelemetrySim, World, WorldConfig, to_record

ORIGIN_HEADER = "cs-origin-ns"  # the engine's name for it: streams.app.ORIGIN_HEADER
HIGHEST_US = 3_600_000_000


def new_histogram() -> HdrHistogram:
    """Microseconds from 1 us to 1 h, 3 significant digits."""
    return HdrHistogram(1, HIGHEST_US, 3)


@dataclass(frozen=True)
class GenSpec:
    """Everything a generator process needs; picklable, so processes can be spawned."""

    bootstrap: str
    world: WorldConfig
    plan: Plan
    telemetry: Schedule
    business: Schedule
    time_scale: float  # simulated seconds per wall second (business event time)
    processes: int = 1
    behind_ms: float = 100.0
    # Telemetry slots sent before the run (load/run.py sends the machines' first round,
    # their onboarding, with the setup): generated here too, for the machines' state,
    # but not sent; the schedule's slot 0 is slot ``first_slot`` of the world.
    first_slot: int = 0


@dataclass
class GenStats:
    """What one generator process did; merged by :func:`merge`."""

    process: int
    sent: int = 0
    acked: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    lateness: str = ""  # HDR histogram of send lateness (us), base64-encoded
    behind: list[tuple[float, float]] = field(default_factory=list)  # (second of run, worst ms late)
    high: dict[str, dict[int, int]] = field(default_factory=dict)  # topic -> partition -> last offset
    by_topic: dict[str, int] = field(default_factory=dict)
    send_s: float = 0.0


def items(spec: GenSpec, p: int) -> Iterator[tuple[float, list[Rec]]]:
    """(seconds from the start, records) in due order for process ``p``."""
    world = World(spec.world)
    sim = TelemetrySim(world, spec.plan, spec.processes, p)
    total = spec.telemetry.total
    last = spec.telemetry.duration_s

    first = spec.first_slot
    slots = sim.slots(total + first)
    # The slots sent before the run are generated now, before the clock starts, not as
    # the first due item (2,000 machines' readings made the first sends late).
    head = next(((j, recs) for j, recs in slots if j >= first), None)

    def telemetry() -> Iterator[tuple[float, list[Rec]]]:
        for j, recs in itertools.chain([head] if head else [], slots):
            if recs:
                yield (spec.telemetry.due(j - first) if j - first < total else last), recs

    streams: list[Iterator[tuple[float, list[Rec]]]] = [telemetry()]
    if p == 0:
        biz = BusinessSim(world)
        start = spec.world.start.timestamp()

        def when(t: float) -> datetime:
            return datetime.fromtimestamp(start + t * spec.time_scale, UTC)

        streams.append((t, [to_record(biz.next(when(t)))]) for t in spec.business.times())
        if spec.plan.default_at_s is not None:
            at = spec.plan.default_at_s
            streams.append(iter([(at, [to_record(e) for e in biz.core_default(when(at))])]))
        if spec.plan.price_crash_at_s is not None:
            at = spec.plan.price_crash_at_s
            streams.append(iter([(at, [to_record(e) for e in world.receipts.crash(biz.mk, when(at))])]))
    return heapq.merge(*streams, key=lambda item: item[0])


class _Acks:
    def __init__(self, stats: GenStats) -> None:
        self.stats = stats

    def __call__(self, fut: asyncio.Future[Any]) -> None:
        s = self.stats
        exc = fut.exception()
        if exc is not None:
            s.errors += 1
            if len(s.error_samples) < 10:
                s.error_samples.append(repr(exc))
            return
        md = fut.result()
        s.acked += 1
        parts = s.high.setdefault(md.topic, {})
        if md.offset > parts.get(md.partition, -1):
            parts[md.partition] = md.offset


async def _soon() -> float:
    return time.time() + 0.1


async def send_all(spec: GenSpec, p: int, start: Callable[[], Awaitable[float]] = _soon,
                   report: Callable[[tuple[Any, ...]], None] = lambda m: None) -> GenStats:
    """Send process ``p``'s share of the schedule.

    The world is built and the producer connected first; then ``start()`` returns the wall
    time at which slot 0 is due (it waits for the other processes), so set-up costs never
    count as lateness.
    """
    from connectors.kafka_io import make_producer

    stats = GenStats(p)
    hist = new_histogram()
    on_ack = _Acks(stats)
    todo = items(spec, p)
    producer = make_producer(spec.bootstrap, linger_ms=5, max_batch_size=512 * 1024)
    await producer.start()
    try:
        t0 = await start()
        window, window_late, window_sent = 0, 0.0, 0
        since_yield = 0
        started = time.time()
        for due, recs in todo:
            due_at = t0 + due
            now = time.time()
            if due_at > now + 0.0005:
                await asyncio.sleep(due_at - now)
                now = time.time()
                since_yield = 0
            late = now - due_at if now > due_at else 0.0
            hist.record_value(max(1, min(HIGHEST_US, int(late * 1e6))))
            sec = int(now - t0)
            if sec != window:
                _close_window(spec, stats, report, window, window_late, window_sent)
                window, window_late, window_sent = sec, 0.0, 0
            if late > window_late:
                window_late = late
            headers = [(ORIGIN_HEADER, str(time.time_ns()).encode())]
            for topic, key, value in recs:
                fut = await producer.send(topic, value, key=key, headers=headers)
                fut.add_done_callback(on_ack)
                stats.by_topic[topic] = stats.by_topic.get(topic, 0) + 1
            stats.sent += len(recs)
            window_sent += len(recs)
            since_yield += len(recs)
            if since_yield >= 500:
                # Behind schedule the loop never sleeps; let the producer's sender run.
                await asyncio.sleep(0)
                since_yield = 0
        _close_window(spec, stats, report, window, window_late, window_sent)
        await producer.flush()
        stats.send_s = time.time() - started
    finally:
        await producer.stop()
    stats.lateness = hist.encode().decode()
    return stats


def _close_window(spec: GenSpec, stats: GenStats, report: Callable[[tuple[Any, ...]], None],
                  second: int, late: float, sent: int) -> None:
    late_ms = late * 1000
    if late_ms > spec.behind_ms:
        stats.behind.append((second, round(late_ms, 1)))
    report(("progress", stats.process, second, stats.sent, late_ms, sent))


# ------------------------------------------------------------------ processes
def _process_main(spec: GenSpec, p: int, q: Any, go: Any, t0: Any) -> None:
    async def start() -> float:
        q.put(("ready", p))
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        return float(t0.value)

    try:
        stats = asyncio.run(send_all(spec, p, start, q.put))
        q.put(("done", p, stats))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        q.put(("error", p, f"{exc!r}\n{traceback.format_exc()}"))


@dataclass
class Progress:
    """Live figures of the generator processes, updated from their messages."""

    sent: dict[int, int] = field(default_factory=dict)
    late_ms: dict[int, float] = field(default_factory=dict)
    behind: list[tuple[int, int, float]] = field(default_factory=list)  # (process, second, ms)
    sent_by_second: dict[int, int] = field(default_factory=dict)  # all processes, by second of the run
    late_by_second: dict[int, float] = field(default_factory=dict)  # worst lateness (ms) in that second
    behind_ms: float = 100.0
    t0: float | None = None  # wall time at which slot 0 was due, once the processes started
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    @property
    def worst_late_ms(self) -> float:
        return max(self.late_ms.values(), default=0.0)

    def on(self, msg: tuple[Any, ...]) -> None:
        if msg[0] == "progress":
            _, p, second, sent, late_ms, in_window = msg
            self.sent[p] = sent
            self.late_ms[p] = late_ms
            self.sent_by_second[second] = self.sent_by_second.get(second, 0) + in_window
            self.late_by_second[second] = max(late_ms, self.late_by_second.get(second, 0.0))
            if late_ms > self.behind_ms:
                self.behind.append((p, second, late_ms))


async def run_processes(spec: GenSpec, progress: Progress | None = None, lead_s: float = 0.3,
                        timeout_s: float | None = None) -> tuple[float, list[GenStats]]:
    """Spawn ``spec.processes`` generators, start them together; returns (t0, stats)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    go = ctx.Event()
    t0 = ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_process_main, args=(spec, p, q, go, t0), daemon=True,
                         name=f"load-gen-{p}") for p in range(spec.processes)]
    for proc in procs:
        proc.start()
    progress = progress or Progress(behind_ms=spec.behind_ms)
    ready: set[int] = set()
    done: dict[int, GenStats] = {}
    errors: list[str] = []
    deadline = time.monotonic() + (timeout_s or spec.telemetry.duration_s * 3 + 120)
    try:
        while len(done) + len(errors) < len(procs):
            try:
                msg = q.get_nowait()
            except queue_mod.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError("generator processes did not finish in time") from None
                if any(not pr.is_alive() and pr.exitcode not in (0, None) for pr in procs) and q.empty():
                    raise RuntimeError("a generator process died: "
                                       + ", ".join(f"{pr.name}={pr.exitcode}" for pr in procs)) from None
                await asyncio.sleep(0.05)
                continue
            kind = msg[0]
            if kind == "ready":
                ready.add(msg[1])
                if len(ready) == len(procs):
                    t0.value = progress.t0 = time.time() + lead_s
                    go.set()
                    progress.started.set()
            elif kind == "done":
                done[msg[1]] = msg[2]
            elif kind == "error":
                errors.append(f"generator {msg[1]}: {msg[2]}")
            else:
                progress.on(msg)
        if errors:
            raise RuntimeError("; ".join(errors))
    finally:
        go.set()
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
    return t0.value, [done[p] for p in sorted(done)]


def merge(stats: list[GenStats]) -> dict[str, Any]:
    """One summary of all processes: counts, lateness percentiles, when each fell behind."""
    hist = new_histogram()
    high: dict[str, dict[int, int]] = {}
    by_topic: dict[str, int] = {}
    for s in stats:
        if s.lateness:
            hist.add(HdrHistogram.decode(s.lateness.encode()))
        for topic, parts in s.high.items():
            for part, off in parts.items():
                cur = high.setdefault(topic, {})
                cur[part] = max(off, cur.get(part, -1))
        for topic, n in s.by_topic.items():
            by_topic[topic] = by_topic.get(topic, 0) + n
    return {
        "processes": len(stats),
        "sent": sum(s.sent for s in stats), "acked": sum(s.acked for s in stats),
        "errors": sum(s.errors for s in stats),
        "error_samples": [e for s in stats for e in s.error_samples][:10],
        "by_topic": by_topic,
        "lateness_ms": {"p50": hist.get_value_at_percentile(50) / 1000,
                        "p99": hist.get_value_at_percentile(99) / 1000,
                        "max": hist.get_max_value() / 1000},
        "behind": [{"process": s.process, "second": sec, "late_ms": ms} for s in stats for sec, ms in s.behind],
        "high_offsets": {t: {str(k): v for k, v in parts.items()} for t, parts in high.items()},
    }
