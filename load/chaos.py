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

Faults here hit the engine while telemetry and business events (invoices, orders,
shipments, drawdowns, repayments) keep flowing: ``kill`` (SIGKILL the worker mid-stream,
restart it on its data folder), ``rebalance`` (add a second worker, then stop the first),
``broker`` (stop Kafka for 10 s, start it again), ``pause`` (SIGSTOP the only worker for
5 s, under its session timeout: no crash, no rebalance, only a backlog of every topic),
``churn`` (workers join, leave, are SIGKILLed and return on their old data folders, in an
order drawn from the seed) and ``late`` (the worker starts only after every record was
sent: the whole run is one backlog). With ``--workers N`` the engine runs N workers
from the start, and three more faults take the scale-out shapes a deployment makes:
``kill-each`` (SIGKILL every worker in turn, each restarted on its data folder before the
next), ``add`` (two more workers join, one after the other) and ``roll`` (a rolling
restart: each worker stopped and started again in turn, as a deployment does); ``kill``
then kills one of them and ``broker`` on the three-broker cluster kills the leader of
cs.telemetry-0 under all of them. The sinks' faults (PostgreSQL under the ledger, a lender's webhook
endpoint) are in load/chaos_sinks.py and share the harness below: :func:`build_traffic`,
:class:`EngineRun`, :func:`drive` and :class:`Published`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
import uuid
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from connectors.kafka_io import Record, TopicReader, start_at_end
from load.latency import LagSample, LagSampler
from load.workers import Worker, free_port
from load.world import BusinessSim, Plan, Rec, TelemetrySim, World, WorldConfig, to_record
from schemas import config
from schemas.topics import LIMITS_TOPIC, TELEMETRY_TOPIC
from streams.fastlane import engine_groups
from streams.replay import Replay

log = logging.getLogger(__name__)

FAULTS = ("kill", "rebalance", "broker", "pause", "churn", "late")
# Named only (not in `--fault all`): they are meant for several workers (--workers N).
SCALE_OUT_FAULTS = ("kill-each", "add", "roll")
# A business event after every 20 readings: without them no limit moves during the
# fault, and the engine faults would test telemetry alone (issue 19).
BUSINESS_EVERY = 20
# How long a restarted broker may take to answer: a JVM restarting with its log recovery
# beside three campaigns on two cores took over 90 s (runs that measured no engine).
BROKER_RESTART_S = 300.0


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
    mismatch_detail: list[str] = field(default_factory=list)  # what differed, for the failure line

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.final_mismatches == 0

    def line(self) -> str:
        detail = f" [{'; '.join(self.mismatch_detail[:5])}]" if self.mismatch_detail else ""
        return (f"chaos {self.fault}: events in {self.events_in:,}, updates out {self.updates_out:,} "
                f"({self.borrowers} borrowers), lost {self.lost}, duplicates {self.duplicates} "
                f"(identical repeats {self.identical_repeats}), final mismatches {self.final_mismatches}, "
                f"recovered in {self.recover_s:.1f} s{detail} -> {'PASS' if self.ok else 'FAIL'}")


# ------------------------------------------------------------------ traffic
@dataclass
class Traffic:
    """The records of one run: ``setup`` is sent and processed first, ``stream`` open loop."""

    world: World
    setup: list[Rec]
    stream: list[Rec]
    reference: dict[str, dict[str, Any]]  # borrower -> final limit update payload of the replay

    @property
    def records(self) -> int:
        return len(self.setup) + len(self.stream)


def new_tag() -> str:
    """A run's tag: put in every id of its world, so runs never see each other's borrowers."""
    return f"Ch{uuid.uuid4().hex[:6]}"


def reference(records: list[Rec]) -> dict[str, dict[str, Any]]:
    """Final limit update per borrower from the offline replay of the same records."""
    r = Replay()
    final: dict[str, dict[str, Any]] = {}
    for _topic, _key, value in records:
        for out in r.feed(value):
            if out.topic == LIMITS_TOPIC:
                final[out.key] = out.value["payload"]
    return final


