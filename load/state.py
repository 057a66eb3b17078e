"""`creditstream load state`: worker memory and restart recovery with N machines in state.

In one run, on a fresh engine id (its consumer groups positioned at the end of the
inputs, so the worker reads only this run's records and whatever arrives after):

1. a program, one contractor per ``fleet`` machines (registered, with consent) and one
   pledge per machine are produced, pre-encoded; one worker processes them. Telemetry
   alone makes no machine state: stage 1 refuses readings of unpledged machines
   (``unpledged_machine`` dead letters), so the pledge is what creates the state, and
   the pledges go first so that no reading overtakes its pledge;
2. one ISO 15143-3 reading per machine follows (counters, location, day totals: the state a
   reporting machine has); the run waits until stage 1 committed all of them and stage 2
   every signal they caused, then reads the worker's RSS (VmRSS, peak VmHWM), its table
   sizes (/metrics), the on-disk size of its data folder and the time each step took,
   and where the memory is: the worker reports its caches, RocksDB and allocators
   (load/heapworker.py) and :func:`heap_breakdown` sizes a decoded state;
3. recovery, three times: the worker is stopped (SIGTERM, then SIGKILL, then SIGTERM and
   a new, empty data folder: a new host restoring everything from the changelogs) and
   started again; one probe reading is produced at once, and the time from the process
   start until stage 1 has committed past the probe is measured. At the end, machine 0's
   state must have reached all three probes (committed past is not the same as applied).

The stage-1 table is counted exactly (this run's machine ids in the RocksDB databases)
while the worker is stopped. The run's data folders are deleted at the end (~250 MB at a
million machines, two of them) unless ``keep_data``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from connectors.kafka_io import (
    end_offsets,
    make_producer,
    produce_events,
    start_at_end,
)
from load.bench import FLEET, TELEMETRY, committed, telemetry_records
from load.latency import signals_topic
from load.workers import free_port, is_ready
from schemas import config
from schemas.codec import encode
from schemas.factory import EventFactory
from schemas.topics import PLEDGES_TOPIC, REGISTRY_TOPIC
from streams.fastlane import (
    engine_groups,
    lane_folder,
    lane_group,
    partition_databases,
    processor_group,
)

PLEDGES = PLEDGES_TOPIC
REGISTRY = REGISTRY_TOPIC
START = datetime(2026, 3, 1, tzinfo=UTC)
SEND_CHUNK = 20_000


@dataclass
class StateOptions:
    """What `creditstream load state` runs."""

    machines: int
    fleet: int = FLEET
    timeout_s: float | None = None  # per waiting step; default grows with ``machines``
    keep_data: bool = False
    progress: bool = True

    @property
    def step_timeout_s(self) -> float:
        # Stage 2 re-decides a whole fleet per signal: 1,000,000 machines took ~20 min here.
        return self.timeout_s if self.timeout_s is not None else 600.0 + self.machines / 250


@dataclass
class Recovery:
    """One restart: how it was stopped, and how long until stage 1 processed a new reading."""

    mode: str  # "sigterm", "sigkill", "empty-dir"
    probe_s: float  # process start -> stage 1 committed past the probe
    ready_s: float | None  # process start -> /readyz answers 200 (lanes assigned and restored)
    restored: dict[str, int]  # lane -> states restored from its changelog (from the log)
    rss_mb: float  # VmRSS once the probe was processed
    event_id: str = ""  # the probe's
    reading_at: float = 0.0  # the probe's event time (epoch seconds) and hour meter
    hours: float = 0.0
    applied: bool | None = None  # whether machine 0's state has reached the probe in the end


@dataclass
class StateResult:
    """The figures of one run."""

    machines: int
    fleet: int
    app_id: str
    produce_s: float = 0.0
    pledges_s: float = 0.0  # worker start -> stage 1 committed every pledge
    telemetry_s: float = 0.0  # telemetry produced -> stage 1 committed every reading
    stage2_s: float = 0.0  # telemetry produced -> stage 2 committed every signal
    rss_mb: float = 0.0
    hwm_mb: float = 0.0
    cpu_s: float = 0.0
    table_keys: dict[str, float] = field(default_factory=dict)  # /metrics estimates
    states: int = 0  # exact: this run's machines in the stage-1 databases
    states_with_reading: int = 0  # of them, with an hour-meter reading applied
    lost_states: int = 0  # machines - states: pledges processed whose state was not kept
    other_states: int = 0  # machines other engines' producers pledged meanwhile
    rss_pledged_mb: float = 0.0  # VmRSS once stage 1 had every pledge
    heap: dict[str, dict[str, float]] = field(default_factory=dict)  # see heap_breakdown
    worker_heap: dict[str, Any] = field(default_factory=dict)  # the worker's own report (load/heapworker.py)
    disk_mb: dict[str, float] = field(default_factory=dict)
    recoveries: list[Recovery] = field(default_factory=list)
    tree: dict[str, Any] = field(default_factory=dict)


def _say(opts: StateOptions, text: str, end: str = "\n") -> None:
    if opts.progress:
        print(text, end=end, file=sys.stderr, flush=True)


def pledge_records(run: str, machines: int, fleet: int, f: EventFactory) -> list[tuple[bytes, bytes]]:
    """One pre-encoded pledge per machine, ``fleet`` machines per contractor.

    The first is encoded by the factory (so the schema is the contract's); the rest copy
    it with their own ids: no pydantic model per pledge, which at a million would take
    longer than producing them."""
    template = orjson.loads(encode(f.pledge(f"bm-{run}-0", f"bb-{run}-0", f"bp-{run}")))
    base_id = template["event_id"]
    out = []
    for m in range(machines):
        mid = f"bm-{run}-{m}"
        payload = {**template["payload"], "machine_id": mid, "borrower_id": f"bb-{run}-{m // fleet}"}
        out.append((mid.encode(), orjson.dumps({**template, "event_id": f"{base_id}-p{m}", "payload": payload})))
    return out


def probe_record(run: str, n: int, at: datetime) -> tuple[bytes, bytes]:
    """Reading ``n`` after the first of machine 0, at ``at``: its own event id and a later
    time, so stage 1 applies it (a repeated id or an older time would be skipped)."""
    key, value = telemetry_records(run, 1, 1, at)[0]
    event = orjson.loads(value)
    event["event_id"] = f"bt-{run}-probe-{n}"
    event["payload"]["cumulative_operating_hours"] += 0.01 * n
    return key, orjson.dumps(event)


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak resident) of a process in MB, from /proc/<pid>/status."""
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(rest.split()[0]) * 1024 / 1e6  # /proc says kB (KiB); MB like every other figure
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_mb(path: Path) -> float:
    """Space the files under ``path`` take on disk (allocated blocks), in MB."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue  # RocksDB compacted it away while we walked
    return total / 1e6


def count_states(data: Path, run: str) -> tuple[int, int, int]:
    """(this run's machine states, of them with a reading, other keys) in the stage-1
    databases of a *stopped* worker's data folder."""
    from rocksdict import AccessType, Options, Rdict

    prefix = f"bm-{run}-".encode()
    mine = read = other = 0
    for path in partition_databases(data, "machines"):
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            # raw_mode: every key is bytes (rocksdict's stub types a key as any kind it takes).
            for key, value in db.items():
                if key.startswith(b"\x00"):  # type: ignore[union-attr, arg-type]
                    continue  # the changelog position, not a state
                if key.startswith(prefix):  # type: ignore[union-attr, arg-type]
                    mine += 1
                    read += orjson.loads(value).get("hours") is not None
                else:
                    other += 1
        finally:
            db.close()
    return mine, read, other


def machine_state(data: Path, machine_id: str) -> dict[str, Any] | None:
    """One machine's stage-1 state in a *stopped* worker's data folder (None: not there)."""
    from rocksdict import AccessType, Options, Rdict

    for path in partition_databases(data, "machines"):
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            raw = db.get(machine_id.encode())
        finally:
            db.close()
        if raw is not None:
            return dict(orjson.loads(raw))
    return None


def heap_breakdown(data: Path, cached: dict[str, int] | None = None,
                   sample: int = 2000) -> dict[str, dict[str, Any]]:
    """What each lane's cache of decoded states holds, from a *stopped* worker's databases:
    keys, and for a sample of states their JSON size and the Python heap one takes once
    decoded (tracemalloc, in this process). The states cached are ``cached`` (lane ->
    count, as the worker reported them) or else what the cache's bound allows; the cache
    takes that many x the decoded size."""
    import inspect
    import tracemalloc

    from rocksdict import AccessType, Options, Rdict

    from streams.fastlane import PartitionStore

    # The cache's bound as the code has it, in bytes of JSON.
    bound = int(inspect.signature(PartitionStore.__init__).parameters["cache_bytes"].default)
    out: dict[str, dict[str, Any]] = {}
    for lane in ("machines", "facilities"):
        per_partition: list[int] = []
        raw_sample: list[bytes] = []
        for path in partition_databases(data, lane):
            db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
            try:
                n = 0
                # raw_mode: every key is bytes (rocksdict's stub types a key as any kind it takes).
                for key, value in db.items():
                    if key.startswith(b"\x00"):  # type: ignore[union-attr, arg-type]
                        continue
                    n += 1
                    if len(raw_sample) < sample:
                        raw_sample.append(value)
            finally:
                db.close()
            per_partition.append(n)
        if not raw_sample:
            continue
        tracemalloc.start()
        decoded = [orjson.loads(v) for v in raw_sample]
        heap, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del decoded
        per_state = heap / len(raw_sample)
        json_per_state = sum(map(len, raw_sample)) / len(raw_sample)
        if cached and lane in cached:
            n_cached = cached[lane]
        else:
            fits = int(bound / json_per_state)
            n_cached = sum(min(n, fits) for n in per_partition)
        out[lane] = {"keys": sum(per_partition),
                     "bound": f"{bound / 2**20:g} MiB of JSON",
                     "cached_states": n_cached, "json_bytes_per_state": round(json_per_state),
                     "heap_bytes_per_state": round(per_state), "cache_mb": round(n_cached * per_state / 1e6, 1)}
    return out


def table_keys(port: int) -> dict[str, float]:
    """The worker's estimated table sizes (``creditstream_table_keys``) from /metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("creditstream_table_keys{"):
            label, value = line.rsplit(" ", 1)
            out[label.split('table="', 1)[1].split('"', 1)[0]] = float(value)
    return out


class WorkerProcess:
    """The run's one worker: started, stopped and restarted on a data folder."""

    def __init__(self, app_id: str, log: Path, heap_request: Path | None = None) -> None:
        self.app_id, self.log = app_id, log
        self.heap_request = heap_request  # the first start can report its heap (load/heapworker.py)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.log_from = 0

    def start(self, data: Path) -> None:
        data.mkdir(parents=True, exist_ok=True)
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        # The first start is the measured one; the restarts run the plain command.
        entry = ["-m", "creditstream.cli"]
        if self.heap_request is not None and self.proc is None:
            entry = ["-m", "load.heapworker", str(self.heap_request)]
        self.started = time.monotonic()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, *entry, "worker", "--app-id", self.app_id, "--data-dir",
                 str(data), "--web-port", str(self.port), "--loglevel", "info"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=config.REPO_ROOT)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> bytes:
        """What this start of the worker logged so far."""
        with open(self.log, "rb") as fh:
            fh.seek(self.log_from)
            return fh.read()

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"worker exited ({self.proc.returncode}); see {self.log}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def restored(self) -> dict[str, int]:
        """States restored per lane since this start ("lane X: restored N states" lines)."""
        out: dict[str, int] = {}
        for line in self.output().decode(errors="replace").splitlines():
            if ": restored " in line and "lane " in line:
                lane = line.split("lane ", 1)[1].split(":", 1)[0]
                out[lane] = out.get(lane, 0) + int(line.split(": restored ", 1)[1].split()[0])
        return out


async def _send(producer: AIOKafkaProducer, topic: str, records: list[tuple[bytes, bytes]],
                opts: StateOptions, label: str) -> None:
    """Produce pre-encoded records in chunks (bounded futures), with a progress line."""
    for i in range(0, len(records), SEND_CHUNK):
        chunk = records[i:i + SEND_CHUNK]
        await asyncio.gather(*[await producer.send(topic, v, key=k) for k, v in chunk])
        _say(opts, f"\r  {label}: {i + len(chunk):>9,} / {len(records):,} sent", end="")
    _say(opts, "")


async def _wait(what: str, done: Any, worker: WorkerProcess, opts: StateOptions) -> float:
    """Poll ``done()`` -> (count, total) until count >= total; return the seconds it took."""
    t0 = time.monotonic()
    deadline = t0 + opts.step_timeout_s
    while True:
        worker.check()
        count, total = await done()
        _say(opts, f"\r  {what}: {count:>9,} / {total:,} ({time.monotonic() - t0:,.0f} s)", end="")
        if count >= total:
            _say(opts, "")
            return time.monotonic() - t0
        if time.monotonic() > deadline:
            _say(opts, "")
            raise TimeoutError(f"{what}: {count:,} of {total:,} after {opts.step_timeout_s:.0f} s; see {worker.log}")
        await asyncio.sleep(1.0)


def _tree() -> dict[str, Any]:
    """The code measured: the commit and the files changed in the working tree."""
    def git(*args: str) -> str:
        # Not strip(): a status line starts with a space (" M path").
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=config.REPO_ROOT).stdout.rstrip("\n")

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "modified": [line[3:] for line in git("status", "--short", "--untracked-files=no").splitlines()]}


