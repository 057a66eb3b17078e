"""PostgreSQL access for lender delivery: lenders, subscriptions, reads filtered per lender.

Every read for a lender filters on ``payload.lenders`` in SQL, so a borrower the lender
does not fund is indistinguishable from one that does not exist.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias, cast

import asyncpg
import orjson

from connectors.lenders.access import Scope, Subscription
from connectors.lenders.urls import UrlPolicy
from connectors.lenders.urls import check as check_url
from connectors.pg.crypto import DataKeyError, is_sealed, key_id, seal, sealed_key_id, unseal

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool
# The update (stored as its envelope) names lender $1 among its funders.
_VISIBLE = ("payload -> 'payload' -> 'lenders' @> "
            "jsonb_build_array(jsonb_build_object('lender_id', $1::text))")


def hash_key(api_key: str) -> bytes:
    """API keys are high-entropy random tokens: a plain SHA-256 is the right hash."""
    return hashlib.sha256(api_key.encode()).digest()


async def add_lender(conn: Conn, lender_id: str, name: str, webhook_url: str | None = None,
                     url_policy: UrlPolicy | None = None) -> tuple[str, str]:
    """Create a lender; return its API key and webhook secret (shown once). A webhook URL
    creditstream may not call raises :class:`WebhookUrlError` (connectors/lenders/urls.py)."""
    if webhook_url is not None:
        await check_url(webhook_url, url_policy or UrlPolicy.from_env())
    api_key = "csk_" + secrets.token_urlsafe(32)
    secret = "whsec_" + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO lenders (lender_id, name, api_key_hash, webhook_url, webhook_secret)"
        " VALUES ($1, $2, $3, $4, $5)", lender_id, name, hash_key(api_key), webhook_url, seal(secret))
    return api_key, secret


async def subscribe(conn: Conn, lender_id: str, scope: Scope, program_id: str | None = None,
                    borrower_ids: list[str] | None = None) -> int:
    if scope == "program" and not program_id:
        raise ValueError("scope program needs a program id")
    if scope == "borrowers" and not borrower_ids:
        raise ValueError("scope borrowers needs at least one borrower id")
    exists = await conn.fetchval("SELECT 1 FROM lenders WHERE lender_id = $1", lender_id)
    if not exists:
        raise LookupError(f"no lender {lender_id!r}")
    return await conn.fetchval(
        "INSERT INTO lender_subscriptions (lender_id, scope, program_id, borrower_ids)"
        " VALUES ($1, $2, $3, $4) RETURNING id", lender_id, scope,
        program_id if scope == "program" else None,
        # scope borrowers: borrower_ids was checked above (a non-empty list).
        list(cast("list[str]", borrower_ids)) if scope == "borrowers" else None)


async def list_lenders(conn: Conn) -> list[dict[str, Any]]:
    """Lenders with their subscriptions; never the key hash or the secret."""
    rows = await conn.fetch(
        "SELECT l.lender_id, l.name, l.webhook_url, l.active, l.created_at,"
        " coalesce(jsonb_agg(jsonb_build_object('id', s.id, 'scope', s.scope,"
        "   'program_id', s.program_id, 'borrower_ids', s.borrower_ids) ORDER BY s.id)"
        "   FILTER (WHERE s.id IS NOT NULL), '[]') AS subscriptions"
        " FROM lenders l LEFT JOIN lender_subscriptions s USING (lender_id)"
        " GROUP BY l.lender_id ORDER BY l.lender_id")
    return [{**dict(r), "subscriptions": orjson.loads(r["subscriptions"])} for r in rows]


async def authenticate(conn: Conn, api_key: str) -> str | None:
    """The active lender holding ``api_key``, or None (lookup by hash: constant-time in
    the secret, since only a digest of it is ever compared)."""
    if not api_key.isascii():
        # Keys are urlsafe base64. A header with undecodable bytes would fail to encode
        # (a 500 whose exception object holds the whole key): it is simply not a key.
        return None
    return await conn.fetchval(
        "SELECT lender_id FROM lenders WHERE api_key_hash = $1 AND active", hash_key(api_key))


async def profile(conn: Conn, lender_id: str) -> dict[str, Any]:
    """What a signed-in lender may know about itself: id, name and what is pushed to it."""
    row = await conn.fetchrow("SELECT lender_id, name FROM lenders WHERE lender_id = $1", lender_id)
    subs = await conn.fetch("SELECT scope, program_id, borrower_ids FROM lender_subscriptions"
                            " WHERE lender_id = $1 ORDER BY id", lender_id)
    return {"lender_id": row["lender_id"], "name": row["name"],
            "subscriptions": [{k: v for k, v in dict(s).items() if v is not None} for s in subs]}


async def rotate_key(conn: Conn, lender_id: str) -> str:
    """Replace a lender's API key; return the new one (shown once). The old key stops
    working on the next request, and open streams end at their next poll."""
    api_key = "csk_" + secrets.token_urlsafe(32)
    done = await conn.execute("UPDATE lenders SET api_key_hash = $2 WHERE lender_id = $1",
                              lender_id, hash_key(api_key))
    if not done.endswith(" 1"):
        raise LookupError(f"no lender {lender_id!r}")
    return api_key


async def set_active(conn: Conn, lender_id: str, active: bool) -> None:
    """Disable (or re-enable) a lender: a disabled one gets 401 on REST and the stream and
    no webhooks (the dispatcher drops it at its next refresh); its data is kept."""
    done = await conn.execute("UPDATE lenders SET active = $2 WHERE lender_id = $1", lender_id, active)
    if not done.endswith(" 1"):
        raise LookupError(f"no lender {lender_id!r}")


def _envelope(value: str | bytes) -> dict[str, Any]:
    return orjson.loads(value)


async def current_limit(conn: Conn, lender_id: str, borrower_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT payload, updated_at FROM current_limits WHERE borrower_id = $2 AND {_VISIBLE}",
        lender_id, borrower_id)
    return _envelope(row["payload"]) if row else None


async def history(conn: Conn, lender_id: str, borrower_id: str, limit: int = 100,
                  before_version: int | None = None) -> list[dict[str, Any]]:
    """Decisions the lender may see, newest first."""
    rows = await conn.fetch(
        f"SELECT payload FROM decision_log WHERE borrower_id = $2 AND {_VISIBLE}"
        " AND ($3::bigint IS NULL OR version < $3) ORDER BY version DESC LIMIT $4",
        lender_id, borrower_id, before_version, limit)
    return [_envelope(r["payload"]) for r in rows]


async def alerts(conn: Conn, lender_id: str, borrower_id: str,
                 limit: int = 100) -> list[dict[str, Any]] | None:
    """Alerts of a borrower the lender currently funds (None when it does not)."""
    if await current_limit(conn, lender_id, borrower_id) is None:
        return None
    rows = await conn.fetch(
        "SELECT payload FROM alerts WHERE borrower_id = $1 ORDER BY occurred_at DESC, alert_id"
        " LIMIT $2", borrower_id, limit)
    return [_envelope(r["payload"]) for r in rows]


async def max_seq(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM decision_log"))


_SUBSCRIBED = (" AND EXISTS (SELECT 1 FROM lender_subscriptions s WHERE s.lender_id = $1 AND ("
               "   s.scope = 'all' OR (s.scope = 'program' AND s.program_id = d.program_id)"
               "   OR (s.scope = 'borrowers' AND d.borrower_id = ANY (s.borrower_ids))))")


async def stream_since(conn: Conn, lender_id: str, seq: int, limit: int = 500,
                       subscribed_only: bool = True) -> list[tuple[int, dict[str, Any]]]:
    """Decisions after ``seq`` that the lender may see; with ``subscribed_only`` (the
    default, what is pushed) only those its subscriptions select. The console follows
    its whole portfolio, whatever is subscribed: entitlement still filters every row."""
    rows = await conn.fetch(
        f"SELECT d.seq, d.payload FROM decision_log d WHERE d.seq > $2 AND {_VISIBLE}"
        f"{_SUBSCRIBED if subscribed_only else ''} ORDER BY d.seq LIMIT $3", lender_id, seq, limit)
    return [(r["seq"], _envelope(r["payload"])) for r in rows]


# --- webhooks ---------------------------------------------------------------------------

async def webhook_subscriptions(conn: Conn) -> tuple[list[Subscription], dict[str, tuple[str, str]],
                                                    dict[str, str]]:
    """Subscriptions of active lenders with a webhook, each one's (url, secret), and the
    lenders whose secret cannot be opened, with the reason (they are in the subscriptions,
    not in the endpoints: their updates are dead-lettered unsent, the others go on)."""
    rows = await conn.fetch(
        "SELECT s.lender_id, s.scope, s.program_id, s.borrower_ids, l.webhook_url,"
        " l.webhook_secret FROM lender_subscriptions s JOIN lenders l USING (lender_id)"
        " WHERE l.active AND l.webhook_url IS NOT NULL AND l.webhook_secret IS NOT NULL")
    subs = [Subscription(r["lender_id"], r["scope"], r["program_id"],
                         frozenset(r["borrower_ids"] or ())) for r in rows]
    endpoints: dict[str, tuple[str, str]] = {}
    unreadable: dict[str, str] = {}
    for r in rows:
        if r["lender_id"] in endpoints or r["lender_id"] in unreadable:
            continue
        try:
            # The secret is needed in clear to sign, so it is encrypted at rest, not hashed.
            endpoints[r["lender_id"]] = (r["webhook_url"], _secret(r["webhook_secret"]))
        except DataKeyError as exc:
            unreadable[r["lender_id"]] = str(exc)
    return subs, endpoints, unreadable


def _secret(stored: str) -> str:
    # Rows written before field encryption hold the secret in clear; they still sign.
    return unseal(stored) if is_sealed(stored) else stored


async def secret_problems(conn: Conn) -> tuple[int, dict[str, str]]:
    """(how many active lenders have a sealed webhook secret, those whose secret no
    configured key opens, with the reason): what ``lenders serve`` checks before starting."""
    rows = await conn.fetch("SELECT lender_id, webhook_secret FROM lenders"
                            " WHERE active AND webhook_secret IS NOT NULL")
    sealed, problems = 0, {}
    for r in rows:
        if not is_sealed(r["webhook_secret"]):
            continue
        sealed += 1
        try:
            unseal(r["webhook_secret"])
        except DataKeyError as exc:
            problems[r["lender_id"]] = str(exc)
    return sealed, problems


async def rekey_secrets(conn: asyncpg.Connection) -> tuple[int, dict[str, str]]:
    """Re-seal every webhook secret not sealed with the current key (older keys, ``v1:``
    values, secrets in clear) with it; (how many, the lenders whose secret no key opens)."""
    current, done, problems = key_id(), 0, {}
    async with conn.transaction():
        rows = await conn.fetch("SELECT lender_id, webhook_secret FROM lenders"
                                " WHERE webhook_secret IS NOT NULL FOR UPDATE")
        for r in rows:
            stored = r["webhook_secret"]
            if sealed_key_id(stored) == current:
                continue
            try:
                secret = _secret(stored)
            except DataKeyError as exc:
                problems[r["lender_id"]] = str(exc)
                continue
            await conn.execute("UPDATE lenders SET webhook_secret = $2 WHERE lender_id = $1",
                               r["lender_id"], seal(secret))
            done += 1
    return done, problems


async def progress(conn: Conn, lender_id: str, borrower_id: str) -> int:
    return int(await conn.fetchval(
        "SELECT coalesce(max(version), 0) FROM webhook_progress"
        " WHERE lender_id = $1 AND borrower_id = $2", lender_id, borrower_id))


async def log_attempt(conn: Conn, lender_id: str, borrower_id: str, version: int, event_id: str,
                      attempt: int, status: str, response_code: int | None, error: str | None,
                      started_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO webhook_deliveries (lender_id, borrower_id, version, event_id, attempt,"
        " status, response_code, error, started_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
        lender_id, borrower_id, version, event_id, attempt, status, response_code,
        error[:2000] if error else None, started_at)


async def finish(conn: asyncpg.Connection, lender_id: str, borrower_id: str, version: int,
                 dead: tuple[str, int, str, bytes] | None = None) -> None:
    """Mark a version done for (lender, borrower); ``dead`` = (event_id, attempts, error, body)."""
    async with conn.transaction():
        if dead is not None:
            event_id, attempts, error, body = dead
            await conn.execute(
                "INSERT INTO webhook_dead_letters (lender_id, borrower_id, version, event_id,"
                " attempts, last_error, body) VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb)"
                " ON CONFLICT DO NOTHING", lender_id, borrower_id, version, event_id, attempts,
                error[:2000], body.decode())
        await conn.execute(
            "INSERT INTO webhook_progress (lender_id, borrower_id, version) VALUES ($1,$2,$3)"
            " ON CONFLICT (lender_id, borrower_id) DO UPDATE SET version ="
            " GREATEST(webhook_progress.version, EXCLUDED.version), updated_at = now()",
            lender_id, borrower_id, version)


async def risk_pool(conn: Conn, lender_id: str, pool_id: str) -> dict[str, Any] | None:
    """A risk-sharing pool's utilisation as the borrowers' current limits state it
    (docs/credit-policy.md section 14): capacity, exposure covered and claimed, how many
    borrowers are held or partly uncovered, and the caller's own covered amount. None
    when no borrower the lender funds is in the pool (as for a borrower: 404)."""
    rows = await conn.fetch(
        "SELECT payload -> 'payload' AS p, updated_at FROM current_limits"
        " WHERE payload -> 'payload' -> 'risk_pool' ->> 'pool_id' = $1", pool_id)
    updates = [(orjson.loads(r["p"]), r["updated_at"]) for r in rows]
    if not any(lender["lender_id"] == lender_id for p, _ in updates for lender in p["lenders"]):
        return None
    currency = updates[0][0]["limit"]["currency"]

    def total(values: Any) -> Decimal:
        return sum((Decimal(v) for v in values), Decimal(0))

    blocks = [p["risk_pool"] for p, _ in updates]
    capacity = min(Decimal(b["capacity"]["amount"]) for b in blocks)
    covered = total(b["covered"]["amount"] for b in blocks)
    codes = [{r["code"] for r in p["reasons"]} for p, _ in updates]
    return {
        "pool_id": pool_id, "currency": currency,
        "capacity": {"amount": str(capacity), "currency": currency},
        "covered": {"amount": str(covered), "currency": currency},
        "claimed": {"amount": str(total(b["claimed"]["amount"] for b in blocks)), "currency": currency},
        "utilisation": str((covered / capacity).quantize(Decimal("0.0001"))) if capacity else "0",
        "borrowers": len(updates),
        "held": sum("POOL_HOLD" in c for c in codes),
        "uncovered": sum("POOL_UNCOVERED" in c for c in codes),
        "pending": sum(bool(b["pending"]) for b in blocks),
        "your_covered": {"amount": str(total(lender.get("covered", {}).get("amount", "0")
                                             for p, _ in updates for lender in p["lenders"]
                                             if lender["lender_id"] == lender_id)), "currency": currency},
        "as_of": max(at for _, at in updates).isoformat(),
    }
