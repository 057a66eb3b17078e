"""`creditstream lenders add|subscribe|list|rotate-key|disable|enable|serve`: lender registry,
credentials and the delivery server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING

import orjson

from creditstream.commands import Subparsers, run_service, stop_on_signals

if TYPE_CHECKING:
    import asyncpg

    from connectors.lenders.access import Scope
    from connectors.lenders.urls import UrlPolicy


async def _with_conn(args: argparse.Namespace) -> asyncpg.Connection:
    import asyncpg

    from connectors.pg.migrate import migrate
    from schemas import config

    url = args.pg_url or config.load().pg_url
    await migrate(url)
    return await asyncpg.connect(url)


def _url_policy(args: argparse.Namespace) -> UrlPolicy:
    """The webhook URL flags: on the command line or in the environment (``=1``)."""
    from connectors.lenders.urls import UrlPolicy

    env = UrlPolicy.from_env()
    return UrlPolicy(allow_loopback=args.allow_loopback_webhooks or env.allow_loopback,
                     allow_private=args.allow_private_webhooks or env.allow_private)


async def _add(args: argparse.Namespace) -> int:
    from connectors.lenders import repo

    conn = await _with_conn(args)
    try:
        key, secret = await repo.add_lender(conn, args.lender_id, args.name, args.webhook_url,
                                            url_policy=_url_policy(args))
    finally:
        await conn.close()
    # Shown once: only a hash of the key is stored.
    print(orjson.dumps({"lender_id": args.lender_id, "api_key": key, "webhook_secret": secret},
                       option=orjson.OPT_INDENT_2).decode())
    return 0


async def _subscribe(args: argparse.Namespace) -> int:
    from connectors.lenders import repo

    borrowers = [b.strip() for b in (args.borrowers or "").split(",") if b.strip()]
    scope: Scope = "all" if args.all else "program" if args.program else "borrowers"
    conn = await _with_conn(args)
    try:
        sid = await repo.subscribe(conn, args.lender_id, scope, args.program, borrowers)
    finally:
        await conn.close()
    print(f"subscription {sid}: {args.lender_id} {scope} {args.program or ','.join(borrowers)}".rstrip())
    return 0


async def _list(args: argparse.Namespace) -> int:
    from connectors.lenders import repo

    conn = await _with_conn(args)
    try:
        rows = await repo.list_lenders(conn)
    finally:
        await conn.close()
    print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    return 0


async def _rotate_key(args: argparse.Namespace) -> int:
    from connectors.lenders import repo

    conn = await _with_conn(args)
    try:
        key = await repo.rotate_key(conn, args.lender_id)
    finally:
        await conn.close()
    # Shown once, like at `add`: the old key no longer authenticates from now on.
    print(orjson.dumps({"lender_id": args.lender_id, "api_key": key}, option=orjson.OPT_INDENT_2).decode())
    return 0


async def _set_active(args: argparse.Namespace) -> int:
    from connectors.lenders import repo

    active = args.action == "enable"
    conn = await _with_conn(args)
    try:
        await repo.set_active(conn, args.lender_id, active)
    finally:
        await conn.close()
    print(f"{args.lender_id}: {'enabled' if active else 'disabled (API 401, no webhooks)'}")
    return 0


async def _serve(args: argparse.Namespace) -> int:
    import asyncpg
    from aiohttp import web

    from connectors.lenders import lab
    from connectors.lenders.access import RetryPolicy
    from connectors.lenders.api import LAG_GROUPS, make_app
    from connectors.lenders.webhooks import CannotOpenData, Dispatcher, preflight
    from connectors.pg.migrate import migrate
    from schemas import config
    from streams import shadow

    settings = config.load()
    weak = lab.check_key(settings.operator_key)
    if weak:
        print(f"lenders serve: refusing to start: {weak} ({config.OPERATOR_KEY_ENV})", file=sys.stderr)
        return 2
    url = args.pg_url or settings.pg_url
    await migrate(url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=args.pool)
    if not args.no_webhooks:
        try:
            # Before listening: a process with the wrong data key must not look healthy.
            await preflight(pool)
        except CannotOpenData as exc:
            await pool.close()
            print(f"lenders serve: refusing to start: {exc}", file=sys.stderr)
            return 2
    stop = stop_on_signals()
    bootstrap = args.bootstrap or settings.kafka_bootstrap
    engine = args.engine_metrics or [f"http://127.0.0.1:{settings.worker_web_port}/metrics"]
    runner = web.AppRunner(make_app(pool, engine_metrics=engine, bootstrap=bootstrap,
                                    lag_groups=tuple(args.lag_group or LAG_GROUPS),
                                    operator_key=settings.operator_key, shadow_view=shadow))
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    # One line on stdout when it answers, with where: what a person (or script) waits for.
    print(f"lenders serve: ready; API http://{args.host}:{args.port}/v1/, console "
          f"http://{args.host}:{args.port}/console/, webhooks {'off' if args.no_webhooks else 'on'}",
          flush=True)
    tasks = []
    if not args.no_webhooks:
        dispatcher = Dispatcher(bootstrap, pool,
                                policy=RetryPolicy(max_attempts=args.max_attempts),
                                url_policy=_url_policy(args))
        tasks.append(asyncio.create_task(dispatcher.run(stop), name="webhook dispatcher"))
    stopping = asyncio.create_task(stop.wait())
    code = 0
    try:
        await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done() and not stop.is_set():
                # The dispatcher ended on its own: exit rather than serve REST while no
                # webhook goes out (a supervisor restarts us, and the log says why).
                logging.error("lenders: the webhook dispatcher stopped: %r; exiting",
                              task.exception() if not task.cancelled() else "cancelled")
                code = 1
    finally:
        stop.set()
        stopping.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        await pool.close()
    return code


def _run(args: argparse.Namespace) -> int:
    try:
        return run_service(args.coro(args))
    except (LookupError, ValueError) as exc:
        print(f"lenders {args.action}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # asyncpg errors (duplicate lender id, ...) with their message
        if type(exc).__module__.startswith("asyncpg"):
            print(f"lenders {args.action}: {exc}", file=sys.stderr)
            return 2
        raise


def _url_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-loopback-webhooks", action="store_true",
                   help="development only: webhooks to this machine, plain http allowed (or "
                        "CREDITSTREAM_WEBHOOKS_ALLOW_LOOPBACK=1)")
    p.add_argument("--allow-private-webhooks", action="store_true",
                   help="webhooks to private networks (RFC 1918, unique local; or "
                        "CREDITSTREAM_WEBHOOKS_ALLOW_PRIVATE=1)")


def register(sub: Subparsers) -> None:
    p = sub.add_parser("lenders", help="lenders: register, subscribe, list, serve REST/SSE/webhooks")
    p.add_argument("--pg-url", help="PostgreSQL URL (default: local stack)")
    a = p.add_subparsers(dest="action", required=True)

    s = a.add_parser("add", help="register a lender; prints its API key and webhook secret once")
    s.add_argument("lender_id", help="the id used in limit updates (payload.lenders[].lender_id)")
    s.add_argument("--name", required=True, help="the lender's display name (shown in the console)")
    s.add_argument("--webhook-url", help="endpoint that receives signed limit updates: https:// to a public "
                   "address (http:// only to this machine, with --allow-loopback-webhooks); none: no webhooks")
    _url_flags(s)
    s.set_defaults(func=_run, coro=_add)

    s = a.add_parser("subscribe", help="push updates of all funded borrowers, a program or a list")
    s.add_argument("lender_id", help="the lender, as registered by `lenders add`")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--all", action="store_true", help="every borrower the lender funds")
    g.add_argument("--program", help="borrowers of one program")
    g.add_argument("--borrowers", help="comma-separated borrower ids")
    s.set_defaults(func=_run, coro=_subscribe)

    s = a.add_parser("list", help="lenders and their subscriptions (no secrets)")
    s.set_defaults(func=_run, coro=_list)

    s = a.add_parser("rotate-key", help="replace a lender's API key (the old one stops working); prints it once")
    s.add_argument("lender_id", help="the lender, as registered by `lenders add`")
    s.set_defaults(func=_run, coro=_rotate_key)

    for action, text in (("disable", "revoke a lender's access: REST and stream answer 401, webhooks stop"),
                         ("enable", "restore a disabled lender's access")):
        s = a.add_parser(action, help=text)
        s.add_argument("lender_id", help="the lender, as registered by `lenders add`")
        s.set_defaults(func=_run, coro=_set_active)

    s = a.add_parser("serve", help="REST + SSE API, the browser console (/console/) and the webhook dispatcher")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=18090, help="port to listen on")
    s.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the local stack's, "
                   "CREDITSTREAM_KAFKA_BOOTSTRAP)")
    s.add_argument("--pool", type=int, default=10, help="PostgreSQL connections")
    s.add_argument("--max-attempts", type=int, default=10, help="webhook attempts before a dead letter")
    s.add_argument("--no-webhooks", action="store_true", help="serve the API and console only")
    s.add_argument("--engine-metrics", action="append", metavar="URL",
                   help="a worker's /metrics for the console's operators page; repeat for "
                        "several workers (default: http://127.0.0.1:CREDITSTREAM_WORKER_WEB_PORT/metrics, 16066)")
    s.add_argument("--lag-group", action="append", metavar="PREFIX",
                   help="consumer groups whose lag the operators page shows, by name prefix; repeatable "
                        f"(default: {', '.join(('creditstream-engine', 'creditstream-ledger', 'creditstream-webhooks'))})")
    _url_flags(s)
    s.set_defaults(func=_run, coro=_serve)
