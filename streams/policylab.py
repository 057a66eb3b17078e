"""What-if over history: every borrower decided under two policy versions from the same inputs.

One pass over the event log: stage 1 (machines, invoices, orders, dealers, the registry)
does not depend on the policy, so it runs once and each of its signals, like each
ledger event, is given to one stage-2 processor per version, pinned to that version.
Each version's decisions are therefore exactly what ``Replay(policy=version)`` of the
same log gives (tests/engine/test_policy_diff.py checks it), at the cost of one stage 1.

A decision is kept as the few figures the report needs (``_summarise``), taken from the
decision itself: building and validating each limit.updated event only to read them
back was a third of the time (``validated=True`` still goes through the events; the
test compares the two). With ``jobs`` > 1 this process runs stage 1 and hands each
stage-2 input to the process that decides its borrower (docs/policy-lab.md section 5).

``diff`` keeps, per version, the latest limit update of every borrower and a day-by-day
total; ``report`` turns them into the figures a credit committee reads (policyreport.py
draws them).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import queue
import struct
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from pydantic_core import to_jsonable_python

from schemas import codec
from schemas import events as ev
from schemas.topics import BY_NAME, KEY_OF_TYPE, LIMITS_TOPIC, SIGNALS_TOPIC, TOPIC_OF_TYPE
from streams.domain import fleet, silence
from streams.domain.facility import FacilityState
from streams.domain.policy import Decision
from streams.domain.signals import utc_time
from streams.errors import DiffError
from streams.processors import (
    FacilityProcessor,
    MachineProcessor,
    Processor,
    all_processors,
    processor_for,
)

DAY = 86400
CAP_CODES = ("PROGRAM_CAP", "INCLUSIVE_CAP")
# Relative changes are counted in these buckets (upper bounds, in percent of the old limit).
BUCKETS = (-50, -20, -10, -5, -1, 0, 1, 5, 10, 20, 50)
# Reasons that say how the limit moved, not why it is what it is: not compared.
MOVE_CODES = frozenset({"LIMIT_UP", "LIMIT_DOWN", "LIMIT_UNCHANGED", "POLICY_CHANGED"})
# Stage-2 inputs handed to a decider process at a time, and batches queued per process
# (few and small: the progress line counts what stage 1 read, at most this far ahead of the
# deciders; 2,000 x 32 let it run 40% of a 250,000-event log ahead).
BATCH = 500
QUEUED = 2
# A kept stage 1 (diff(stage1=...)): a JSON header padded to HEADER bytes, then per input
# its topic's index in FacilityProcessor.topics, its key's and its value's lengths, key, value.
HEADER = 4096
FRAME = struct.Struct("<BII")
Input = tuple[str, bytes, bytes]  # a stage-2 input: topic, key (a borrower id), value
# Machines whose valuation a diff process keeps (fleet.py; ~1.2 KB each): every machine of
# both versions of a 500,000-machine world. The engine's bound (50,000) would have a
# 100,000-machine diff drop fleets and value them again from scratch (+26% CPU measured
# with a cache a quarter of the fleets' size); the diff holds every state anyway.
CACHED_MACHINES = 1_000_000


def _summary(p: dict[str, Any]) -> dict[str, Any]:
    """What the report needs of a limit update (the whole payload of 100,000 borrowers
    would not fit in memory twice)."""
    kinds: dict[str, Decimal] = defaultdict(Decimal)
    for c in p["components"]:
        kinds[c["kind"]] += Decimal(c["contribution"]["amount"])
    return {"limit": Decimal(p["limit"]["amount"]), "currency": p["limit"]["currency"], "status": p["status"],
            "codes": sorted({r["code"] for r in p["reasons"]} - MOVE_CODES),
            "program": p["program_id"], "lenders": {a["lender_id"]: Decimal(a["limit"]["amount"]) for a in p["lenders"]},
            "kinds": dict(kinds), "at": p["watermark"]}


def _summarise(state: FacilityState, d: Decision) -> dict[str, Any]:
    """``_summary`` of the update ``d`` is published as, from the decision: the event
    carries these very amounts (str of the Decimal), codes (the reasons are one per code
    of ``d.codes``, then the move codes) and watermark (rendered as pydantic renders it)."""
    kinds: dict[str, Decimal] = defaultdict(Decimal)
    for c in d.components:
        kinds[c["kind"]] += c["contribution"]
    return {"limit": d.limit, "currency": d.currency, "status": d.status,
            "codes": sorted(set(d.codes) - MOVE_CODES), "program": state["program_id"],
            "lenders": {a["lender_id"]: a["limit"] for a in d.lenders}, "kinds": dict(kinds),
            "at": to_jsonable_python(utc_time(state["watermark"]))}


@dataclass
class Side:
    """One version's view of the history."""

    version: str
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: int = 0
    # How the total limit per currency moved on each UTC day (the updates' event time): a
    # borrower's watermark never moves back, so the total at the end of a day is the sum
    # of the moves up to it, whatever the order in which borrowers were decided.
    moves: dict[str, dict[str, Decimal]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Decimal)))

    def daily(self, since: float) -> dict[str, dict[str, str]]:
        """Total limit per currency at the end of each day that moved it, from ``since``."""
        first = datetime.fromtimestamp(since - since % DAY, UTC).date().isoformat() if since else ""
        out: dict[str, dict[str, str]] = {}
        for ccy, days in self.moves.items():
            total, out[ccy] = Decimal(0), {}
            for day in sorted(days):
                total += days[day]
                if day >= first:
                    out[ccy][day] = str(total)
        return out


