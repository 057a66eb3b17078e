"""The ``parties`` table: each party's name and tax id, encrypted, found by a keyed hash.

Only what a lender needs to know whom it finances is kept: the legal name and the tax id
(encrypted), the kind of party and its program, who registered it and when. The region
and everything else of the registration stay out. Each ciphertext is bound to its column
and party id (``crypto.seal`` context), so a value copied to another row does not open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from connectors.pg import crypto
from schemas.events import BorrowerRegistered


def normalise_tax_id(tax_id: str) -> str:
    """The form tax ids are hashed in: ``91310115-ma1k.4abc 2x`` -> ``91310115MA1K4ABC2X``."""
    return re.sub(r"[\s.\-]", "", tax_id).upper()


def _context(column: str, party_id: str) -> str:
    return f"parties.{column}|{party_id}"


@dataclass(frozen=True)
class Party:
    party_id: str
    tenant: str
    kind: str
    program_id: str | None
    name: str
    tax_id: str
    event_id: str
    registered_at: datetime


UPSERT = """
INSERT INTO parties (party_id, tenant, kind, program_id, name_enc, tax_id_enc, tax_id_hmac, key_id,
    event_id, registered_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
ON CONFLICT (party_id) DO UPDATE SET
    tenant = EXCLUDED.tenant, kind = EXCLUDED.kind, program_id = EXCLUDED.program_id,
    name_enc = EXCLUDED.name_enc, tax_id_enc = EXCLUDED.tax_id_enc, tax_id_hmac = EXCLUDED.tax_id_hmac,
    key_id = EXCLUDED.key_id, event_id = EXCLUDED.event_id, registered_at = EXCLUDED.registered_at,
    updated_at = now()
"""
SELECT = "SELECT party_id, tenant, kind, program_id, name_enc, tax_id_enc, event_id, registered_at FROM parties"


def row(event: BorrowerRegistered) -> tuple[object, ...]:
    """The sealed row of a registration (a later registration of the party replaces it)."""
    p = event.payload
    return (p.party_id, event.tenant, p.kind.value, p.program_id,
            crypto.seal(p.name, _context("name", p.party_id)),
            crypto.seal(p.tax_id, _context("tax_id", p.party_id)),
            crypto.lookup_hash(normalise_tax_id(p.tax_id)), crypto.key_id(), event.event_id, event.occurred_at)


async def write(conn: asyncpg.Connection, events: list[BorrowerRegistered]) -> None:
    """Upsert registrations in log order, in one transaction."""
    async with conn.transaction():
        await conn.executemany(UPSERT, [row(e) for e in events])


def _party(r: asyncpg.Record) -> Party:
    pid = r["party_id"]
    return Party(pid, r["tenant"], r["kind"], r["program_id"],
                 crypto.unseal(r["name_enc"], _context("name", pid)),
                 crypto.unseal(r["tax_id_enc"], _context("tax_id", pid)), r["event_id"], r["registered_at"])


async def get(conn: asyncpg.Connection, party_id: str) -> Party | None:
    """A party, decrypted; :class:`crypto.DataKeyError` when the key does not open it."""
    r = await conn.fetchrow(f"{SELECT} WHERE party_id = $1", party_id)
    return _party(r) if r is not None else None


async def find_by_tax_id(conn: asyncpg.Connection, tax_id: str) -> list[Party]:
    """Parties registered with ``tax_id`` (any spacing or case), found by keyed hash."""
    hashes = crypto.lookup_hashes(normalise_tax_id(tax_id))
    rows = await conn.fetch(f"{SELECT} WHERE tax_id_hmac = ANY($1::text[]) ORDER BY party_id", hashes)
    return [_party(r) for r in rows]


async def rekey(conn: asyncpg.Connection, batch: int = 500) -> int:
    """Re-seal rows sealed with another key than the current one; returns how many.

    Each batch is one transaction; rows are decrypted with whichever configured key opens
    them, so ``CREDITSTREAM_DATA_KEY_PREVIOUS`` must still hold the old key while this runs.
    """
    current, done = crypto.key_id(), 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT party_id, name_enc, tax_id_enc FROM parties WHERE key_id <> $1 "
                "ORDER BY party_id LIMIT $2 FOR UPDATE", current, batch)
            for r in rows:
                pid = r["party_id"]
                name = crypto.unseal(r["name_enc"], _context("name", pid))
                tax_id = crypto.unseal(r["tax_id_enc"], _context("tax_id", pid))
                await conn.execute(
                    "UPDATE parties SET name_enc = $2, tax_id_enc = $3, tax_id_hmac = $4, key_id = $5 "
                    "WHERE party_id = $1", pid, crypto.seal(name, _context("name", pid)),
                    crypto.seal(tax_id, _context("tax_id", pid)),
                    crypto.lookup_hash(normalise_tax_id(tax_id)), current)
        done += len(rows)
        if len(rows) < batch:
            return done
