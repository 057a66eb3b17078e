"""`creditstream replay LOG`: run a recorded event log through the policy offline."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from creditstream.commands import Subparsers


def _run(args: argparse.Namespace) -> int:
    import orjson

    from schemas.topics import ALERTS_TOPIC, DEADLETTER_TOPIC, LIMITS_TOPIC
    from streams.replay import Replay

    topics = {"limits": {LIMITS_TOPIC}, "all": {LIMITS_TOPIC, ALERTS_TOPIC, DEADLETTER_TOPIC}}[args.show]
    counts: Counter[str] = Counter()
    r = Replay()
    src = sys.stdin.buffer if args.log == "-" else open(args.log, "rb")  # noqa: SIM115
    out = sys.stdout.buffer
    with src:
        for n, line in enumerate(src, start=1):
            if not line.strip():
                continue
            for o in r.feed(line.strip()):
                counts[o.topic] += 1
                if o.topic in topics:
                    out.write(orjson.dumps(o.value, option=orjson.OPT_SORT_KEYS) + b"\n")
            counts["events"] = n
    print(f"replay: {counts['events']} events -> {counts[LIMITS_TOPIC]} limit updates, "
          f"{counts[ALERTS_TOPIC]} alerts, {counts[DEADLETTER_TOPIC]} dead letters", file=sys.stderr)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("replay", help="run a recorded NDJSON event log through the engine offline")
    p.add_argument("log", help="NDJSON file of input events (one envelope per line), or - for stdin")
    p.add_argument("--show", choices=["limits", "all"], default="limits",
                   help="print limit updates only, or alerts and dead letters too")
    p.set_defaults(func=_run)
