"""`creditstream ledger`: consume limit updates and alerts into the PostgreSQL ledger."""

from __future__ import annotations

import argparse
import logging

from creditstream.commands import Subparsers, run_service, stop_on_signals


async def _main(args: argparse.Namespace) -> int:
    from connectors.ledger.service import Ledger
    from connectors.pg.migrate import migrate
    from schemas import config

    settings = config.load()
    pg_url = args.pg_url or settings.pg_url
    await migrate(pg_url)
    stop = stop_on_signals()
    ledger = Ledger(args.bootstrap or settings.kafka_bootstrap, pg_url, group=args.group,
                    max_records=args.batch)
    from urllib.parse import urlsplit

    pg = urlsplit(pg_url)  # the address, never the password
    print(f"ledger: ready; consuming cs.limits and cs.alerts from {args.bootstrap or settings.kafka_bootstrap} "
          f"as group {args.group} into PostgreSQL at {pg.hostname}:{pg.port or 5432}", flush=True)
    await ledger.run(stop)
    s = ledger.stats
    logging.info("ledger: stopped; %d records, %d batches, %d dead letters, %d retries",
                 s.records, s.batches, s.dead_letters, s.retries)
    return 0


def _run(args: argparse.Namespace) -> int:
    return run_service(_main(args))


def register(sub: Subparsers) -> None:
    p = sub.add_parser("ledger", help="write limit updates and alerts to the PostgreSQL ledger")
    p.add_argument("--group", default="creditstream-ledger", help="Kafka consumer group")
    p.add_argument("--batch", type=int, default=1000, help="max records per transaction")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: local stack)")
    p.add_argument("--pg-url", help="PostgreSQL URL (default: local stack)")
    p.set_defaults(func=_run)