@lru_cache(maxsize=1 << 18)
def _partition(topic: str, key: bytes) -> int:
    return silence.partition_of(key, BY_NAME[topic].partitions)


def _per_version(p: Processor) -> bool:
    """Stage 2 and any stage after it (what reads only the engine's internal topics but
    the signals): run once per version; the rest is stage 1, run once."""
    return isinstance(p, FacilityProcessor) or all(BY_NAME[t].internal and t != SIGNALS_TOPIC for t in p.topics)


class DualReplay:
    """Stage 1 once, stage 2 once per version; feed raw event bytes in log order.

    ``feed`` is ``stage1`` then ``decide`` for each stage-2 input it gives; a parallel
    diff calls them in different processes. ``shard`` (i, n) decides only the borrowers
    whose id hashes to i of n (``shard_of``)."""

    def __init__(self, versions: Iterable[str], since: float = 0.0, shard: tuple[int, int] = (0, 1),
                 validated: bool = False) -> None:
        self.shard = shard
        fleet.MAX_CACHED_MACHINES = max(fleet.MAX_CACHED_MACHINES, CACHED_MACHINES)
        self.stage1 = [p for p in all_processors() if not _per_version(p)]
        self.stores: dict[str, dict[str, Any]] = {p.name: {} for p in self.stage1}
        self.sides = [Side(v) for v in versions]
        self.stage2: list[tuple[list[Processor], dict[str, dict[str, Any]], Side]] = []
        for side in self.sides:
            procs = [p for p in all_processors(side.version) if _per_version(p)]
            for p in procs:
                if isinstance(p, FacilityProcessor) and not validated:
                    p.summarise = _summarise
            self.stage2.append((procs, {p.name: {} for p in procs}, side))
        self.since = since
        self.events = self.refused = 0
        self.clock = 0.0  # the latest event time seen
        self.kept = False  # stage 2's inputs read from a kept stage 1 (diff(stage1=...))
        self.kept_inputs = 0  # of them, read so far
        self.pools = False  # a program in a risk-sharing pool was registered (joins_borrowers)
        self.borrowers: set[bytes] = set()  # stage 2's record keys seen, for the progress line
        self._touched: set[str] = set()  # borrowers with an update from the input being decided
        # Per borrower, the widest gap between the two versions' limits at any point of the
        # history (after the same input), and whether only one of them froze it then: a
        # change that converges by the end still shows here.
        self.widest: dict[str, dict[str, Any]] = {}

    def feed(self, raw: bytes) -> None:
        for topic, key, value in self.stage1_inputs(raw):
            if self.shard[1] == 1 or shard_of(key, self.shard[1]) == self.shard[0]:
                self.decide(topic, key, value)

    def stage1_inputs(self, raw: bytes) -> list[tuple[str, bytes, bytes]]:
        """Run stage 1 on one event; the stage-2 inputs it gives, in order (signals and
        ledger records, keyed by borrower)."""
        self.events += 1
        try:
            event = codec.decode(raw)
        except codec.DecodeError:
            self.refused += 1  # dead-lettered alike under every version: nothing to compare
            return []
        self.clock = max(self.clock, event.occurred_at.timestamp())
        if isinstance(event, ev.ProgramRegistered) and event.payload.risk_pool:
            self.pools = True
        topic = TOPIC_OF_TYPE[event.type].name
        key = KEY_OF_TYPE[event.type](event).encode()
        if topic in FacilityProcessor.topics:
            inputs = [(topic, key, raw)]
        else:
            proc = processor_for(topic, self.stage1)
            # A machine's partition (the scope of its silence clock) as the processor would
            # compute it, once per machine: murmur2 in Python was 7% of stage 1.
            part = _partition(topic, key) if isinstance(proc, MachineProcessor) else None
            inputs = [(SIGNALS_TOPIC, out.key.encode(), orjson.dumps(out.value))
                      for out in proc.process(self.stores[proc.name], topic, key, raw, part, decoded=event)
                      if out.topic == SIGNALS_TOPIC]
        self.borrowers.update(k for _, k, _ in inputs)
        return inputs

    def decide(self, topic: str, key: bytes, raw: bytes) -> None:
        """One stage-2 input under each version, then the two versions compared on every
        borrower it moved (a pool's answers move others)."""
        self._touched = {key.decode()}
        for procs, stores, side in self.stage2:
            self._run(procs, stores, side, topic, key, raw)
        for bid in sorted(self._touched):
            self._compare(bid)

    def _run(self, procs: list[Processor], stores: dict[str, dict[str, Any]], side: Side, topic: str, key: bytes,
             raw: bytes) -> None:
        proc = processor_for(topic, procs)
        if self.shard[1] > 1 and not isinstance(proc, FacilityProcessor):
            # A stage after stage 2 (a risk-sharing pool) joins borrowers: one process only.
            raise DiffError(f"{proc.name} joins borrowers of several shards: run the diff with --jobs 1")
        for out in proc.process(stores[proc.name], topic, key, raw):
            if out.topic == LIMITS_TOPIC:
                self._decided(side, out.key, out.value)
            elif any(out.topic in p.topics for p in procs):  # on to the version's next stage at once
                self._run(procs, stores, side, out.topic, out.key.encode(), orjson.dumps(out.value))

    def _compare(self, bid: str) -> None:
        a, b = (side.latest.get(bid) for side in self.sides)
        if a is None or b is None or (a["limit"] == b["limit"] and a["status"] == b["status"]):
            return
        gap = b["limit"] - a["limit"]
        w = self.widest.get(bid)
        froze = (a["status"] == "frozen") != (b["status"] == "frozen")
        if w is None:
            w = self.widest[bid] = {"gap": gap, "at": max(a["at"], b["at"]), "before": a["limit"],
                                    "after": b["limit"], "froze_at": None}
        elif abs(gap) > abs(w["gap"]):
            w.update(gap=gap, at=max(a["at"], b["at"]), before=a["limit"], after=b["limit"])
        if froze and w["froze_at"] is None:
            w["froze_at"] = max(a["at"], b["at"])

    def _decided(self, side: Side, bid: str, value: dict[str, Any]) -> None:
        s = _summary(value["payload"]) if "payload" in value else value  # the event, or _summarise's figures
        old = side.latest.get(bid)
        side.latest[bid] = s
        self._touched.add(bid)
        side.updates += 1
        day = s["at"][:10]  # UTC: the watermark is rendered with Z
        side.moves[s["currency"]][day] += s["limit"] - (old["limit"] if old else 0)