def build_traffic(tag: str, seed: int, machines: int, events: int, business_every: int = 0,
                  lender_prefix: str = "") -> Traffic:
    """The world's setup and ``events`` telemetry readings; with ``business_every`` = n, a
    business event (invoice, order, shipment, drawdown, repayment) after every n readings.

    Steady telemetry alone changes no limit once the world is set up, so a fault in a sink
    of limit updates needs the business events to have updates flowing while it lasts.
    """
    world = World(WorldConfig(seed=seed, tag=tag, machines=machines, contractors=max(2, machines // 25),
                              lender_prefix=lender_prefix))
    setup = list(world.setup_records())
    stream: list[Rec] = []
    biz = BusinessSim(world)
    cfg = world.cfg
    telemetry = (rec for _slot, recs in TelemetrySim(world, Plan("steady")).slots(events) for rec in recs)
    for i, rec in enumerate(telemetry):
        stream.append(rec)
        if business_every and (i + 1) % business_every == 0:
            # Reading i is in round i // machines: business time keeps pace with telemetry.
            at = cfg.start + timedelta(seconds=cfg.cadence_s * i / cfg.machines)
            stream.append(to_record(biz.next(at)))
    return Traffic(world, setup, stream, reference(setup + stream))


# ------------------------------------------------------------------ the engine under test
async def _wait_ready(workers: list[Worker], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not all(w.ready() for w in workers):
        if time.monotonic() > deadline:
            waiting = {w.worker_id: w.readiness() for w in workers if not w.ready()}
            raise RuntimeError(f"workers not ready: {waiting}; logs: {[str(w.log) for w in workers]}")
        await asyncio.sleep(0.3)


async def _sample(sampler: LagSampler) -> LagSample | None:
    """A lag sample, or None while the broker that answers it is down (a broker fault
    takes the group coordinator with it until another broker takes over)."""
    try:
        return await sampler.sample()
    except KafkaError as exc:
        log.info("lag sample failed (%r); trying again", exc)
        return None


async def _wait_caught_up(sampler: LagSampler, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (s := await _sample(sampler)) is None or s.lag > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the engine did not catch up in time")
        await asyncio.sleep(0.5)


async def _progress_after(sampler: LagSampler, since: float, timeout: float = 180) -> float:
    """Seconds from ``since`` until the engine commits past what it had committed."""
    deadline = time.monotonic() + timeout
    while (first := await _sample(sampler)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("no lag figures after the fault")
        await asyncio.sleep(0.2)
    before = sum(first.committed.values())
    while time.monotonic() < deadline:
        s = await _sample(sampler)
        if s is not None and (sum(s.committed.values()) > before or s.lag == 0):
            return time.monotonic() - since
        await asyncio.sleep(0.2)
    raise RuntimeError("no progress after the fault")


class EngineRun:
    """One worker on a fresh engine id (``async with``), positioned at the end of the inputs."""

    def __init__(self, settings: config.Settings, tag: str, start: bool = True, workers: int = 1) -> None:
        self.settings = settings
        self.start = start
        self.initial_workers = max(1, workers)
        self.bootstrap = settings.kafka_bootstrap
        self.app_id = f"cs-chaos-{tag.lower()}"
        self.home = settings.state_dir / "chaos" / self.app_id
        self.workers: list[Worker] = []
        self.sampler = LagSampler(self.bootstrap, self.app_id)

    @property
    def source(self) -> str:
        """The ``source`` of this engine's outputs on the shared output topics."""
        return f"creditstream.engine.{self.app_id}"

    async def __aenter__(self) -> EngineRun:
        await start_at_end(self.bootstrap, engine_groups(self.app_id))
        for _ in range(self.initial_workers):
            self.add_worker()
        try:
            if self.start:
                for w in self.workers:
                    w.start()
                await _wait_ready(self.workers)
            await self.sampler.open()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    def add_worker(self) -> Worker:
        """A new (not yet started) worker of this engine, on a data folder of its own."""
        name = f"c{len(self.workers) + 1}"
        w = Worker(self.app_id, name, self.home / name, web_port=free_port())
        self.workers.append(w)
        return w

    async def __aexit__(self, *exc: object) -> None:
        await self.sampler.close()
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                os.killpg(w.proc.pid, signal.SIGCONT)  # a paused worker cannot stop
            await asyncio.to_thread(w.stop)

    async def caught_up(self, timeout: float) -> None:
        await _wait_caught_up(self.sampler, timeout)


async def drive(engine: EngineRun, traffic: Traffic, rate: float,
                on_fault: Callable[[], Coroutine[Any, Any, None]], fault_at: float = 0.4) -> list[Record]:
    """Send the setup, then the stream open loop at ``rate``, starting ``on_fault`` when
    the fraction ``fault_at`` of it is sent (1.0: after the last record); the traffic
    keeps flowing while the fault lasts. Return what was written to cs.limits until the
    engine caught up."""
    from connectors.kafka_io import make_producer

    # The broker fault's broker may take minutes to come back on a loaded 2-core box: the
    # traffic waits for it (BROKER_RESTART_S) rather than fail the run.
    producer = make_producer(engine.bootstrap, linger_ms=10, request_timeout_ms=int(BROKER_RESTART_S * 1000))
    await producer.start()
    try:
        async with TopicReader(engine.bootstrap, LIMITS_TOPIC) as reader:
            await asyncio.gather(*[await producer.send(t, v, key=k) for t, k, v in traffic.setup])
            if any(w.proc is not None for w in engine.workers):
                await engine.caught_up(300)
            start = time.monotonic()
            at = int(len(traffic.stream) * fault_at)
            fault: asyncio.Task[None] | None = None
            for i, (topic, key, value) in enumerate(traffic.stream):
                if i == at:
                    fault = asyncio.create_task(on_fault())
                # Open loop: the send schedule is fixed in advance, not paced by the engine.
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await producer.send(topic, value, key=key)
            await producer.flush()
            if fault is None:
                fault = asyncio.create_task(on_fault())
            await fault
            await engine.caught_up(600)
            # Everything published until the engine caught up, however long reading it takes.
            return await reader.read_to_end(timeout=120.0)
    finally:
        await producer.stop()


# ------------------------------------------------------------------ what was published
@dataclass
class Published:
    """The limit updates one engine published: first content per (borrower, version)."""

    updates: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # payloads
    raw: dict[tuple[str, int], bytes] = field(default_factory=dict)  # record values, as sent
    at: dict[tuple[str, int], float] = field(default_factory=dict)  # first record's time (epoch s)
    conflicting: int = 0  # a (borrower, version) again with different content
    repeats: int = 0  # a (borrower, version) again, identical
    # Updates for this engine's borrowers from other engines on the shared topic: any sink
    # reading the whole topic sees them too, so a sink check is void while they exist.
    foreign: dict[str, int] = field(default_factory=dict)  # source -> records

    @classmethod
    def of(cls, records: list[Record], source: str, borrowers: Collection[str] | None = None) -> Published:
        """What ``source`` published, of ``borrowers`` only when given. Every engine on a
        broker reads the shared input topics from where it started, so while two runs
        share a broker each engine also decides the other run's world, from the middle
        of its history (its first versions were published before this run's reader
        opened): only the run's own borrowers say anything about this run."""
        pub = cls()
        others: list[tuple[str, str]] = []
        for rec in records:
            try:
                value = orjson.loads(rec.value)
            except orjson.JSONDecodeError:
                continue  # someone else's malformed record on the shared topic
            if not isinstance(value, dict):
                continue
            p: Any = value.get("payload")
            if value.get("source") != source:
                if isinstance(p, dict) and isinstance(p.get("borrower_id"), str):
                    others.append((str(value.get("source")), p["borrower_id"]))
                continue
            if borrowers is not None and p["borrower_id"] not in borrowers:
                continue
            key = (p["borrower_id"], p["version"])
            if key not in pub.updates:
                pub.updates[key], pub.raw[key], pub.at[key] = p, rec.value, rec.timestamp_ms / 1000
            elif pub.updates[key] == p:
                pub.repeats += 1
            else:
                pub.conflicting += 1
        mine = {b for b, _v in pub.updates}
        for src, borrower in others:
            if borrower in mine:
                pub.foreign[src] = pub.foreign.get(src, 0) + 1
        return pub

    def foreign_failure(self) -> list[str]:
        """A failure naming the other engines that published for these borrowers, if any."""
        if not self.foreign:
            return []
        who = ", ".join(f"{src} ({n})" for src, n in sorted(self.foreign.items()))
        return [f"other engines published for this run's borrowers, so the sink saw their "
                f"updates too: {who}; stop them and run again"]

    def between(self, start: float, end: float) -> int:
        """Updates first published in [start, end) (wall clock, epoch seconds)."""
        return sum(1 for t in self.at.values() if start <= t < end)

    def versions(self) -> dict[str, list[int]]:
        by_borrower: dict[str, list[int]] = {}
        for b, v in self.updates:
            by_borrower.setdefault(b, []).append(v)
        return by_borrower

    def gaps(self) -> int:
        """Versions missing from the borrowers' sequences (each starts at 1)."""
        return sum(max(vs) - len(vs) for vs in self.versions().values())

    def last(self) -> dict[str, dict[str, Any]]:
        """The highest version's payload per borrower."""
        return {b: self.updates[(b, max(vs))] for b, vs in self.versions().items()}

    def mismatches(self, reference: dict[str, dict[str, Any]]) -> int:
        """Borrowers whose last limit, available amount or status differ from the replay's."""
        return len(self.mismatch_detail(reference))

    def mismatch_detail(self, reference: dict[str, dict[str, Any]]) -> list[str]:
        """One line per borrower of :meth:`mismatches`: what the engine and the replay ended with."""
        def fig(p: dict[str, Any]) -> str:
            def amount(field: str) -> Any:
                value = p.get(field)
                return value.get("amount") if isinstance(value, dict) else value

            return (f"v{p.get('version', '?')} {amount('limit')}/{amount('available')} {p.get('status')} "
                    f"{','.join(r.get('code', '?') for r in p.get('reasons', []))}")

        last = self.last()
        return [f"{b}: engine {'nothing' if got is None else fig(got)}, replay {fig(want)}"
                for b, want in sorted(reference.items())
                if (got := last.get(b)) is None
                or (got["limit"], got["available"], got["status"]) != (want["limit"], want["available"], want["status"])]


# ------------------------------------------------------------------ engine faults
async def run(fault: str, events: int, machines: int, rate: float, seed: int,
              business_every: int = BUSINESS_EVERY, workers: int = 1) -> ChaosResult:
    if fault not in FAULTS + SCALE_OUT_FAULTS:
        raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS + SCALE_OUT_FAULTS)}")
    settings = config.load()
    tag = new_tag()
    traffic = build_traffic(tag, seed, machines, events, business_every)
    recover_s = 0.0
    async with EngineRun(settings, tag, start=fault != "late", workers=workers) as engine:
        async def inject() -> None:
            nonlocal recover_s
            recover_s = await _inject(fault, engine, seed)

        records = await drive(engine, traffic, rate, inject, fault_at=1.0 if fault == "late" else 0.4)
    pub = Published.of(records, engine.source, traffic.reference)
    detail = pub.mismatch_detail(traffic.reference)
    return ChaosResult(fault, traffic.records, len(pub.updates), len(traffic.reference), pub.gaps(),
                       pub.conflicting, pub.repeats, len(detail), recover_s, detail)


async def _inject(fault: str, engine: EngineRun, seed: int) -> float:
    workers, sampler = engine.workers, engine.sampler
    if fault == "late":
        t0 = time.monotonic()
        for w in workers:
            w.start()
        await _wait_ready(workers)
        return await _progress_after(sampler, t0)
    if fault in ("kill-each", "roll"):
        # In turn, as an operator (roll) or a bad node (kill-each) would: the next worker
        # goes only when the one before is back and ready.
        for w in list(workers):
            await asyncio.to_thread(w.kill if fault == "kill-each" else w.stop)
            w.start()
            t0 = time.monotonic()
            await _wait_ready([w])
        return await _progress_after(sampler, t0)
    if fault == "add":
        for _ in range(2):
            w = engine.add_worker()
            w.start()
            t0 = time.monotonic()
            await _wait_ready([w])
        return await _progress_after(sampler, t0)
    if fault == "pause":
        w = workers[0]
        assert w.proc is not None
        # 5 s is under the 10 s session timeout: the group keeps its member, so this
        # is a backlog of every topic and nothing else.
        os.killpg(w.proc.pid, signal.SIGSTOP)
        await asyncio.sleep(5)
        os.killpg(w.proc.pid, signal.SIGCONT)
        return await _progress_after(sampler, time.monotonic())
    if fault == "churn":
        return await _churn(engine, random.Random(f"{seed}-churn"))
    if fault == "kill":
        w = workers[random.Random(f"{seed}-kill").randrange(len(workers))]
        w.kill()
        w.start()
        t0 = time.monotonic()
        await _wait_ready([w])
        return await _progress_after(sampler, t0)
    if fault == "rebalance":
        extra = Worker(engine.app_id, "c2", engine.home / "c2", web_port=free_port())
        extra.start()
        workers.append(extra)
        await _wait_ready([extra])
        await asyncio.sleep(5)
        workers[0].stop()
        t0 = time.monotonic()
        return await _progress_after(sampler, t0)
    return await _broker_fault(engine)


async def _broker_fault(engine: EngineRun) -> float:
    """One broker: stopped for 10 s, then started; seconds from its start until the engine
    commits progress. A cluster: the leader of cs.telemetry-0 is SIGKILLed and comes back
    after 10 s; the others keep serving, so the seconds run from the kill."""
    from aiokafka.admin import AIOKafkaAdminClient

    from creditstream.stack.kafka import kafka_nodes

    nodes = kafka_nodes(engine.settings)
    if len(nodes) == 1:
        kafka = nodes[0]
        kafka.stop()
        await asyncio.sleep(10)
        kafka.start()
        t0 = time.monotonic()
        await kafka.wait_ready(BROKER_RESTART_S)
        return await _progress_after(engine.sampler, t0)
    admin = AIOKafkaAdminClient(bootstrap_servers=engine.bootstrap)
    await admin.start()
    try:
        topic = (await admin.describe_topics([TELEMETRY_TOPIC]))[0]
        leader = next(p["leader"] for p in topic["partitions"] if p["partition"] == 0)
    finally:
        await admin.close()
    kafka = next(k for k in nodes if k.node == leader)
    pid = kafka.pid()
    assert pid is not None, f"broker {leader} is not running"
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    log.info("broker fault: SIGKILL of node %d, the leader of cs.telemetry-0", leader)
    try:
        recovered = await _progress_after(engine.sampler, t0)
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - t0)))
    finally:  # whatever happens, the cluster is left whole
        kafka.start()
        await kafka.wait_ready(BROKER_RESTART_S)
    return recovered


