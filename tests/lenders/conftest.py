"""Fixtures of the lender-delivery tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from connectors.pg.migrate import migrate


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the local database, migrated (lenders, subscriptions, webhook tables)."""
    await migrate(pg_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    yield pool
    await pool.close()
