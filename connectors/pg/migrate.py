"""Versioned SQL migrations, applied in order, each once, each in its own transaction."""

from __future__ import annotations

from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every process that migrates.
_LOCK_ID = 0x63726564


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


async def migrate(url: str) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    conn = await asyncpg.connect(url)
    applied: list[str] = []
    try:
        # Two processes starting together must not apply the same migration twice.
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in migration_files():
            version = path.stem
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
        finally:
            await conn.close()
    return applied