async def run(opts: StateOptions) -> StateResult:
    """The whole measurement; raises on a failure to run (a worker exit, a timeout)."""
    settings = config.load()
    bootstrap = settings.kafka_bootstrap
    run_id = uuid.uuid4().hex[:6]
    app_id = f"cs-state-{run_id}"
    res = StateResult(opts.machines, opts.fleet, app_id, tree=_tree())
    root = settings.state_dir / "load-state" / app_id
    root.mkdir(parents=True, exist_ok=True)
    heap_request = root / "heap-request"
    worker = WorkerProcess(app_id, root / "worker.log", heap_request)
    lane = lane_group(app_id)
    stage2 = processor_group(app_id, "facilities")

    # A new engine id reads from now on: every group at the current end of every input.
    ends = await start_at_end(bootstrap, engine_groups(app_id))

    f = EventFactory(f"st-{run_id}", START, tenant="bench")
    fleets = (opts.machines + opts.fleet - 1) // opts.fleet
    setup = [f.program(f"bp-{run_id}", cap="100000000")]
    for b in range(fleets):
        setup += [f.borrower(f"bb-{run_id}-{b}", f"bp-{run_id}", kind="contractor"), f.consent(f"bb-{run_id}-{b}")]
    _say(opts, f"state {app_id}: {opts.machines:,} machines in fleets of {opts.fleet} "
               f"({len(setup):,} registry events)")
    t0 = time.monotonic()
    pledges = pledge_records(run_id, opts.machines, opts.fleet, f)
    producer = make_producer(bootstrap, linger_ms=20, max_batch_size=1024 * 1024)
    await producer.start()
    try:
        await produce_events(producer, setup)
        await _send(producer, PLEDGES, pledges, opts, "pledges")
        del pledges
        res.produce_s = time.monotonic() - t0
        pledge_end = await end_offsets(bootstrap, [PLEDGES, REGISTRY])
        pledge_tps = [tp for tp in pledge_end if tp.topic == PLEDGES]
        base_p = sum(ends[tp] for tp in pledge_tps)
        total_p = sum(pledge_end[tp] for tp in pledge_tps) - base_p

        data = root / "w1"
        worker.start(data)
        try:
            async def pledged() -> tuple[int, int]:
                return await committed(bootstrap, lane, pledge_tps) - base_p, total_p

            res.pledges_s = await _wait("stage 1, pledges", pledged, worker, opts)
            res.rss_pledged_mb = round(proc_status(worker.pid)["VmRSS"], 1)

            t1 = time.monotonic()
            readings = telemetry_records(run_id, opts.machines, opts.machines, START)
            tel_start = await end_offsets(bootstrap, [TELEMETRY])
            await _send(producer, TELEMETRY, readings, opts, "telemetry")
            del readings
            tel_end = await end_offsets(bootstrap, [TELEMETRY])
            tel_tps = list(tel_end)
            base_t, total_t = sum(tel_start.values()), sum(tel_end.values()) - sum(tel_start.values())

            async def read() -> tuple[int, int]:
                return await committed(bootstrap, lane, tel_tps) - base_t, total_t

            res.telemetry_s = await _wait("stage 1, telemetry", read, worker, opts)

            registry = [tp for tp in pledge_end if tp.topic == REGISTRY]

            async def decided() -> tuple[int, int]:
                # Registry first (its signals go to stage 2 too), then every signal so far.
                reg = await committed(bootstrap, processor_group(app_id, "registry"), registry)
                if reg < sum(pledge_end[tp] for tp in registry):
                    return 0, 1
                sig_end = await end_offsets(bootstrap, [signals_topic(app_id)])
                return await committed(bootstrap, stage2, list(sig_end)), sum(sig_end.values())

            await _wait("stage 2, signals", decided, worker, opts)
            res.stage2_s = time.monotonic() - t1
            await asyncio.sleep(2.0)  # one more lane batch may update the table gauges
            status = proc_status(worker.pid)
            res.rss_mb, res.hwm_mb = round(status["VmRSS"], 1), round(status["VmHWM"], 1)
            res.cpu_s = round(cpu_seconds(worker.pid), 1)
            res.table_keys = await asyncio.to_thread(table_keys, worker.port)
            _say(opts, f"  worker RSS {res.rss_mb:,.0f} MB (peak {res.hwm_mb:,.0f} MB), tables {res.table_keys}")
            res.worker_heap = await _heap_report(heap_request, worker, opts)

            res.recoveries.append(await _recover("sigterm", signal.SIGTERM, worker, data, data, producer,
                                                 run_id, res.recoveries, bootstrap, lane, opts, res=res))
            res.recoveries.append(await _recover("sigkill", signal.SIGKILL, worker, data, data, producer,
                                                 run_id, res.recoveries, bootstrap, lane, opts))
            res.recoveries.append(await _recover("empty-dir", signal.SIGTERM, worker, data, root / "w1-new",
                                                 producer, run_id, res.recoveries, bootstrap, lane, opts))
            worker.stop()
            # The last folder restored the first two probes from the changelog and took the
            # third itself: committed past a probe is not enough, its state must hold it.
            state = machine_state(root / "w1-new", f"bm-{run_id}-0") or {}
            for rec in res.recoveries:
                # A machine's state keeps its latest reading, not the ids of those before it
                # (counters are cumulative: the latest covers them, streams/domain/machines.py):
                # a probe is applied when the state has reached its time and hour meter.
                rec.applied = (state.get("ts") or 0.0) >= rec.reading_at and (state.get("hours") or 0.0) >= rec.hours
            last = res.recoveries[-1]
            last.applied = bool(last.applied) and state.get("ts_id") == last.event_id  # the latest reading itself
        finally:
            worker.stop()
    finally:
        await producer.stop()
        if not opts.keep_data:
            for folder in (root / "w1", root / "w1-new"):
                shutil.rmtree(folder, ignore_errors=True)
    return res


