"""`creditstream aemp poll URL --tenant T`: poll an ISO 15143-3 fleet snapshot into Kafka."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from creditstream.commands import Subparsers, run_service, said


async def _poll(args: argparse.Namespace) -> int:
    import aiohttp
    import orjson

    from connectors.kafka_io import make_producer
    from connectors.sources import aemp
    from connectors.sources.aemp_client import AempPoller, RateGate
    from connectors.sources.emit import Sent, deliver, load_map, report
    from schemas import config

    state_path = Path(args.state) if args.state else None
    state = orjson.loads(state_path.read_bytes()) if state_path and state_path.exists() else {}
    tracker = aemp.CounterTracker(tenant=args.tenant, state=state)
    headers = {"Authorization": os.environ[args.auth_env]} if args.auth_env else {}
    producer = make_producer(args.bootstrap or config.load().kafka_bootstrap)
    await producer.start()
    total, failed, cycles = Sent(), False, 0
    timeout = aiohttp.ClientTimeout(total=120)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            poller = AempPoller(session, tracker, gate=RateGate(args.interval),
                                machine_map=load_map(args.machine_map), headers=headers)
            while True:
                result = await poller.poll(args.url)
                sent = await deliver(producer, result.outcome, tenant=args.tenant, stage="aemp")
                total.add(sent)
                if state_path:  # only after the events are acknowledged
                    state_path.write_bytes(orjson.dumps(tracker.state))
                for err in result.errors:
                    print(f"aemp: fetch failed: {err}", file=sys.stderr)
                failed |= bool(result.errors)
                report("aemp", sent, result.outcome)
                cycles += 1
                if args.once or (args.cycles and cycles >= args.cycles):
                    break
    finally:
        await producer.stop()
    return 1 if failed or total.rejected else 0


def _run(args: argparse.Namespace) -> int:
    return said("aemp poll", lambda: run_service(_poll(args)), errors=(OSError, ValueError, KeyError),
                interrupt_ok=True)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("aemp", help="ISO 15143-3 (AEMP 2.0) telematics poller")
    a = p.add_subparsers(dest="action", required=True)
    s = a.add_parser("poll", help="poll a fleet snapshot URL (all pages) and produce telemetry")
    s.add_argument("url", help="the Fleet snapshot URL (first page)")
    s.add_argument("--tenant", required=True, help="the publishing OEM or telematics provider")
    s.add_argument("--interval", type=float, default=900.0,
                   help="minimum seconds between two requests to the same URL (default 900)")
    s.add_argument("--once", action="store_true", help="one pass over the snapshot, then exit")
    s.add_argument("--cycles", type=int, default=0, help="stop after N passes (0: run forever)")
    s.add_argument("--machine-map", help="JSON file: PIN/EquipmentID/SerialNumber -> machine id")
    s.add_argument("--state", help="JSON file keeping the last reading per machine across runs")
    s.add_argument("--auth-env", help="environment variable holding the Authorization header value")
    s.add_argument("--bootstrap", help="Kafka bootstrap servers (default: local stack)")
    s.set_defaults(func=_run)
