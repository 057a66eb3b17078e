"""`creditstream keys create|revoke|list`: tenant API keys of the ingest gateway."""

from __future__ import annotations

import argparse
import asyncio


def _split(value: str) -> list[str]:
    return [v for v in (s.strip() for s in value.split(",")) if v]


async def _main(args: argparse.Namespace) -> int:
    import asyncpg

    from connectors.gateway.store import create_key, list_keys, revoke_key
    from connectors.pg.migrate import migrate
    from creditstream import config

    url = config.load().pg_url
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        if args.action == "create":
            key_id, key = await create_key(conn, args.tenant, _split(args.types), _split(args.parties),
                                           _split(args.programs))
            print(f"key id {key_id} for tenant {args.tenant}; the key (shown once, store it now):\n{key}")
        elif args.action == "revoke":
            if not await revoke_key(conn, args.key_id):
                print(f"no active key {args.key_id}")
                return 1
            print(f"revoked {args.key_id}")
        else:
            for r in await list_keys(conn):
                state = f"revoked {r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "active"
                print(f"{r['key_id']}  {r['tenant']:<20} {state:<18} types={','.join(r['event_types'])} "
                      f"parties={','.join(r['parties']) or '-'} programs={','.join(r['programs']) or '-'}")
    finally:
        await conn.close()
    return 0


def _run(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("keys", help="gateway API keys: create, revoke, list")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="create a key; it is printed once and stored only as a hash")
    c.add_argument("--tenant", required=True)
    c.add_argument("--types", required=True, help="comma-separated event types, or *")
    c.add_argument("--parties", default="", help="party ids the key speaks for (buyer, seller...), or *")
    c.add_argument("--programs", default="", help="programs it may pledge and register for, or *")
    r = actions.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id")
    actions.add_parser("list", help="list keys (ids and scopes, never secrets)")
    p.set_defaults(func=_run)