async def _heap_report(request: Path, worker: WorkerProcess, opts: StateOptions) -> dict[str, Any]:
    """Ask the measured worker for its heap report (after RSS was read: the report ends
    by asking the allocators to give memory back)."""
    _say(opts, "  asking the worker where its memory is")
    await asyncio.to_thread(request.touch)
    answer = request.with_suffix(".json")
    deadline = time.monotonic() + opts.step_timeout_s
    while not answer.exists():
        worker.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no heap report from the worker within {opts.step_timeout_s:.0f} s")
        await asyncio.sleep(1.0)
    report: dict[str, Any] = orjson.loads(answer.read_bytes())
    return report


async def _recover(mode: str, sig: int, worker: WorkerProcess, old: Path, new: Path, producer: AIOKafkaProducer,
                   run_id: str, res_list: list[Recovery], bootstrap: str, lane: str, opts: StateOptions,
                   res: StateResult | None = None) -> Recovery:
    """Stop the worker with ``sig``, start it on ``new``, produce one probe reading at once
    and time the process start -> stage 1 committed past the probe. With ``res``, the
    stopped worker's folder is measured and counted first."""
    _say(opts, f"recovery ({mode}): stopping the worker")
    worker.stop(sig)
    if res is not None:
        res.disk_mb = {"total": round(disk_mb(old), 1), "stage1": round(disk_mb(lane_folder(old, "machines")), 1),
                       "stage2": round(disk_mb(lane_folder(old, "facilities")), 1)}
        res.states, res.states_with_reading, res.other_states = count_states(old, run_id)
        res.lost_states = res.machines - res.states
        res.heap = heap_breakdown(old, {k: v["cached_states"] for k, v in res.worker_heap.get("lanes", {}).items()})
        _say(opts, f"  {res.states:,} machine states of this run ({res.states_with_reading:,} with a reading), "
                   f"data folder {res.disk_mb['total']:,.0f} MB")
    n = len(res_list) + 1
    key, value = probe_record(run_id, n, START + timedelta(minutes=1 + n))
    worker.start(new)
    meta = await (await producer.send(TELEMETRY, value, key=key))
    tp = TopicPartition(TELEMETRY, meta.partition)
    deadline = worker.started + opts.step_timeout_s
    ready_s = None
    while True:
        worker.check()
        if ready_s is None and is_ready(worker.port):
            ready_s = round(time.monotonic() - worker.started, 2)
        if await committed(bootstrap, lane, [tp]) > meta.offset:
            probe_s = time.monotonic() - worker.started
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"recovery ({mode}): the probe was not processed within {opts.step_timeout_s:.0f} s")
        _say(opts, f"\r  waiting for the probe ({time.monotonic() - worker.started:,.1f} s)", end="")
        await asyncio.sleep(0.2)
    rss = proc_status(worker.pid)["VmRSS"]
    probe = orjson.loads(value)
    rec = Recovery(mode, round(probe_s, 2), ready_s, worker.restored(), round(rss, 1), event_id=probe["event_id"],
                   reading_at=datetime.fromisoformat(probe["occurred_at"]).timestamp(),
                   hours=probe["payload"]["cumulative_operating_hours"])
    _say(opts, f"\r  probe processed {rec.probe_s:.1f} s after the restart (ready {ready_s} s), "
               f"restored {rec.restored}, RSS {rss:,.0f} MB")
    return rec


