"""`creditstream load run`: set up a world, drive it open-loop, measure, report.

Order of a run:
  1. engine: start ``start_workers`` workers on a fresh engine id, or use a running one;
  2. setup: register the world (programs, parties, consents, supply graph, pledges) and
     wait until the engine group has committed past all of it, so telemetry never meets
     a machine the engine does not know yet;
  3. load: generator processes send the scenario's schedule; meanwhile the collector
     reads outputs and the lag sampler asks the broker for the group's offsets every second;
  4. drain: wait until the engine has committed past every acknowledged event (or the
     drain timeout), then read the last outputs;
  5. results JSON + HTML report; the SLO verdict decides the exit code.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from load import report, slo
from load.burst import DRAIN_LIMIT_S, recovery
from load.generator import GenSpec, Progress, merge, run_processes
from load.latency import (
    INPUT_TOPICS,
    Collector,
    LagSample,
    LagSampler,
    LatencyRecorder,
    caught_up,
    remaining,
    signals_topic,
)
from load.schedule import Schedule, for_scenario
from load.workers import Fleet, start_workers
from load.world import TelemetrySim, World, WorldConfig, plan_for
from schemas import config
from schemas.topics import ENGINE_ID, SIGNALS_TOPIC

EVENTS_PER_GENERATOR = 15_000  # what one generator process holds comfortably on this machine class


@dataclass
class RunOptions:
    scenario: str = "steady"
    rate: float = 1000.0
    duration_s: float = 30.0
    slo: str | None = None
    generators: int | None = None  # None: one per EVENTS_PER_GENERATOR of the peak rate
    out_dir: Path | None = None
    app_id: str | None = None
    start_workers: int = 0
    seed: int = 1
    machines: int = 2000
    contractors: int = 100
    cadence_s: int = 900
    business_share: float = 0.01
    burst_s: float = 60.0
    drain_timeout_s: float = 60.0
    setup_timeout_s: float | None = None  # None: 120 s plus a second per 2,000 machines
    metrics_urls: list[str] = field(default_factory=list)
    progress: bool = True


@dataclass
class Live:
    """Per-second figures sampled during the run."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    peak_lag: int = 0
    last: LagSample | None = None


def _processed(sample: LagSample) -> int:
    return sum(off for tp, off in sample.committed.items() if tp.topic in INPUT_TOPICS)


async def _wait_caught_up(sampler: LagSampler, high: dict[str, dict[str, int]], timeout_s: float,
                          fleet: Fleet, also_signals: bool = True, say: Callable[[str], None] | None = None,
                          what: str = "setup", every_s: float = 10.0) -> tuple[bool, LagSample]:
    """Until the groups committed past ``high`` (and, optionally, drained the signals);
    raises when a worker the run started has died. With ``say``, a line every
    ``every_s`` on how much of ``what`` is left (a large world's setup takes minutes)."""
    began = time.monotonic()
    deadline, told = began + timeout_s, began
    total: int | None = None
    while True:
        fleet.check()
        sample = await sampler.sample()
        queued = sum(v for t, v in sample.by_topic.items() if t.startswith(SIGNALS_TOPIC))
        done = caught_up(sample, high) and (queued == 0 or not also_signals)
        now = time.monotonic()
        if done or now > deadline:
            return done, sample
        if say is not None:
            if total is None:  # offsets are absolute: count from the first look
                total = remaining(sample, high)
            if now - told >= every_s:
                say(f"load: {what}: {remaining(sample, high):,} of {total:,} records to go, {queued:,} signals "
                    f"queued ({now - began:.0f} s of at most {timeout_s:.0f} s)")
                told = now
        await asyncio.sleep(0.5)


def _bar(frac: float, width: int = 24) -> str:
    n = int(max(0.0, min(1.0, frac)) * width)
    return "#" * n + "." * (width - n)


async def _send_setup(bootstrap: str, records: Iterable[tuple[str, bytes, bytes]]) -> dict[str, dict[str, int]]:
    from connectors.kafka_io import make_producer

    producer = make_producer(bootstrap, linger_ms=20)
    await producer.start()
    high: dict[str, dict[str, int]] = {}
    futures: list[asyncio.Future[Any]] = []

    async def settle() -> None:
        for md in await asyncio.gather(*futures):
            parts = high.setdefault(md.topic, {})
            parts[str(md.partition)] = max(md.offset, parts.get(str(md.partition), -1))
        futures.clear()

    try:
        for t, k, v in records:
            futures.append(await producer.send(t, v, key=k))
            if len(futures) >= 20_000:  # a world of millions of pledges is not held in memory
                await settle()
        await settle()
    finally:
        await producer.stop()
    return high


