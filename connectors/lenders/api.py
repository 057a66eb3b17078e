"""Lender HTTP API (aiohttp): REST reads and the Server-Sent Events live stream.

Auth: ``Authorization: Bearer <api key>``. Every read is filtered to the borrowers whose
updates name the caller among their lenders; anything else answers 404, exactly like a
borrower that does not exist, so the API does not reveal whom other lenders fund.

The browser console (connectors/lenders/console/) is served by the same app: static
files only, which call these same endpoints with the same key.

Errors have one shape across the lender API and the ingest gateway:
``{"error": code, "reason": sentence}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable

import asyncpg
import orjson
from aiohttp import web

from connectors.errors import BadParameter
from connectors.gateway import httplog
from connectors.ledger.store import NOTIFY_CHANNEL
from connectors.lenders import console, lab, operators, repo
from connectors.lenders.access import CursorError, parse_cursor, parse_int
from connectors.lenders.portfolio import SORTS, STATUSES, Query, portfolio
from connectors.pg.errors import CONNECTION_ERRORS

log = logging.getLogger(__name__)
POOL = web.AppKey("pool", asyncpg.Pool)
OPTIONS = web.AppKey("options", dict)
LENDER = web.RequestKey("lender_id", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Waker:
    """Wakes stream handlers when the ledger commits decisions (PostgreSQL NOTIFY)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, *_: object) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


WAKER = web.AppKey("waker", Waker)
# Set when the server shuts down: open streams end at once (the client resumes elsewhere
# or later with Last-Event-ID) instead of holding the shutdown for aiohttp's 60 s grace.
CLOSING = web.AppKey("closing", asyncio.Event)
SCRAPER = web.AppKey("scraper", operators.EngineScraper)
# Consumer groups whose lag the operators page shows, by name prefix: the engine (its
# Faust agents and lanes), the ledger and the webhook dispatcher.
LAG_GROUPS = ("creditstream-engine", "creditstream-ledger", "creditstream-webhooks")


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, error: str, reason: str) -> web.Response:
    # The gateway's shape (connectors/gateway/app.py): one parser for every creditstream answer.
    return _json({"error": error, "reason": reason}, status)


def _not_found(borrower_id: str) -> web.Response:
    return _error(404, "not_found", f"no borrower {borrower_id!r} in your portfolio")


