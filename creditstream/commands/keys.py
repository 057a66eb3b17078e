"""`creditstream keys create|revoke|list`: tenant API keys of the ingest gateway;
`creditstream keys data-key new|status|rekey`: the data key that seals secrets and personal
data at rest (docs/security.md, "Data keys")."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from creditstream.commands import Subparsers, said

if TYPE_CHECKING:
    import asyncpg


def _split(value: str) -> list[str]:
    return [v for v in (s.strip() for s in value.split(",")) if v]


async def _data_key_status(conn: asyncpg.Connection) -> int:
    """Configured key ids against the key ids of what the database holds sealed."""
    from connectors.pg import crypto

    keys = crypto.configured()
    print(f"configured: {crypto.ENV} key id {crypto.key_id()}; "
          f"{crypto.PREVIOUS_ENV}: {', '.join(list(keys)[1:]) or 'unset'}")
    rows = await conn.fetch(
        "SELECT 'lenders.webhook_secret' AS place, CASE WHEN webhook_secret LIKE 'v2:%'"
        "   THEN split_part(webhook_secret, ':', 2) WHEN webhook_secret LIKE 'v1:%' THEN 'v1 (no key id)'"
        "   ELSE 'in clear' END AS key_id, count(*) AS n FROM lenders WHERE webhook_secret IS NOT NULL"
        " GROUP BY 1, 2 UNION ALL SELECT 'parties', key_id, count(*) FROM parties GROUP BY 1, 2 ORDER BY 1, 2")
    missing = 0
    for r in rows:
        # "v1 (no key id)" and "in clear" name no key: they cannot be checked without opening.
        known = r["key_id"] in keys or " " in r["key_id"]
        missing += 0 if known else r["n"]
        print(f"{r['place']:<24} key id {r['key_id']:<16} {r['n']:>8}  "
              f"{'' if known else 'NOT CONFIGURED: these do not open here'}")
    return 1 if missing else 0


async def _data_key_rekey(conn: asyncpg.Connection) -> int:
    """Re-seal lenders' webhook secrets and the parties table with the current key."""
    from connectors.lenders import repo
    from connectors.parties import store
    from connectors.pg import crypto

    secrets, problems = await repo.rekey_secrets(conn)
    for lender, why in problems.items():
        print(f"lenders.webhook_secret of {lender}: {why}", file=sys.stderr)
    try:
        parties = await store.rekey(conn)
    except crypto.DataKeyError as exc:
        print(f"parties: {exc}", file=sys.stderr)
        return 2
    print(f"re-sealed with key id {crypto.key_id()}: {secrets} webhook secrets, {parties} parties")
    return 2 if problems else 0


async def _main(args: argparse.Namespace) -> int:
    import asyncpg

    from connectors.gateway.store import create_key, list_keys, revoke_key
    from connectors.pg.migrate import migrate
    from schemas import config

    if args.action == "data-key" and args.what == "new":
        import base64
        import secrets

        from connectors.pg import crypto

        key = secrets.token_bytes(32)
        print(f"key id {crypto.key_id(key)}; put this in {crypto.ENV} (the old key in "
              f"{crypto.PREVIOUS_ENV}), restart, then run `creditstream keys data-key rekey`:\n"
              f"{base64.urlsafe_b64encode(key).decode()}")
        return 0
    url = config.load().pg_url
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        if args.action == "data-key":
            return await (_data_key_status(conn) if args.what == "status" else _data_key_rekey(conn))
        if args.action == "create":
            key_id, api_key = await create_key(conn, args.tenant, _split(args.types), _split(args.parties),
                                               _split(args.programs))
            print(f"key id {key_id} for tenant {args.tenant}; the key (shown once, store it now):\n{api_key}")
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
    from connectors.pg.crypto import DataKeyError

    # A malformed key in the environment: said, no traceback.
    return said(f"keys {args.action}", lambda: asyncio.run(_main(args)), errors=(DataKeyError,))


def register(sub: Subparsers) -> None:
    p = sub.add_parser("keys", help="gateway API keys: create, revoke, list")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="create a key; it is printed once and stored only as a hash")
    c.add_argument("--tenant", required=True, help="the tenant (core enterprise) the key publishes for; "
                   "events of another tenant are refused")
    c.add_argument("--types", required=True, help="comma-separated event types, or *")
    c.add_argument("--parties", default="", help="party ids the key speaks for (buyer, seller...), or * "
                   "(default: none)")
    c.add_argument("--programs", default="", help="programs it may pledge and register for, or * "
                   "(default: none)")
    r = actions.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id", help="the key id printed by `keys create` and `keys list` (not the key)")
    actions.add_parser("list", help="list keys (ids and scopes, never secrets)")
    d = actions.add_parser("data-key", help="the data key sealing secrets and personal data at rest")
    d.add_argument("what", choices=("new", "status", "rekey"),
                   help="new: print a fresh key; status: configured key ids against those the database "
                        "holds (exit 1 if one is missing); rekey: re-seal everything with the current key")
    p.set_defaults(func=_run)