def shard_of(key: bytes, n: int) -> int:
    """The decider process (of ``n``) of a stage-2 input: signals and ledger records are
    keyed by borrower, so each borrower is decided whole in one process."""
    return zlib.crc32(key) % n


def joins_borrowers(lines: Iterable[bytes]) -> bool:
    """Whether the log registers a program in a risk-sharing pool: the pool stage then
    answers borrowers of any share, so its diff runs in one process."""
    for line in lines:
        if b"registry.program" in line and b"risk_pool" in line:
            try:
                payload = orjson.loads(line).get("payload")
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if isinstance(payload, dict) and payload.get("risk_pool"):
                return True
    return False


def stage1_key(log: str) -> dict[str, Any]:
    """What a kept stage 1 (``diff(stage1=...)``) was made from: the log (its path, size
    and modification time) and the engine's code (a hash of streams/ and schemas/, so a
    change of stage 1 or of the policy versions shipped makes it stale)."""
    st = os.stat(log)
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for f in sorted([*root.glob("streams/**/*.py"), *root.glob("streams/**/*.toml"), *root.glob("schemas/**/*.py")]):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return {"format": 1, "log": os.path.abspath(log), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "code": h.hexdigest()}


def _kept(path: str, key: dict[str, Any]) -> tuple[dict[str, Any], Iterator[list[Input]]] | None:
    """A kept stage 1 made from ``key``'s log and code: its totals and its inputs."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the generator below, or here
    except FileNotFoundError:
        return None
    try:
        head = orjson.loads(f.read(HEADER))
    except orjson.JSONDecodeError:
        head = {}  # not a kept stage 1 (or a truncated one): run stage 1 again
    if not isinstance(head, dict) or head.get("key") != key or not head.get("complete"):
        f.close()
        return None

    def inputs() -> Iterator[list[Input]]:
        with f:
            while frame := f.read(FRAME.size):
                t, klen, vlen = FRAME.unpack(frame)
                yield [(FacilityProcessor.topics[t], f.read(klen), f.read(vlen))]
    return head, inputs()


def _kept_or_run(dual: DualReplay, lines: Iterable[bytes], stage1: tuple[str, dict[str, Any]] | None,
                 kept: tuple[dict[str, Any], Iterator[list[Input]]] | None) -> Iterator[list[Input]]:
    """Stage 2's inputs, one list per event: read from the kept stage 1 (``_kept``) when
    it matched, else from stage 1 run here (and kept, when asked: written aside and
    renamed once whole, so an interrupted diff leaves none)."""
    if kept is not None:
        totals, records = kept
        dual.kept = True
        for batch in records:
            dual.borrowers.add(batch[0][1])
            dual.kept_inputs += 1
            yield batch
        dual.events, dual.refused, dual.clock = totals["events"], totals["refused"], totals["clock"]
        return
    out = open(stage1[0] + ".part", "wb") if stage1 else None  # noqa: SIM115 - closed below
    try:
        if out is not None:
            out.write(b" " * HEADER)
        for line in lines:
            line = line.strip()
            got = dual.stage1_inputs(line) if line else []
            if out is not None:
                for topic, key, raw in got:
                    out.write(FRAME.pack(FacilityProcessor.topics.index(topic), len(key), len(raw)) + key + raw)
            yield got
        if out is not None and stage1 is not None:
            header = orjson.dumps({"key": stage1[1], "complete": True, "events": dual.events,
                                   "refused": dual.refused, "clock": dual.clock, "pools": dual.pools})
            if len(header) >= HEADER:
                raise DiffError(f"the kept stage 1's header is over {HEADER} bytes (a log path that long?)")
            out.seek(0)
            out.write(header.ljust(HEADER))
            out.close()
            os.replace(stage1[0] + ".part", stage1[0])
    finally:
        if out is not None and not out.closed:
            out.close()


def diff(lines: Iterable[bytes] | Callable[[], Iterable[bytes]], base: str, candidate: str, since: float = 0.0,
         progress: Callable[[DualReplay], None] | None = None, every: int = 20000, jobs: int = 1,
         validated: bool = False, stage1: tuple[str, dict[str, Any]] | None = None) -> DualReplay:
    """Replay the log (NDJSON event bytes in log order, or a function that opens it) under
    both versions. With ``jobs`` > 1 this process runs stage 1 and ``jobs`` processes
    decide a share of the borrowers each (one process when ``joins_borrowers``; a log
    that can be read only once is not checked, and its diff fails at the first pooled
    borrower); ``validated`` builds every limit.updated event (the engine's own path)
    instead of taking its figures from the decision. ``stage1`` (a file, ``stage1_key``
    of the log): stage 1 is read from the file when it was kept from the same log and
    code, else run and kept there for the next diff (stage 1 does not depend on the
    policy, so every candidate can be diffed from it)."""
    kept = _kept(*stage1) if stage1 else None
    if jobs > 1 and (kept[0].get("pools", True) if kept else (callable(lines) or isinstance(lines, list)) and joins_borrowers(
            lines() if callable(lines) else lines)):
        jobs = 1  # a risk-sharing pool's answers go to borrowers of every share: one process
    lines = [] if kept else lines() if callable(lines) else lines  # a kept stage 1: the log is not read
    if jobs > 1:
        return _parallel(lines, base, candidate, since, progress, every, jobs, validated, stage1, kept)
    dual = DualReplay((base, candidate), since, validated=validated)
    for n, inputs in enumerate(_kept_or_run(dual, lines, stage1, kept), start=1):
        for topic, key, raw in inputs:
            dual.decide(topic, key, raw)
        if progress and n % every == 0:
            progress(dual)
    if progress:
        progress(dual)
    return dual


def _parallel(lines: Iterable[bytes], base: str, candidate: str, since: float,
              progress: Callable[[DualReplay], None] | None, every: int, jobs: int, validated: bool,
              stage1: tuple[str, dict[str, Any]] | None,
              kept: tuple[dict[str, Any], Iterator[list[Input]]] | None) -> DualReplay:
    # fork: the deciders inherit the candidate policy loaded in this process.
    ctx = multiprocessing.get_context("fork")
    inboxes = [ctx.Queue(QUEUED) for _ in range(jobs)]
    results = ctx.Queue()

    def decider(i: int) -> None:
        d = DualReplay((base, candidate), since, (i, jobs), validated)
        try:
            while (batch := inboxes[i].get()) is not None:
                for topic, key, raw in batch:
                    d.decide(topic, key, raw)
        except Exception as exc:
            results.put((i, None, str(exc)))  # why, for this process's error
            raise
        results.put((i, [(sd.latest, sd.updates, {c: dict(v) for c, v in sd.moves.items()}) for sd in d.sides],
                     d.widest))

    procs = [ctx.Process(target=decider, args=(i,), daemon=True) for i in range(jobs)]
    for p in procs:
        p.start()

    def failed(why: str = "") -> None:
        if why or any(p.exitcode not in (None, 0) for p in procs):
            for p in procs:
                p.kill()
            try:
                while not why:
                    part = results.get(timeout=1)
                    why = part[2] if part[1] is None else ""
            except queue.Empty:
                why = "see its traceback above"
            raise DiffError(f"a diff process failed: {why}")

    def send(i: int, batch: list[tuple[str, bytes, bytes]] | None) -> None:
        while True:
            try:
                inboxes[i].put(batch, timeout=5)
                return
            except queue.Full:
                failed()

    merged = DualReplay((base, candidate), since)  # stage 1 here; the figures merged below
    batches: list[list[tuple[str, bytes, bytes]]] = [[] for _ in range(jobs)]
    for n, inputs in enumerate(_kept_or_run(merged, lines, stage1, kept), start=1):
        for inp in inputs:
            i = shard_of(inp[1], jobs)
            batches[i].append(inp)
            if len(batches[i]) >= BATCH:
                send(i, batches[i])
                batches[i] = []
        if progress and n % every == 0:
            progress(merged)
    for i in range(jobs):
        send(i, batches[i])
        send(i, None)
    parts: list[tuple[Any, ...]] = []
    while len(parts) < jobs:
        try:
            part = results.get(timeout=5)
        except queue.Empty:
            failed()
            continue
        if part[1] is None:
            failed(part[2])
        parts.append(part)
    parts.sort(key=lambda part: part[0])
    for p in procs:
        p.join()
    failed()
    for part in parts:
        merged.widest.update(part[2])
    for k, side in enumerate(merged.sides):
        for latest, updates, moves in (part[1][k] for part in parts):
            side.latest.update(latest)  # the shards' borrowers are disjoint
            side.updates += updates
            for ccy, days in moves.items():
                for day, move in days.items():
                    side.moves[ccy][day] += move
    if progress:
        progress(merged)
    return merged


def _bucket(pct: float) -> str:
    """The bucket of a relative change: "0%" alone, else [lo, hi) between the BUCKETS."""
    if pct == 0:
        return "0%"
    if pct < BUCKETS[0]:
        return f"< {BUCKETS[0]}%"
    if pct >= BUCKETS[-1]:
        return f">= {BUCKETS[-1]}%"
    return next(f"{lo}%..{hi}%" for lo, hi in zip(BUCKETS, BUCKETS[1:], strict=False) if lo <= pct < hi)


def bucket_names() -> list[str]:
    inner = [f"{lo}%..{hi}%" for lo, hi in zip(BUCKETS, BUCKETS[1:], strict=False)]
    zero = inner.index("-1%..0%") + 1
    return [f"< {BUCKETS[0]}%", *inner[:zero], "0%", *inner[zero:], f">= {BUCKETS[-1]}%"]


def report(dual: DualReplay, borrowers: set[str] | None = None, top: int = 200) -> dict[str, Any]:
    """The figures of a diff, JSON-ready (amounts as strings, exact)."""
    a, b = dual.sides
    ids = sorted((set(a.latest) | set(b.latest)) & borrowers if borrowers else set(a.latest) | set(b.latest))
    changes, crossings = [], []
    buckets: Counter[str] = Counter()
    exposure: dict[str, dict[str, dict[str, Decimal]]] = {
        "lender": defaultdict(lambda: {"before": Decimal(0), "after": Decimal(0)}),
        "program": defaultdict(lambda: {"before": Decimal(0), "after": Decimal(0)})}
    empty: dict[str, Any] = {"limit": Decimal(0), "status": None, "codes": [], "lenders": {}, "kinds": {},
                             "program": None, "currency": None}
    for bid in ids:
        x, y = a.latest.get(bid, empty), b.latest.get(bid, empty)
        currency = x["currency"] or y["currency"]
        for side, s in (("before", x), ("after", y)):
            for lender, amount in s["lenders"].items():
                exposure["lender"][f"{lender} {currency}"][side] += amount
            if s["program"]:
                exposure["program"][f"{s['program']} {currency}"][side] += s["limit"]
        delta = y["limit"] - x["limit"]
        pct = float(delta / x["limit"] * 100) if x["limit"] else (0.0 if not delta else 100.0)
        buckets[_bucket(pct)] += 1
        appeared = [c for c in y["codes"] if c not in x["codes"]]
        gone = [c for c in x["codes"] if c not in y["codes"]]
        if delta or appeared or gone or x["status"] != y["status"]:
            kinds = sorted(set(x["kinds"]) | set(y["kinds"]))
            changes.append({
                "borrower_id": bid, "program_id": y["program"] or x["program"], "currency": currency,
                "before": str(x["limit"]), "after": str(y["limit"]), "change": str(delta), "change_pct": round(pct, 2),
                "status_before": x["status"], "status_after": y["status"],
                "codes_appeared": appeared, "codes_disappeared": gone,
                "by_kind": {k: str(y["kinds"].get(k, 0) - x["kinds"].get(k, 0)) for k in kinds
                            if y["kinds"].get(k, 0) != x["kinds"].get(k, 0)}})
        crossed = []
        if (x["status"] == "frozen") != (y["status"] == "frozen") and x["status"] and y["status"]:
            crossed.append("frozen" if y["status"] == "frozen" else "unfrozen")
        elif x["status"] != y["status"] and x["status"] and y["status"]:
            crossed.append(f"{x['status']} -> {y['status']}")
        crossed += [f"{c} reached" for c in CAP_CODES if c in appeared] + [f"{c} left" for c in CAP_CODES if c in gone]
        if crossed:
            crossings.append({"borrower_id": bid, "crossed": crossed, "before": str(x["limit"]),
                              "after": str(y["limit"])})
    changes.sort(key=lambda c: (-abs(Decimal(c["change"])), c["borrower_id"]))
    changed, idset = {c["borrower_id"] for c in changes}, set(ids)
    widest = sorted(((bid, w) for bid, w in dual.widest.items() if bid in idset),
                    key=lambda x: (-abs(x[1]["gap"]), x[0]))
    code_moves: dict[str, Counter[str]] = {"appeared": Counter(), "disappeared": Counter()}
    for c in changes:
        code_moves["appeared"].update(c["codes_appeared"])
        code_moves["disappeared"].update(c["codes_disappeared"])
    before = sum((a.latest[i]["limit"] for i in ids if i in a.latest), Decimal(0))
    after = sum((b.latest[i]["limit"] for i in ids if i in b.latest), Decimal(0))
    return {
        "from": a.version, "to": b.version,
        "since": datetime.fromtimestamp(dual.since, UTC).isoformat() if dual.since else None,
        "history_end": datetime.fromtimestamp(dual.clock, UTC).isoformat() if dual.clock else None,
        "events": dual.events, "refused_events": dual.refused,
        "limit_updates": {a.version: a.updates, b.version: b.updates},
        "borrowers": len(ids), "borrowers_changed": len(changes),
        "total_limit": {"before": str(before), "after": str(after), "change": str(after - before)},
        "distribution": {name: buckets.get(name, 0) for name in bucket_names()},
        "codes": {k: dict(sorted(v.items())) for k, v in code_moves.items()},
        "exposure": {kind: {k: {"before": str(v["before"]), "after": str(v["after"]),
                                "change": str(v["after"] - v["before"])} for k, v in sorted(rows.items())}
                     for kind, rows in exposure.items()},
        "crossings": crossings,
        # Borrowers whose limits differed at some point, widest gap first, with whether
        # they still differ at the end and when only one version froze them, if ever.
        "widest_gaps": [
            {"borrower_id": bid, "gap": str(w["gap"]), "at": w["at"], "before": str(w["before"]),
             "after": str(w["after"]), "at_end": (bid in changed), "frozen_under_one_at": w["froze_at"]}
            for bid, w in widest][:top],
        "borrowers_diverged_at_some_point": len(widest),
        "daily_total": {v.version: v.daily(dual.since) for v in (a, b)},
        "changes": changes[:top], "changes_listed": min(top, len(changes)),
    }