def _int_param(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = parse_int(raw)
    if value is None:
        raise BadParameter(f"{name} must be an integer of at most 19 digits")
    if not lo <= value <= hi:
        raise BadParameter(f"{name} must be in [{lo}, {hi}]")
    return value


# Borrower ids are contract ids (schemas/common.py ID_PATTERN). Anything else cannot name
# a borrower, and must not reach PostgreSQL: a NUL ("x%00") made asyncpg raise and the
# API answer 500 with a traceback in its log.
_BORROWER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")


def _borrower(request: web.Request) -> str:
    borrower = request.match_info["borrower_id"]
    if not _BORROWER_ID.fullmatch(borrower):
        raise BadParameter("borrower_id must be 1 to 64 characters: letters, digits, '.', '_', ':' "
                           "or '-', starting with a letter or a digit")
    return borrower


async def _caller(request: web.Request) -> str | None:
    """The lender whose key the request bears, when the key is valid right now."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await repo.authenticate(request.app[POOL], token.strip())


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/"):
        return await handler(request)
    try:
        return await _authorized(request, handler)
    except CONNECTION_ERRORS as exc:
        # PostgreSQL restarting or away: a 503 the client retries (the console says so),
        # not a 500 with a plain-text body and a traceback in the log.
        log.warning("lender api: PostgreSQL unavailable for %s: %s", request.path, exc)
        resp = _error(503, "unavailable", "the ledger database is not reachable; retry shortly")
        resp.headers["Retry-After"] = "2"
        return resp


async def _authorized(request: web.Request, handler: Handler) -> web.StreamResponse:
    lender_id = await _caller(request)
    if lender_id is None:
        resp = _error(401, "unauthorized", "send Authorization: Bearer <api key>")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="creditstream"'
        return resp
    request[LENDER] = lender_id
    try:
        return await handler(request)
    except BadParameter as exc:
        return _error(400, "bad_parameter", str(exc))
    except web.HTTPClientError as exc:
        # Unknown paths and methods: the same JSON error shape as every other answer.
        return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)


async def healthz(request: web.Request) -> web.Response:
    return _json({"ok": True})


async def get_me(request: web.Request) -> web.Response:
    return _json(await repo.profile(request.app[POOL], request[LENDER]))


def _choice(request: web.Request, name: str, allowed: tuple[str, ...] | dict, default: str | None) -> str | None:
    value = request.query.get(name) or default
    if value is not None and value not in allowed:
        raise BadParameter(f"{name} must be one of {', '.join(allowed)}")
    return value


async def get_portfolio(request: web.Request) -> web.Response:
    program = request.query.get("program") or None
    if program is not None and not _BORROWER_ID.fullmatch(program):
        raise BadParameter("program must be a contract id")
    q = request.query.get("q") or None
    if q is not None and (len(q) > 64 or not q.isprintable()):
        raise BadParameter("q must be at most 64 printable characters")
    query = Query(program=program, status=_choice(request, "status", STATUSES, None), q=q,
                  sort=_choice(request, "sort", SORTS, "borrower") or "borrower",
                  descending=_choice(request, "order", ("asc", "desc"), "asc") == "desc",
                  limit=_int_param(request, "limit", 1000, 1, 5000) or 1000)
    pool = request.app[POOL]
    # The cursor is read before the rows: a client that starts the stream from it misses
    # no update committed after its snapshot (one it already has comes again, by version).
    cursor = await repo.max_seq(pool)
    return _json({**await portfolio(pool, request[LENDER], query), "cursor": cursor})


async def get_operators(request: web.Request) -> web.Response:
    opts, lender = request.app[OPTIONS], request[LENDER]
    engine, lag = await asyncio.gather(
        request.app[SCRAPER].scrape(),
        operators.consumer_lag(opts["bootstrap"], opts["lag_groups"]) if opts["bootstrap"]
        else asyncio.sleep(0, {"groups": [], "error": "no Kafka configured"}))
    return _json({"engine": engine, "consumer_lag": lag,
                  "webhooks": await operators.webhook_failures(request.app[POOL], lender)})


async def get_limit(request: web.Request) -> web.Response:
    borrower = _borrower(request)
    update = await repo.current_limit(request.app[POOL], request[LENDER], borrower)
    return _json(update) if update else _not_found(borrower)


async def get_history(request: web.Request) -> web.Response:
    borrower = _borrower(request)
    limit = _int_param(request, "limit", 100, 1, 1000)
    before = _int_param(request, "before_version", None, 1, 2**62)
    items = await repo.history(request.app[POOL], request[LENDER], borrower, limit or 100, before)
    if not items and before is None:
        return _not_found(borrower)
    more = len(items) == limit
    return _json({"borrower_id": borrower, "items": items,
                  "next_before_version": items[-1]["payload"]["version"] if more else None})


async def get_alerts(request: web.Request) -> web.Response:
    borrower = _borrower(request)
    limit = _int_param(request, "limit", 100, 1, 1000)
    items = await repo.alerts(request.app[POOL], request[LENDER], borrower, limit or 100)
    if items is None:
        return _not_found(borrower)
    return _json({"borrower_id": borrower, "items": items})


async def get_risk_pool(request: web.Request) -> web.Response:
    """A risk-sharing pool's utilisation, for a lender funding a borrower in it."""
    pool_id = request.match_info["pool_id"]
    if not _BORROWER_ID.fullmatch(pool_id):
        raise BadParameter("pool_id must be a contract id")
    found = await repo.risk_pool(request.app[POOL], request[LENDER], pool_id)
    return _json(found) if found else _error(404, "not_found", f"no risk-sharing pool {pool_id!r} covers "
                                                               "a borrower in your portfolio")


async def stream_limits(request: web.Request) -> web.StreamResponse:
    """SSE: each event's id is the decision's ``seq``; resume with Last-Event-ID or ?since=."""
    pool, opts, lender = request.app[POOL], request.app[OPTIONS], request[LENDER]
    try:
        cursor = parse_cursor(request.headers.get("Last-Event-ID") or request.query.get("since"))
    except CursorError as exc:
        return _error(400, "bad_cursor", str(exc))
    # scope=portfolio: every visible update (the console); default: what is subscribed.
    subscribed_only = _choice(request, "scope", ("subscriptions", "portfolio"), "subscriptions") == "subscriptions"
    if cursor is None:
        cursor = await repo.max_seq(pool)  # no cursor: live from now on
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    await resp.write(f"retry: 2000\n: cursor {cursor}\n\n".encode())
    idle = 0.0
    try:
        # aiohttp does not cancel handlers when a client leaves: stop when the socket closes.
        while (request.transport is not None and not request.transport.is_closing()
               and not request.app[CLOSING].is_set()):
            # A stream is one long request: the key is checked again before every read, so
            # a rotated key or a disabled lender ends it within a poll interval, not only
            # at the client's next reconnect (which then answers 401).
            if await _caller(request) != lender:
                await resp.write(b": unauthorized\n\n")
                break
            rows = await repo.stream_since(pool, lender, cursor, 500, subscribed_only)
            for seq, envelope in rows:
                await resp.write(b"id: %d\nevent: limit.updated\ndata: %s\n\n"
                                 % (seq, orjson.dumps(envelope)))
                cursor = seq
            if len(rows) == 500:
                continue  # still catching up
            if rows:
                idle = 0.0
            elif idle >= opts["heartbeat_s"]:
                await resp.write(b": keep-alive\n\n")
                idle = 0.0
            await request.app[WAKER].wait(opts["poll_s"])
            idle += opts["poll_s"]
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    except (asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
        # The client reconnects (retry: 2000) with Last-Event-ID and misses nothing.
        log.warning("lender api: stream for %s ended: %s", lender, exc)
    return resp


async def _closing(app: web.Application) -> None:
    app[CLOSING].set()
    app[WAKER].notify()


async def _listen(app: web.Application):
    """LISTEN for ledger commits; a dead listener only makes streams fall back to polling."""
    conn: asyncpg.Connection | None = None
    try:
        conn = await app[POOL].acquire()
        await conn.add_listener(NOTIFY_CHANNEL, app[WAKER].notify)
    except (asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
        log.warning("lender api: LISTEN unavailable (%s); streams poll only", exc)
    yield
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.remove_listener(NOTIFY_CHANNEL, app[WAKER].notify)
            await app[POOL].release(conn)


def make_app(pool: asyncpg.Pool, *, poll_s: float = 1.0, heartbeat_s: float = 15.0,
             engine_metrics: list[str] | None = None, bootstrap: str | None = None,
             lag_groups: tuple[str, ...] = LAG_GROUPS, operator_key: str | None = None,
             shadow_view: lab.ShadowView | None = None) -> web.Application:
    """The lender API and console on ``pool``; ``poll_s`` bounds stream latency if a
    NOTIFY is missed; ``engine_metrics`` (workers' /metrics URLs) and ``bootstrap`` feed
    the operators page; ``operator_key`` opens the policy lab's ``/ops/v1/``, read with
    ``shadow_view`` (connectors/lenders/lab.py: a shadow engine's decisions, for the
    platform's operators only)."""
    httplog.install()
    app = web.Application(middlewares=[auth, lab.auth, console.headers])
    app[POOL] = pool
    app[WAKER] = Waker()
    app[CLOSING] = asyncio.Event()
    app.on_shutdown.append(_closing)
    app[SCRAPER] = operators.EngineScraper(list(engine_metrics or ()))
    app[OPTIONS] = {"poll_s": poll_s, "heartbeat_s": heartbeat_s, "bootstrap": bootstrap,
                    "lag_groups": list(lag_groups)}
    app.cleanup_ctx.append(_listen)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/me", get_me)
    app.router.add_get("/v1/portfolio", get_portfolio)
    app.router.add_get("/v1/operators", get_operators)
    console.add_routes(app)
    lab.add_routes(app, bootstrap, operator_key, shadow_view)
    app.router.add_get("/v1/borrowers/{borrower_id}/limit", get_limit)
    app.router.add_get("/v1/borrowers/{borrower_id}/history", get_history)
    app.router.add_get("/v1/borrowers/{borrower_id}/alerts", get_alerts)
    app.router.add_get("/v1/risk-pools/{pool_id}", get_risk_pool)
    app.router.add_get("/v1/stream/limits", stream_limits)
    return app
