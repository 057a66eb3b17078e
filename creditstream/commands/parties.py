"""`creditstream parties`: the encrypted parties table (names and tax ids) and its key."""

from __future__ import annotations

import argparse
import logging
import sys

from creditstream.commands import Subparsers, run_service, stop_on_signals


async def _sync(args: argparse.Namespace, pg_url: str, bootstrap: str) -> int:
    from connectors.parties.sync import PartySync

    stop = stop_on_signals()
    sync = PartySync(bootstrap, pg_url, group=args.group)
    logging.info("parties: consuming cs.registry as group %s", args.group)
    await sync.run(stop)
    s = sync.stats
    logging.info("parties: stopped; %d records, %d registrations written, %d undecodable passed over",
                 s.records, s.parties, s.skipped_invalid)
    return 0


async def _main(args: argparse.Namespace) -> int:
    import asyncpg

    from connectors.parties import store
    from connectors.pg import crypto
    from connectors.pg.migrate import migrate
    from schemas import config

    settings = config.load()
    pg_url = args.pg_url or settings.pg_url
    await migrate(pg_url)
    if args.action == "sync":
        return await _sync(args, pg_url, args.bootstrap or settings.kafka_bootstrap)
    conn = await asyncpg.connect(pg_url)
    try:
        if args.action == "rekey":
            n = await store.rekey(conn)
            print(f"parties: {n} rows re-sealed with key {crypto.key_id()}")
            return 0
        found = ([p] if (p := await store.get(conn, args.party_id)) else []) if args.action == "show" \
            else await store.find_by_tax_id(conn, args.tax_id)
    except crypto.DataKeyError as exc:
        print(f"parties: {exc}", file=sys.stderr)
        return 2
    finally:
        await conn.close()
    for p in found:
        print(f"{p.party_id}\t{p.kind}\t{p.program_id or '-'}\t{p.tax_id}\t{p.name}")
    if not found:
        print("parties: not found", file=sys.stderr)
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    return run_service(_main(args))


def register(sub: Subparsers) -> None:
    p = sub.add_parser("parties", help="names and tax ids, encrypted in PostgreSQL (docs/security.md)")
    p.add_argument("--pg-url", help="PostgreSQL URL (default: local stack)")
    actions = p.add_subparsers(dest="action", required=True)
    s = actions.add_parser("sync", help="write registry.borrower events to the parties table")
    s.add_argument("--group", default="creditstream-parties", help="Kafka consumer group")
    s.add_argument("--bootstrap", help="Kafka bootstrap servers (default: local stack)")
    show = actions.add_parser("show", help="one party, decrypted with the key from the environment")
    show.add_argument("party_id", help="the party (borrower) id of its registry.borrower event")
    find = actions.add_parser("find", help="parties by tax id (keyed hash lookup)")
    find.add_argument("--tax-id", required=True, help="the unified social credit code (or other tax id)")
    actions.add_parser("rekey", help="re-seal rows with the current key (after a rotation)")
    p.set_defaults(func=_run)
