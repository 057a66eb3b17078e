"""Data keys (issue 11, item 3): sealed values name their key; a process that cannot open
any webhook secret refuses to start, saying which key it needs; one unreadable lender is
alerted and skipped while the others keep receiving; rotation is one documented command.
Real PostgreSQL, Kafka, HTTP and `creditstream` processes."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from connectors.kafka_io import produce_events
from connectors.lenders import repo
from connectors.lenders.access import RetryPolicy
from connectors.pg import crypto
from creditstream.stack.process import free_port
from tests.lenders.ld_support import (
    CLI,
    DEV_URLS,
    dispatching,
    eventually,
    exit_of,
    limit_update,
    receiving,
)
from tests.pg_schema import fresh_schema
from tests.privacy.test_pii_crypto import new_key

pytestmark = pytest.mark.integration


async def test_ld_serve_with_another_data_key_refuses_to_start(pool: asyncpg.Pool, pg_url: str, tmp_path: Path,
                                                                uid: str) -> None:
    """``CREDITSTREAM_DATA_KEY`` unset and another state folder: a second key is generated.
    Before, `lenders serve` started on it, REST answered and the dispatcher died on the first
    secret; now it exits 2 before listening, naming the key id the secrets need."""
    # At least one secret sealed with this suite's key.
    await repo.add_lender(pool, f"lk-{uid}", "Keyed", "http://127.0.0.1:9/hook", url_policy=DEV_URLS)
    env = {k: v for k, v in os.environ.items() if k not in (crypto.ENV, crypto.PREVIOUS_ENV)}
    env |= {"CREDITSTREAM_STATE_DIR": str(tmp_path), "CREDITSTREAM_PG_URL": pg_url}
    port = free_port()
    proc = await asyncio.create_subprocess_exec(CLI, "lenders", "serve", "--port", str(port), env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    code, text = await exit_of(proc, 30, "lenders serve started although no webhook secret opens with its data key")
    assert code == 2, text
    assert "refusing to start" in text and f"it needs data key id {crypto.key_id()}" in text
    assert "generated a new data key" in text  # and never silently
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []

    async def hook(self, request: web.Request) -> web.Response:
        self.got.append((request.match_info["lender"], request.headers["X-Creditstream-Borrower"]))
        return web.Response(status=204)


async def test_ld_one_unreadable_lender_is_skipped_and_the_others_keep_receiving(
        bootstrap: str, pool: asyncpg.Pool, producer, uid: str, caplog: pytest.LogCaptureFixture) -> None:
    """Before: one lender sealed under another key made the dispatcher raise out of its
    refresh and leave its group, so no lender received anything."""
    receiver = Receiver()
    good, bad = f"lg-{uid}", f"lb-{uid}"
    other = crypto._decode(new_key())  # noqa: SLF001 - a key this process is not configured with
    async with receiving("/hook/{lender}", receiver.hook) as port:
        try:
            for lid in (good, bad):
                await repo.add_lender(pool, lid, lid, f"http://127.0.0.1:{port}/hook/{lid}", url_policy=DEV_URLS)
                await repo.subscribe(pool, lid, "all")
            await pool.execute("UPDATE lenders SET webhook_secret = $2 WHERE lender_id = $1", bad,
                               crypto.seal("whsec_elsewhere", key=other))
            group = f"test-data-keys-{uid}"
            with caplog.at_level(logging.ERROR, logger="connectors.lenders.webhooks"):
                async with dispatching(bootstrap, pool, group,
                                       RetryPolicy(max_attempts=2, base_s=0.05, cap_s=0.1)) as dispatcher:
                    await produce_events(producer, [limit_update(f"bb-{uid}", 1, f"pb-{uid}", [bad]),
                                                    limit_update(f"bg-{uid}", 1, f"pg-{uid}", [good]),
                                                    limit_update(f"bg-{uid}", 2, f"pg-{uid}", [good])])

                    async def good_got_both() -> bool:
                        return [x for x in receiver.got if x[0] == good] == [(good, f"bg-{uid}")] * 2

                    await eventually(good_got_both, timeout=30)
                    error = await eventually(lambda: pool.fetchval(
                        "SELECT last_error FROM webhook_dead_letters WHERE lender_id = $1", bad), timeout=30)
            assert "webhook secret cannot be opened" in error and f"it needs data key id {crypto.key_id(other)}" in error
            assert not [x for x in receiver.got if x[0] == bad]
            assert bad in dispatcher.stats.unreadable
            assert any("ALERT" in r.getMessage() and bad in r.getMessage() for r in caplog.records)
        finally:
            # Never leave an unreadable row in the shared database.
            await pool.execute("DELETE FROM lenders WHERE lender_id = $1", bad)


@pytest.fixture
async def fresh_schema_url(pg_url: str):
    """A URL whose search path is an empty schema: a rotation here re-seals nothing of the
    shared database."""
    async with fresh_schema(pg_url, "dk") as url:
        yield url


async def test_ld_rotation_is_one_command(fresh_schema_url: str, monkeypatch: pytest.MonkeyPatch,
                                          uid: str) -> None:
    """`keys data-key new`, then the new key current and the old one previous, `keys
    data-key rekey`; afterwards the old key can go and `keys data-key status` is clean."""
    old = new_key()

    async def cli(*args: str, key: str, previous: str = "") -> tuple[int, str]:
        env = {**os.environ, crypto.ENV: key, crypto.PREVIOUS_ENV: previous, "CREDITSTREAM_PG_URL": fresh_schema_url}
        proc = await asyncio.create_subprocess_exec(CLI, "keys", *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        return proc.returncode or 0, out.decode()

    assert (await cli("data-key", "status", key=old))[0] == 0  # migrates the empty schema
    monkeypatch.setenv(crypto.ENV, old)
    crypto.reload()
    try:
        conn = await asyncpg.connect(fresh_schema_url)
        _, secret = await repo.add_lender(conn, f"lr-{uid}", "Rotated", "https://93.184.216.34/hook")
        code, out = await cli("data-key", "new", key=old)
        new = out.strip().splitlines()[-1]
        assert code == 0 and crypto.key_id(crypto._decode(new)) in out  # noqa: SLF001
        code, out = await cli("data-key", "status", key=new)
        assert code == 1 and "NOT CONFIGURED" in out  # the new key alone does not open the old secret
        code, out = await cli("data-key", "rekey", key=new, previous=old)
        assert code == 0 and "1 webhook secrets" in out, out
        code, out = await cli("data-key", "status", key=new)
        assert code == 0 and "NOT CONFIGURED" not in out, out
        stored = await conn.fetchval("SELECT webhook_secret FROM lenders WHERE lender_id = $1", f"lr-{uid}")
        await conn.close()
        monkeypatch.setenv(crypto.ENV, new)
        crypto.reload()
        assert crypto.sealed_key_id(stored) == crypto.key_id() and crypto.unseal(stored) == secret
    finally:
        monkeypatch.undo()
        crypto.reload()
