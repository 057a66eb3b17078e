"""`creditstream policy ...`: policy versions as data, what-if over history, promotion.

  check FILE...        validate policy files (every error listed)
  show VERSION         print a version's parameters
  schema [--write]     the policy file's JSON Schema
  history OUT          write a simulated history (load/world.py) as NDJSON
  diff --from A --to B decide every borrower under both versions from the same inputs
  promote VERSION      record a promotion on the registry (the champion engine follows)
  divergences          a shadow engine's decisions that differ from the champion's
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from creditstream.commands import Subparsers


def _check(args: argparse.Namespace) -> int:
    from streams.domain import policyfile

    bad = 0
    for path in args.files:
        try:
            p = policyfile.load_file(path)
            print(f"{path}: policy {p.version} ok ({len(p.parameters.model_fields)} parameters)")
        except policyfile.PolicyFileError as exc:
            print(exc, file=sys.stderr)
            bad += 1
    return 1 if bad else 0


def _show(args: argparse.Namespace) -> int:
    from streams.domain import policyfile

    p = policyfile.get(policyfile.resolve(args.version))
    print(f"version {p.version} (based on {p.based_on or '-'}; {p.approved or 'not approved'})")
    for k, v in p.parameters:
        print(f"  {k} = {v}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from streams.domain import policyfile

    if args.write:
        policyfile.SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        policyfile.SCHEMA_PATH.write_bytes(policyfile.schema_bytes())
        print(policyfile.SCHEMA_PATH)
    else:
        sys.stdout.buffer.write(policyfile.schema_bytes())
    return 0


def _history(args: argparse.Namespace) -> int:
    from load.history import write
    from load.world import WorldConfig

    cfg = WorldConfig(seed=args.seed, tag=args.tag, machines=args.machines, contractors=args.contractors,
                      cadence_s=args.cadence_minutes * 60 if args.cadence_minutes else args.cadence_hours * 3600)
    t0 = time.monotonic()
    n = write(args.out, cfg, args.days)
    print(f"history: {n:,} events, {args.machines:,} machines, {args.days:g} days -> {args.out} "
          f"({time.monotonic() - t0:.1f} s)", file=sys.stderr)
    return 0


async def _read_topics(bootstrap: str) -> list[bytes]:
    """Every record of the input topics, as recorded, ordered by event time (then topic,
    partition and offset, so the order is the same on every read of the same topics)."""
    import orjson

    from connectors.kafka_io import TopicReader
    from schemas.topics import INPUT_TOPICS

    rows: list[tuple[str, int, int, int, bytes]] = []
    async with TopicReader(bootstrap, *INPUT_TOPICS, from_beginning=True, fetch_bytes=8 << 20) as reader:
        async for rec in reader.records_to_end():
            try:
                at = orjson.loads(rec.value).get("occurred_at", "")
            except orjson.JSONDecodeError:
                at = ""
            rows.append((str(at), INPUT_TOPICS.index(rec.topic), rec.partition, rec.offset, rec.value))
    # occurred_at is ISO-8601 UTC with a fixed offset in every valid event: it sorts as text.
    rows.sort(key=lambda r: r[:4])
    print(f"policy diff: read {len(rows):,} records of {', '.join(INPUT_TOPICS)}", file=sys.stderr)
    return [r[4] for r in rows]


def _diff(args: argparse.Namespace) -> int:
    import asyncio

    import orjson

    from schemas import config
    from streams import policylab, policyreport
    from streams.domain import policyfile

    try:
        base, cand = policyfile.resolve(args.from_), policyfile.resolve(args.to)
    except policyfile.PolicyFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.stage1 and not args.log:
        print("policy diff: --stage1 needs --log (a log whose size and time say it did not change)",
              file=sys.stderr)
        return 2
    since = datetime.fromisoformat(args.since).replace(tzinfo=UTC).timestamp() if args.since else 0.0
    if args.log:
        path = args.log
        size = Path(path).stat().st_size

        def opener() -> Iterable[bytes]:
            with open(path, "rb") as f:
                opened.append(f)
                yield from f
    else:
        records = asyncio.run(_read_topics(config.load().kafka_bootstrap))
        size = 0

        def opener() -> Iterable[bytes]:
            return records
    opened: list = []  # the log file of this process, for the progress line
    t0 = time.monotonic()

    def progress(d: policylab.DualReplay) -> None:
        el = time.monotonic() - t0
        f = opened[-1] if opened else None
        if d.kept:
            print(f"policy diff: kept stage 1, {d.kept_inputs:,} stage-2 inputs, "
                  f"{d.kept_inputs / max(el, 1e-9):,.0f}/s, {len(d.borrowers):,} borrowers, {el:.0f} s",
                  file=sys.stderr, flush=True)
            return
        where = f"{(size if f.closed else f.tell()) / size:6.1%} of the log, " if f and size else ""
        print(f"policy diff: {where}{d.events:,} events, {d.events / max(el, 1e-9):,.0f}/s, "
              f"{len(d.borrowers):,} borrowers, {el:.0f} s", file=sys.stderr, flush=True)

    jobs = args.jobs or len(os.sched_getaffinity(0))
    stage1 = (args.stage1, policylab.stage1_key(args.log)) if args.stage1 else None
    dual = policylab.diff(opener, base, cand, since, progress if not args.quiet else None, jobs=jobs,
                          validated=args.validated, stage1=stage1)
    elapsed = time.monotonic() - t0
    report = policylab.report(dual, set(args.borrowers) if args.borrowers else None, top=args.top)
    report["elapsed_s"] = round(elapsed, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (out / "report.html").write_text(policyreport.html(report))
    if args.svg:
        for name, svg in policyreport.svgs(report).items():
            (out / name).write_text(svg)
    t = report["total_limit"]
    cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    print(f"policy diff {base} -> {cand}: {report['events']:,} events in {elapsed:.1f} s "
          f"({cpu:.1f} s of CPU, {jobs} deciding process{'es' if jobs > 1 else ''}); "
          f"{report['borrowers_changed']:,} of {report['borrowers']:,} borrowers change; total limit "
          f"{float(t['before']):,.0f} -> {float(t['after']):,.0f}; {len(report['crossings'])} cross a freeze "
          f"or cap; report {out / 'report.html'}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    import asyncio

    from connectors.kafka_io import make_producer, produce_events
    from schemas import config
    from schemas import events as ev
    from streams.domain import policyfile

    try:
        version = policyfile.shipped(args.version).version
    except policyfile.PolicyFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    event = ev.PolicyPromoted(
        event_id=f"policy-promoted-{version}-{int(now.timestamp() * 1000)}", type="registry.policy_promoted",
        tenant=args.tenant, source="creditstream.cli", occurred_at=now, recorded_at=now,
        payload=ev.PolicyPromotedPayload(version=version, promoted_by=args.by, reason=args.reason or None))

    async def send() -> None:
        producer = make_producer(config.load().kafka_bootstrap)
        await producer.start()
        try:
            await produce_events(producer, [event])
        finally:
            await producer.stop()

    asyncio.run(send())
    print(f"policy {version} promoted by {args.by} at {now.isoformat()} (event {event.event_id} on cs.registry)")
    return 0


def _divergences(args: argparse.Namespace) -> int:
    import asyncio

    from schemas import config
    from streams import shadow

    body = asyncio.run(shadow.divergences_json(config.load().kafka_bootstrap, args.shadow, args.champion, args.day))
    sys.stdout.buffer.write(body + b"\n")
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("policy", help="policy versions: check, diff over history, promote")
    s = p.add_subparsers(dest="policy_cmd", required=True)
    c = s.add_parser("check", help="validate policy files; every error is listed")
    c.add_argument("files", nargs="+")
    c.set_defaults(func=_check)
    c = s.add_parser("show", help="print a policy version's parameters")
    c.add_argument("version", help="a shipped version or a .toml file")
    c.set_defaults(func=_show)
    c = s.add_parser("schema", help="the policy file's JSON Schema")
    c.add_argument("--write", action="store_true", help="write schemas/json/policy/policy-file.json")
    c.set_defaults(func=_schema)
    c = s.add_parser("history", help="write a simulated history (load/world.py) as an NDJSON log")
    c.add_argument("out")
    c.add_argument("--machines", type=int, default=1000)
    c.add_argument("--contractors", type=int, default=50)
    c.add_argument("--days", type=float, default=30)
    c.add_argument("--cadence-hours", type=int, default=6, help="hours between a machine's readings")
    c.add_argument("--cadence-minutes", type=int,
                   help="minutes between a machine's readings, instead (the simulator's own default is 10)")
    c.add_argument("--seed", type=int, default=7)
    c.add_argument("--tag", default="Lpol")
    c.set_defaults(func=_history)
    c = s.add_parser("diff", help="decide every borrower under two versions from the same inputs")
    c.add_argument("--from", dest="from_", required=True, help="current version (shipped) or .toml")
    c.add_argument("--to", required=True, help="candidate version (shipped) or .toml file")
    c.add_argument("--since", help="day-by-day totals from this date (UTC, ISO); earlier history only builds the state")
    c.add_argument("--borrowers", nargs="*", help="report only these borrowers")
    c.add_argument("--log", help="NDJSON event log (default: read the recorded input topics)")
    c.add_argument("--out", default="policy-diff", help="folder for report.json and report.html")
    c.add_argument("--svg", action="store_true", help="also write each plot as an SVG file")
    c.add_argument("--top", type=int, default=200, help="largest changes listed one by one")
    c.add_argument("--jobs", type=int, default=0,
                   help="processes deciding a share of the borrowers each, beside the one running stage 1 "
                        "(default: one per CPU; 1: everything in this process)")
    c.add_argument("--stage1", metavar="FILE",
                   help="keep stage 1's output for this log in FILE, and read it from there when it was kept from "
                        "the same log and engine code: stage 1 does not depend on the policy, so the next diff of "
                        "the log (any candidate) skips it")
    c.add_argument("--validated", action="store_true",
                   help="build and validate every limit update event, as the engine does (slower; same figures)")
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    c.set_defaults(func=_diff)
    c = s.add_parser("promote", help="promote a shipped version: an audit event on the registry")
    c.add_argument("version")
    c.add_argument("--by", required=True, help="who promotes (recorded)")
    c.add_argument("--reason", help="why (recorded)")
    c.add_argument("--tenant", default="creditstream", help="the operator tenant recorded on the event")
    c.set_defaults(func=_promote)
    c = s.add_parser("divergences", help="borrowers whose champion and shadow decisions differ (JSON)")
    c.add_argument("--shadow", required=True, help="the shadow engine's id (creditstream-shadow-VERSION)")
    c.add_argument("--champion", help="the champion's engine id (default: the production engine)")
    c.add_argument("--day", help="YYYY-MM-DD (event time), or all; default today (UTC)")
    c.set_defaults(func=_divergences)