def summary(res: StateResult) -> list[str]:
    """The figure lines printed at the end of a run."""
    lines = [
        f"{res.machines:,} machines (fleets of {res.fleet}), engine {res.app_id}",
        f"stage 1: pledges {res.pledges_s:,.1f} s, telemetry {res.telemetry_s:,.1f} s; "
        f"stage 2 done {res.stage2_s:,.1f} s after the telemetry was produced",
        f"table: {res.states:,} machine states of this run ({res.states_with_reading:,} with a reading, "
        f"{res.lost_states:,} missing); "
        f"estimates {', '.join(f'{k} {v:,.0f}' for k, v in res.table_keys.items())}",
        f"worker: VmRSS {res.rss_mb:,.0f} MB, peak VmHWM {res.hwm_mb:,.0f} MB, CPU {res.cpu_s:,.0f} s "
        f"(VmRSS {res.rss_pledged_mb:,.0f} MB once every pledge was in stage 1)",
        f"data folder: {res.disk_mb.get('total', 0):,.0f} MB (stage 1 {res.disk_mb.get('stage1', 0):,.0f} MB, "
        f"stage 2 {res.disk_mb.get('stage2', 0):,.0f} MB)",
    ]
    lines += [f"cache model, {lane}: {h['cached_states']:,.0f} of {h['keys']:,.0f} states cached "
              f"(bound {h['bound']} a partition) x {h['heap_bytes_per_state']:,.0f} B decoded "
              f"({h['json_bytes_per_state']:,.0f} B JSON) = {h['cache_mb']:,.0f} MB"
              for lane, h in res.heap.items()]
    h = res.worker_heap
    if h and "error" in h:
        lines.append(f"worker heap: no report ({h['error']})")
    elif h:
        caches = ", ".join(f"{k} {v['cached_states']:,} (RocksDB memtables {v.get('rocksdb_memtables_mb', 0):,.0f} MB, "
                           f"block cache {v.get('rocksdb_block_cache_mb', 0):,.0f} MB)" for k, v in h["lanes"].items())
        lines.append(f"worker heap: states cached {caches}; pymalloc {h['pymalloc']}, malloc {h['malloc']}; "
                     f"VmRSS {h['rss_mb']:,.0f} MB -> {h['rss_after_trim_mb']:,.0f} MB after gc + malloc_trim")
    lines += [f"recovery {r.mode}: probe committed {r.probe_s:.1f} s after the restart "
              f"({'applied' if r.applied else 'NOT in the state'}; ready {r.ready_s} s, "
              f"restored {r.restored or 'nothing'}, RSS {r.rss_mb:,.0f} MB)"
              for r in res.recoveries]
    return lines


def main(args: Any) -> int:
    """Run once; print the figure lines and a JSON line. 2 on a failure to run."""
    opts = StateOptions(machines=args.machines, fleet=args.fleet, timeout_s=args.timeout,
                        keep_data=args.keep_data, progress=not args.quiet)
    if opts.machines <= 0 or opts.fleet <= 0:
        print("load state: --machines and --fleet must be positive", file=sys.stderr)
        return 2
    try:
        res = asyncio.run(run(opts))
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"load state failed: {exc}", file=sys.stderr)
        return 2
    for line in summary(res):
        print(line)
    out = asdict(res)
    out["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(orjson.dumps(out).decode())
    return 0
