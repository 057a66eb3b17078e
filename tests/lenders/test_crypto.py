"""Webhook secrets (and any sealed field) are encrypted at rest, readable with the key."""

from __future__ import annotations

import asyncpg
import pytest

from connectors.lenders import repo
from connectors.lenders.urls import UrlPolicy
from connectors.pg import crypto
from connectors.pg.migrate import migrate


def test_seal_round_trips_and_is_bound_to_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    token = crypto.seal("whsec_abc")
    assert token.startswith(f"v2:{crypto.key_id()}:") and "whsec_abc" not in token
    assert crypto.unseal(token) == "whsec_abc" and crypto.sealed_key_id(token) == crypto.key_id()
    assert crypto.seal("whsec_abc") != token  # a fresh nonce every time
    crypto.data_key.cache_clear()
    monkeypatch.setenv(crypto.ENV, "A" * 43)  # another 32-byte key
    try:
        with pytest.raises(Exception):  # noqa: B017 - cryptography raises InvalidTag
            crypto.unseal(token)
    finally:
        crypto.data_key.cache_clear()


@pytest.mark.integration
async def test_webhook_secret_is_not_stored_in_clear(pg_url: str, uid: str) -> None:
    await migrate(pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        _, secret = await repo.add_lender(conn, f"bank-{uid}", "Bank", "http://127.0.0.1:9/hook",
                                          url_policy=UrlPolicy(allow_loopback=True))
        stored = await conn.fetchval("SELECT webhook_secret FROM lenders WHERE lender_id = $1", f"bank-{uid}")
    finally:
        await conn.close()
    assert secret not in stored and crypto.unseal(stored) == secret
