"""A fresh PostgreSQL schema for a test whose writes must not meet the shared database's rows."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg


@contextlib.asynccontextmanager
async def fresh_schema(pg_url: str, prefix: str, setup_sql: str = "") -> AsyncIterator[str]:
    """``pg_url`` with its search path set to a new schema ``<prefix>_<random>``, made
    with ``setup_sql`` run inside it (a migration, say); the schema is dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"CREATE SCHEMA {name}; SET search_path TO {name}; {setup_sql}")
        yield f"{pg_url}{'&' if '?' in pg_url else '?'}search_path={name}"
        await conn.execute(f"DROP SCHEMA {name} CASCADE")
    finally:
        await conn.close()
