"""PostgreSQL side of the gateway: keys and accepted event ids (asyncpg)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from connectors.gateway.authorize import Ref
from connectors.gateway.keys import Scope, matches, new_key, parse


class GatewayStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def authenticate(self, key: str) -> Scope | None:
        """The key's scope when it is well-formed, known, not revoked and the secret matches."""
        parsed = parse(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        row = await self.pool.fetchrow(
            "SELECT tenant, secret_hash, event_types, parties, programs FROM api_keys "
            "WHERE key_id = $1 AND revoked_at IS NULL", key_id)
        if row is None or not matches(secret, row["secret_hash"]):
            return None
        return Scope(key_id, row["tenant"], frozenset(row["event_types"]), frozenset(row["parties"]),
                     frozenset(row["programs"]))

    @asynccontextmanager
    async def exclusive(self, tenant: str, event_ids: list[str]) -> AsyncIterator[Accepted]:
        """Hold (tenant, event id) for each of ``event_ids`` until the block ends: the
        duplicate check, the produce and the record of what was accepted are one step.

        Without it, ten parallel copies of a request all found the id unknown and four
        were produced. Transaction-level advisory locks (released at commit, rollback or
        when the connection dies), so any number of gateway processes agree, and a gateway
        that crashes mid-request leaves nothing claimed: the client's retry is produced.
        """
        keys = sorted({lock_key(tenant, e) for e in event_ids})
        async with self.pool.acquire() as conn, conn.transaction():
            # One by one, in sorted order, so two requests sharing ids cannot deadlock.
            await conn.executemany("SELECT pg_advisory_xact_lock($1)", [(k,) for k in keys])
            yield Accepted(conn, tenant)

    async def owners(self, refs: set[Ref]) -> dict[Ref, str]:
        """The tenant owning each of ``refs`` that is registered."""
        if not refs:
            return {}
        kinds, ids = zip(*sorted(refs), strict=True)
        rows = await self.pool.fetch(
            "SELECT r.kind, r.id, r.tenant FROM registrations r"
            " JOIN unnest($1::text[], $2::text[]) AS t(kind, id) USING (kind, id)", list(kinds), list(ids))
        return {(r["kind"], r["id"]): r["tenant"] for r in rows}

    async def claim(self, tenant: str, refs: set[Ref]) -> dict[Ref, str]:
        """Register ``refs`` to ``tenant`` where nobody owns them yet; return their owners,
        which differ from ``tenant`` where another request claimed one first."""
        if not refs:
            return {}
        # Sorted, so two requests claiming overlapping ids lock them in the same order
        # (no deadlock); ON CONFLICT DO NOTHING leaves the first owner in place.
        kinds, ids = zip(*sorted(refs), strict=True)
        await self.pool.execute(
            "INSERT INTO registrations (kind, id, tenant) SELECT kind, id, $3"
            " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(kind, id, n) ORDER BY n"
            " ON CONFLICT DO NOTHING", list(kinds), list(ids), tenant)
        return await self.owners(refs)



def lock_key(tenant: str, event_id: str) -> int:
    """A signed 64-bit advisory-lock key for (tenant, event id). Two pairs sharing a key
    (a 2^-64 chance) only wait for each other; they are never mistaken for duplicates."""
    digest = hashlib.sha256(f"creditstream.gateway|{tenant}\0{event_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Accepted:
    """The accepted event ids of one tenant, read and written while their locks are held."""

    def __init__(self, conn: asyncpg.Connection, tenant: str) -> None:
        self.conn, self.tenant = conn, tenant

    async def known(self, event_ids: list[str]) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT event_id FROM accepted_events WHERE tenant = $1 AND event_id = ANY($2::text[])",
            self.tenant, event_ids)
        return {r["event_id"] for r in rows}

    async def record(self, accepted: list[tuple[str, str, str]]) -> None:
        """Remember accepted (event id, type, topic) after the broker acknowledged them."""
        await self.conn.executemany(
            "INSERT INTO accepted_events (tenant, event_id, event_type, topic) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING", [(self.tenant, *a) for a in accepted])


async def create_key(conn: asyncpg.Connection, tenant: str, types: list[str], parties: list[str],
                     programs: list[str]) -> tuple[str, str]:
    key_id, key, secret_hash = new_key()
    await conn.execute(
        "INSERT INTO api_keys (key_id, tenant, secret_hash, event_types, parties, programs) "
        "VALUES ($1, $2, $3, $4, $5, $6)", key_id, tenant, secret_hash, types, parties, programs)
    return key_id, key


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> bool:
    done = await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL",
                              key_id)
    return done.endswith("1")


async def list_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT key_id, tenant, event_types, parties, programs, created_at, revoked_at "
                            "FROM api_keys ORDER BY created_at")