CHURN_STEPS = 6


async def _churn(engine: EngineRun, rng: random.Random) -> float:
    """Workers join, leave, are SIGKILLed and return on their old data folders, a step
    every 2-5 s in an order drawn from ``rng``; at least one worker runs at the end.
    Returns seconds from the last step until the engine commits progress."""
    workers = engine.workers
    stopped: list[Worker] = []

    def running() -> list[Worker]:
        return [w for w in workers if w.proc is not None and w.proc.poll() is None]

    for _ in range(CHURN_STEPS):
        await asyncio.sleep(rng.uniform(2, 5))
        choices = ["join"] if len(running()) < 3 else []
        if len(running()) > 1:
            choices += ["leave", "kill"]
        if stopped:
            choices.append("return")
        step = rng.choice(choices)
        if step == "join":
            w = Worker(engine.app_id, f"c{len(workers) + 1}", engine.home / f"c{len(workers) + 1}",
                       web_port=free_port())
            workers.append(w)
            w.start()
        elif step == "return":
            w = stopped.pop(rng.randrange(len(stopped)))
            w.start()  # on the data folder it had when it stopped
        else:
            w = rng.choice(running())
            await asyncio.to_thread(w.kill if step == "kill" else w.stop)
            stopped.append(w)
        log.info("churn: %s %s; running %s", step, w.worker_id, [x.worker_id for x in running()])
    if not running():
        stopped.pop().start()
    t0 = time.monotonic()
    await _wait_ready(running())
    return await _progress_after(engine.sampler, t0)
