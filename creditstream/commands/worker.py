"""`creditstream worker`: run one stream worker (all agents of the credit engine)."""

from __future__ import annotations

import argparse
from pathlib import Path

from creditstream.commands import Subparsers


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from faust import Worker

    from connectors.kafka_io import ensure_topics, start_at_end
    from schemas import config
    from schemas.topics import (
        BY_NAME,
        ENGINE_ID,
        POOLS_TOPIC,
        SIGNALS_TOPIC,
        pools_topic,
        signals_topic,
    )
    from streams.app import create_app
    from streams.fastlane import engine_groups

    settings = config.load()
    shadow = None
    if args.shadow:  # a candidate policy beside the champion (docs/policy-lab.md)
        from schemas.topics import shadow_topics
        from streams.domain import policyfile

        shadow = policyfile.resolve(args.shadow)
        if args.app_id == ENGINE_ID:
            args.app_id = f"creditstream-shadow-{shadow}"
        print(f"shadow engine {args.app_id}: policy {shadow}, publishing to "
              f"{', '.join(shadow_topics(args.app_id).values())}", flush=True)
    own = [(signals_topic(args.app_id), BY_NAME[SIGNALS_TOPIC].partitions),
           (pools_topic(args.app_id), BY_NAME[POOLS_TOPIC].partitions)]
    if shadow:
        own += [(name, BY_NAME[topic].partitions) for topic, name in shadow_topics(args.app_id).items()]
    # The catalogue topics and this engine's own topics exist before agents subscribe.
    asyncio.run(ensure_topics(settings.kafka_bootstrap, extra=tuple(own),
                              replication=settings.kafka_replication, min_insync=settings.kafka_min_insync))
    if args.start_at == "latest":
        asyncio.run(start_at_end(settings.kafka_bootstrap, engine_groups(args.app_id)))

    # Before the app exists: what is frozen is never listed by gc.get_objects() again, and
    # `load state` (load/heapworker.py) finds the running app among the live objects.
    from streams.heap import tune_collector

    tune_collector()
    app = create_app(worker_id=args.id, web_port=args.web_port, app_id=args.app_id,
                     data_dir=Path(args.data_dir) if args.data_dir else None, shadow=shadow)
    # Faust's Worker installs signal handlers and exits the process itself on stop.
    Worker(app, loglevel=args.loglevel, quiet=True).execute_from_commandline()
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("worker", help="run a credit-engine stream worker (Faust)")
    p.add_argument("--id", default="w1", help="worker id; each needs its own table folder")
    p.add_argument("--web-port", type=int, default=None, help="HTTP port for health/metrics")
    p.add_argument("--data-dir", default=None, help="RocksDB folder (default .state/workers/ID)")
    p.add_argument("--app-id", default="creditstream-engine",
                   help="engine id: consumer group and changelog topic prefix")
    p.add_argument("--start-at", choices=["earliest", "latest"], default="earliest",
                   help="where a new engine id starts reading input topics (default: all history)")
    p.add_argument("--shadow", metavar="VERSION", default=None,
                   help="run a candidate policy (a shipped version or a .toml file) beside the champion: "
                        "own engine id (default creditstream-shadow-VERSION) and own output topics, "
                        "never read by lenders")
    p.add_argument("--loglevel", default="warning")
    p.set_defaults(func=_run)