async def run(opts: RunOptions) -> tuple[int, dict[str, Any]]:
    """Do one load run; returns (exit code, results)."""
    settings = config.load()
    bootstrap = settings.kafka_bootstrap
    clauses = slo.parse(opts.slo) if opts.slo else []
    tag = f"L{uuid.uuid4().hex[:7]}"
    out_dir = opts.out_dir or settings.state_dir / "load" / tag
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if opts.progress else (lambda *a: None)

    fleet = Fleet()
    if opts.start_workers:
        app_id = f"cs-load-{tag.lower()}"
        say(f"load: starting {opts.start_workers} worker(s) on engine id {app_id}")
        fleet = Fleet(await asyncio.to_thread(start_workers, app_id, opts.start_workers, out_dir / "workers"))
    else:
        app_id = opts.app_id or ENGINE_ID
    try:
        return await _run(opts, bootstrap, clauses, tag, out_dir, app_id,
                          fleet.metrics_urls + list(opts.metrics_urls), say, fleet)
    finally:
        await asyncio.to_thread(fleet.stop)


async def _run(opts: RunOptions, bootstrap: str, clauses: list[slo.Clause], tag: str, out_dir: Path,
               app_id: str, metrics_urls: list[str], say: Any, fleet: Fleet) -> tuple[int, dict[str, Any]]:
    cfg = WorldConfig(seed=opts.seed, tag=tag, machines=opts.machines,
                      contractors=min(opts.contractors, opts.machines), cadence_s=opts.cadence_s)
    world = World(cfg)
    shape = for_scenario(opts.scenario, opts.rate, opts.duration_s, opts.burst_s)
    share = max(0.0, min(0.5, opts.business_share))
    telemetry = shape.scaled(1 - share)
    business = Schedule.steady(opts.rate * share, opts.duration_s)
    # Simulated seconds per wall second at the steady rate: one round of readings per cadence.
    time_scale = cfg.cadence_s * opts.rate * (1 - share) / cfg.machines
    plan = plan_for(opts.scenario, world, telemetry.total, opts.duration_s)
    peak = max(s.rate for s in shape.segments)
    generators = opts.generators or min(os.cpu_count() or 1, max(1, math.ceil(peak / EVENTS_PER_GENERATOR)))
    spec = GenSpec(bootstrap, cfg, plan, telemetry, business, time_scale, processes=generators,
                   first_slot=cfg.machines)

    sampler = LagSampler(bootstrap, app_id)
    await sampler.open()
    try:
        say(f"load: run {tag}: world of {len(world.borrowers)} borrowers, {cfg.machines} machines; "
            f"registering it with engine {app_id}")
        setup_high = await _send_setup(bootstrap, world.setup_records())
        setup_timeout = opts.setup_timeout_s or 120.0 + cfg.machines / 2000
        ok, _ = await _wait_caught_up(sampler, setup_high, setup_timeout, fleet, say=say, what="registering")
        if not ok:
            raise RuntimeError(f"engine {app_id} did not process the world setup within "
                               f"{setup_timeout:.0f} s: is a worker running with this app id?")
        # Onboarding: every machine's first reading makes a signal and a stage-2 decision
        # (in steady operation about 1 reading in 1,000 does). It is part of the setup, as
        # a fleet is onboarded once, not in the first seconds of every run; its time is
        # reported (results "onboarding") and the run starts at the second round.
        began = time.monotonic()
        first = [r for _slot, recs in TelemetrySim(world, plan).slots(cfg.machines) for r in recs]
        ok, _ = await _wait_caught_up(sampler, await _send_setup(bootstrap, first), setup_timeout, fleet,
                                      say=say, what="onboarding")
        if not ok:
            raise RuntimeError(f"engine {app_id} did not process the machines' first readings within "
                               f"{setup_timeout:.0f} s")
        onboarding = {"readings": len(first), "s": round(time.monotonic() - began, 2)}
        recorder = LatencyRecorder(time.time())
        collector = Collector(bootstrap, app_id, tag, recorder)
        await collector.open()
        try:
            results = await _load(opts, spec, sampler, collector, recorder, say, fleet)
        finally:
            await collector.close()
    finally:
        await sampler.close()

    if metrics_urls:
        from load.metrics import scrape

        results["metrics"] = await scrape(metrics_urls)
    results.update({
        "run": tag, "scenario": opts.scenario, "rate": opts.rate, "duration_s": opts.duration_s,
        "app_id": app_id, "signals_topic": signals_topic(app_id), "onboarding": onboarding,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "world": {"seed": cfg.seed, "machines": cfg.machines, "contractors": cfg.contractors,
                  "borrowers": len(world.borrowers), "cadence_s": cfg.cadence_s,
                  "simulated_s_per_wall_s": round(time_scale, 3)},
        "plan": asdict(plan), "schedule": [asdict(s) for s in shape.segments],
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
    })
    burst = recovery(results["timeline"], results["schedule"], opts.rate)
    if burst is not None:
        results["burst"] = burst
    code = 0
    if clauses:
        checks = slo.check(clauses, results)
        if burst is not None:
            checks.append({"clause": f"lag back to its pre-burst level within {DRAIN_LIMIT_S:g} s of the burst's end",
                           "actual": burst["drained_after_s"], "limit": DRAIN_LIMIT_S, "ok": burst["ok"]})
        checks.append({"clause": "every sent event processed", "actual": results["drained"], "limit": True,
                       "ok": bool(results["drained"])})
        # A generator that could not keep the schedule delivered less load than asked:
        # the run then proves nothing about the rate.
        late = results["generator"]["lateness_ms"]["p99"]
        checks.append({"clause": f"generators on schedule (p99 lateness <= {spec.behind_ms:g} ms)",
                       "actual": late, "limit": spec.behind_ms, "ok": late <= spec.behind_ms})
        ok = all(c["ok"] for c in checks)
        results["slo"] = {"spec": opts.slo, "ok": ok, "checks": checks}
        code = 0 if ok else 1
    if burst is not None:
        back = "never during the run" if burst["drained_after_s"] is None else f"{burst['drained_after_s']:.0f} s after it ended"
        say(f"load: {burst['factor']:g}x burst from {burst['start_s']:.0f} s to {burst['end_s']:.0f} s: lag peak "
            f"{burst['lag_peak']:,}, back to its pre-burst level ({burst['level']:,.0f}) {back}")
    js, page = report.write(results, out_dir)
    say(f"load: results {js}\nload: report  {page}")
    return code, results


