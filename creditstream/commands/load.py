"""`creditstream load`: load tests of the engine.

Actions:
  run    drive a simulated world open-loop through the engine and report latency,
         throughput and lag (load/run.py); `--slo` makes it a pass/fail check.
  bench  the hot path against the ceiling of one Python process (load/bench.py, whose
         ``main(args) -> int`` receives the parsed arguments below).
  state  worker memory and restart recovery with N machines in state (load/state.py,
         ``main(args) -> int`` likewise).

Each action's code is imported only when it runs, so `creditstream --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from creditstream.commands import Subparsers


def _duration(text: str) -> float:
    """Seconds, or with a unit: 90, 90s, 10m, 1h."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    t = text.strip().lower()
    try:
        if t and t[-1] in units:
            return float(t[:-1]) * units[t[-1]]
        return float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 30, 30s, 10m)") from None


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from load import slo
    from load.run import RunOptions, run

    if args.slo:
        try:
            slo.parse(args.slo)
        except ValueError as exc:
            print(f"load run: {exc}", file=sys.stderr)
            return 2
    if args.rate <= 0 or args.duration <= 0:
        print("load run: --rate and --duration must be positive", file=sys.stderr)
        return 2
    opts = RunOptions(
        scenario=args.scenario, rate=args.rate, duration_s=args.duration, slo=args.slo, generators=args.workers,
        out_dir=Path(args.out) if args.out else None, app_id=args.app_id, start_workers=args.start_workers,
        seed=args.seed, machines=args.machines, contractors=args.contractors, cadence_s=args.cadence,
        business_share=args.business_share, burst_s=args.burst_seconds, drain_timeout_s=args.drain_timeout,
        setup_timeout_s=args.setup_timeout,
        metrics_urls=args.metrics_url or [], progress=not args.quiet)
    try:
        code, results = asyncio.run(run(opts))
    except (RuntimeError, TimeoutError, LookupError) as exc:
        print(f"load run failed: {exc}", file=sys.stderr)
        return 2
    lat = results["latency_ms"]["all"]
    print(f"{results['run']}: sent {results['generator']['sent']:,} events; "
          f"end-to-end p50 {lat.get('p50', '-')} ms, p99 {lat.get('p99', '-')} ms, max {lat.get('max', '-')} ms; "
          f"dead letters {results['deadletters']['count']}; drained {results['drained']}")
    if "slo" in results:
        print(f"SLO {results['slo']['spec']}: {'met' if results['slo']['ok'] else 'VIOLATED'}")
    return code


def _bench(args: argparse.Namespace) -> int:
    from load import bench

    return int(bench.main(args))


def _state(args: argparse.Namespace) -> int:
    from load import state

    return int(state.main(args))


def _earlywarning(args: argparse.Namespace) -> int:
    from load.earlywarning import main

    return main(["--worlds", str(args.worlds), "--sudden-worlds", str(args.sudden_worlds), "--seed", str(args.seed),
                 "--days", str(args.days), "--scenarios", args.scenarios, "--jobs", str(args.jobs)]
                + (["--misses"] if args.misses else []))


def register(sub: Subparsers) -> None:
    from load.schedule import SCENARIOS

    p = sub.add_parser("load", help="load tests: run a scenario open-loop, bench the hot path, or measure memory and recovery")
    actions = p.add_subparsers(dest="action", required=True)

    r = actions.add_parser("run", help="drive a simulated world through the engine; report latency and lag")
    r.add_argument("--scenario", choices=SCENARIOS, default="steady")
    r.add_argument("--rate", type=float, default=1000.0, help="events per second (steady part)")
    r.add_argument("--duration", type=_duration, default=30.0, help="length of the send schedule: 30, 30s, 10m")
    r.add_argument("--slo", default=None, help="e.g. 'p99<=500ms' or 'p99<=500ms,limit.max<=2s,deadletters<=0'")
    r.add_argument("--workers", type=int, default=None,
                   help="generator processes (default: one per 15,000 events/s of the peak rate)")
    r.add_argument("--out", default=None, help="folder for results.json and report.html (default .state/load/RUN)")
    r.add_argument("--app-id", default=None, help="engine id of running workers (default creditstream-engine)")
    r.add_argument("--start-workers", type=int, default=0,
                   help="start this many engine workers on a fresh engine id for the run, stop them after")
    r.add_argument("--seed", type=int, default=1, help="world seed: the same seed, the same events")
    r.add_argument("--machines", type=int, default=2000, help="pledged machines in the world")
    r.add_argument("--contractors", type=int, default=100, help="contractors owning the machines")
    r.add_argument("--cadence", type=int, default=900, help="simulated seconds between two readings of a machine")
    r.add_argument("--business-share", type=float, default=0.01,
                   help="share of the rate that is invoices, orders, shipments and ledger events")
    r.add_argument("--burst-seconds", type=float, default=60.0, help="length of the 10x burst (scenario burst)")
    r.add_argument("--drain-timeout", type=_duration, default=60.0,
                   help="how long to wait after the last send for the engine to process everything")
    r.add_argument("--setup-timeout", type=_duration, default=None,
                   help="how long the engine may take to register the world (default 120 s + 1 s per 2,000 machines)")
    r.add_argument("--metrics-url", action="append", help="a worker's Prometheus endpoint to read into the report")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=_run)

    b = actions.add_parser("bench", help="hot path (worker) vs a plain aiokafka loop, in one run")
    b.add_argument("--events", type=int, default=200_000, help="telemetry events to pre-produce")
    b.add_argument("--machines", type=int, default=10_000, help="distinct machines among them")
    b.add_argument("--baseline-runs", type=int, default=3, help="runs of (a); the fastest is the ceiling")
    b.add_argument("--engine-workers", type=int, default=1,
                   help="worker processes of the engine in (b): its scale-out across workers")
    b.add_argument("--find-rate", action="store_true",
                   help="also find the highest open-loop rate one worker sustains with p99 <= 250 ms")
    b.add_argument("--start-rate", type=float, default=1000.0, help="first rate tried by --find-rate")
    b.add_argument("--step-seconds", type=float, default=15.0, help="length of each --find-rate run")
    b.add_argument("--rate-machines", type=int, default=5000, help="world size of the --find-rate runs")
    b.set_defaults(func=_bench)

    s = actions.add_parser("state", help="worker memory and restart recovery with N machines in state")
    s.add_argument("--machines", type=int, default=200_000, help="pledged machines, one reading each")
    s.add_argument("--fleet", type=int, default=50, help="machines per contractor (as load bench)")
    s.add_argument("--timeout", type=_duration, default=None,
                   help="limit of each waiting step (default 600 s + 1 s per 250 machines)")
    s.add_argument("--keep-data", action="store_true", help="keep the worker's data folders (~250 MB at 1M machines)")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    s.set_defaults(func=_state)

    e = actions.add_parser("earlywarning", help="early warning: lead time, precision and recall over seeded worlds "
                                                "(offline, through the replay; docs/credit-policy.md 12.5)")
    e.add_argument("--worlds", type=int, default=20, help="worlds of gradual_decline")
    e.add_argument("--sudden-worlds", type=int, default=10, help="worlds of each sudden scenario")
    e.add_argument("--seed", type=int, default=101, help="first seed (world k uses seed + k); 101 and up held out")
    e.add_argument("--days", type=int, default=70)
    e.add_argument("--scenarios", default="gradual_decline,core_default,utilisation_drop")
    e.add_argument("--jobs", type=int, default=1, help="worlds simulated at once (processes)")
    e.add_argument("--misses", action="store_true", help="list the missed distresses and the false alarms")
    e.set_defaults(func=_earlywarning)