async def _load(opts: RunOptions, spec: GenSpec, sampler: LagSampler, collector: Collector,
                recorder: LatencyRecorder, say: Any, fleet: Fleet) -> dict[str, Any]:
    progress = Progress(behind_ms=spec.behind_ms)
    live = Live()
    stop = asyncio.Event()

    async def collect() -> None:
        while not stop.is_set():
            await collector.poll(200)

    collecting = asyncio.create_task(collect())
    gen_task = asyncio.create_task(run_processes(spec, progress))
    await asyncio.wait({gen_task, asyncio.create_task(progress.started.wait())},
                       return_when=asyncio.FIRST_COMPLETED)
    # Every figure of the timeline counts seconds from the moment slot 0 was due.
    t_start = recorder.t0 = progress.t0 or time.time()
    base = await sampler.sample()
    prev: dict[str, Any] = {"sent": 0, "processed": _processed(base), "at": t_start, "cpu": None}
    tty = sys.stderr.isatty()
    printed_behind = 0

    async def tick(phase: str) -> LagSample:
        """One row of the timeline: sampled lag, engine progress, worker resources."""
        nonlocal printed_behind
        fleet.check()
        live.last = s = await sampler.sample()
        now = time.time()
        sent, processed = progress.total_sent, _processed(s)
        dt = max(1e-3, now - prev["at"])
        row: dict[str, Any] = {"t": round(now - t_start, 1), "sent_live": round((sent - prev["sent"]) / dt, 1),
                               "processed_per_s": round((processed - prev["processed"]) / dt, 1), "lag": s.lag,
                               "phase": phase}
        usage = fleet.usage()
        if usage is not None:
            row["worker_rss_mb"] = round(usage[0], 1)
            if prev["cpu"] is not None:
                row["worker_cpu_pct"] = round((usage[1] - prev["cpu"]) / dt * 100, 1)
            prev["cpu"] = usage[1]
        live.rows.append(row)
        live.peak_lag = max(live.peak_lag, s.lag)
        prev.update(sent=sent, processed=processed, at=now)
        for p, sec, ms in progress.behind[printed_behind:]:
            say(f"\nload: generator {p} fell behind schedule by {ms:,.0f} ms in second {sec}")
        printed_behind = len(progress.behind)
        if opts.progress:
            p99 = recorder.hist["all"].get_value_at_percentile(99) / 1000
            line = (f"[{_bar((now - t_start) / opts.duration_s)}] {now - t_start:5.0f}/{opts.duration_s:.0f}s "
                    f"{phase:5} sent {sent:>10,} ({row['sent_live']:>8,.0f}/s) "
                    f"processed {row['processed_per_s']:>8,.0f}/s  p99 {p99:7.1f} ms  "
                    f"lag {s.lag:>8,}  dead {sum(recorder.deadletters.values())}")
            print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
        return s

    try:
        while not gen_task.done():
            await asyncio.wait({gen_task}, timeout=1.0)
            await tick("load")
        t_gen0, stats = gen_task.result()
        gen = merge(stats)
        send_end = time.time()
        if opts.progress and tty:
            print(file=sys.stderr)
        say(f"load: sent {gen['sent']:,} events ({gen['errors']} errors); waiting for the engine to drain")
        # Drain: keep sampling every second until the engine committed past every event sent.
        drained = False
        while time.time() - send_end < opts.drain_timeout_s:
            began = time.monotonic()
            s = await tick("drain")
            drained = caught_up(s, gen["high_offsets"]) and all(
                v == 0 for t, v in s.by_topic.items() if t.startswith(SIGNALS_TOPIC))
            if drained:
                break
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
        if opts.progress and tty:
            print(file=sys.stderr)
        drain_s = round(time.time() - send_end, 2)
        # The last outputs: read until nothing new has come for a second and a half.
        quiet_since = time.monotonic()
        seen = collector.read
        while time.monotonic() - quiet_since < 1.5 and time.monotonic() - send_end < opts.drain_timeout_s + 10:
            await asyncio.sleep(0.25)
            if collector.read != seen:
                seen, quiet_since = collector.read, time.monotonic()
    finally:
        stop.set()
        await asyncio.gather(collecting, return_exceptions=True)
        if not gen_task.done():
            gen_task.cancel()
    summary = recorder.summary()
    # One row per second of the run (counted from the moment slot 0 was due): what the
    # generators sent in it, what the collector read in it, the lag sampled during it.
    rows: dict[int, dict[str, Any]] = {}
    for r in live.rows:
        r.pop("sent_live", None)
        rows[int(r["t"])] = {**r, "t": float(int(r["t"]))}
    for sec, n in progress.sent_by_second.items():
        rows.setdefault(sec, {"t": float(sec)}).update(
            sent_per_s=n, gen_late_ms=round(progress.late_by_second.get(sec, 0.0), 1))
    for sec, fig in recorder.seconds.items():
        rows.setdefault(sec, {"t": float(sec)}).update(
            outputs_per_s=sum(v for k, v in fig.counts.items() if k != "deadletter"),
            deadletters=fig.counts.get("deadletter", 0), p50_ms=fig.p50_ms, p99_ms=fig.p99_ms, max_ms=fig.max_ms)
    committed = {f"{tp.topic}:{tp.partition}": off for tp, off in (live.last.committed if live.last else {}).items()
                 if isinstance(tp, TopicPartition)}
    workers: dict[str, Any] = {}
    rss = [r["worker_rss_mb"] for r in live.rows if "worker_rss_mb" in r]
    cpu = [r["worker_cpu_pct"] for r in live.rows if "worker_cpu_pct" in r and r["phase"] == "load"]
    if rss:
        workers = {"count": len(fleet.workers), "rss_mb_peak": max(rss), "rss_mb_end": rss[-1],
                   "cpu_pct_mean_under_load": round(sum(cpu) / len(cpu), 1) if cpu else None}
    return {**summary, "generator": gen, "generator_start_offset_s": round(t_gen0 - t_start, 3), "workers": workers,
            "timeline": [rows[k] for k in sorted(rows)], "peak_lag": live.peak_lag,
            "final_lag": live.last.lag if live.last else None, "drained": drained, "drain_s": drain_s,
            "committed_offsets": committed}
