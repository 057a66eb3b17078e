"""`creditstream ledger` and `creditstream lenders add|subscribe|list|rotate-key|disable|enable|serve`
as processes."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import asyncpg
import orjson
import pytest

from connectors.kafka_io import produce_events
from connectors.ledger.service import TOPICS
from creditstream.stack.process import free_port
from tests.lenders.ld_support import CLI, eventually, exit_of, group_at_end, limit_update

pytestmark = pytest.mark.integration


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(CLI, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_ld_cli_ledger_and_lenders_commands(bootstrap: str, pg_url: str, producer, uid: str) -> None:
    lender, borrower = f"lc-{uid}", f"bc-{uid}"
    code, out, err = await _cli("lenders", "add", lender, "--name", "CLI Bank",
                                "--webhook-url", "http://127.0.0.1:9/hook")
    assert code == 2 and "loopback" in err and not out  # webhooks into this machine: refused
    code, out, err = await _cli("lenders", "add", lender, "--name", "CLI Bank",
                                "--webhook-url", "http://127.0.0.1:9/hook", "--allow-loopback-webhooks")
    assert code == 0, err
    creds = orjson.loads(out)
    assert creds["api_key"].startswith("csk_") and creds["webhook_secret"].startswith("whsec_")
    code, _, err = await _cli("lenders", "add", lender, "--name", "again")
    assert code == 2 and "duplicate" in err.lower()
    assert (await _cli("lenders", "subscribe", lender, "--borrowers", f"{borrower},other"))[0] == 0
    assert (await _cli("lenders", "subscribe", f"nobody-{uid}", "--all"))[0] == 2
    code, out, _ = await _cli("lenders", "list")
    mine = [row for row in orjson.loads(out) if row["lender_id"] == lender]
    assert mine[0]["subscriptions"][0]["borrower_ids"] == [borrower, "other"]
    assert "api_key" not in out and creds["webhook_secret"] not in out

    group = f"test-cli-ledger-{uid}"
    await group_at_end(bootstrap, group, list(TOPICS))
    port = free_port()
    ledger = await asyncio.create_subprocess_exec(CLI, "ledger", "--group", group,
                                                  stderr=asyncio.subprocess.DEVNULL)
    serve = await asyncio.create_subprocess_exec(CLI, "lenders", "serve", "--port", str(port),
                                                 "--no-webhooks", stderr=asyncio.subprocess.DEVNULL)
    conn = await asyncpg.connect(pg_url)
    try:
        await produce_events(producer, [limit_update(borrower, 1, f"p-{uid}", [lender])])
        await eventually(lambda: conn.fetchval(
            "SELECT version FROM current_limits WHERE borrower_id = $1", borrower), timeout=30)
        async with aiohttp.ClientSession() as http:
            async def answer() -> int:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/v1/borrowers/{borrower}/limit",
                                        headers={"Authorization": f"Bearer {creds['api_key']}"}) as r:
                        return r.status
                except aiohttp.ClientConnectionError:
                    return 0
            assert await eventually(answer, timeout=30) == 200

            # Revocation reaches the running server on the next request, from another process.
            code, out, err = await _cli("lenders", "rotate-key", lender)
            assert code == 0, err
            new_key = orjson.loads(out)["api_key"]
            assert new_key != creds["api_key"] and await answer() == 401
            creds["api_key"] = new_key
            assert await answer() == 200
            assert (await _cli("lenders", "disable", lender))[0] == 0 and await answer() == 401
            assert (await _cli("lenders", "enable", lender))[0] == 0 and await answer() == 200
            assert (await _cli("lenders", "rotate-key", f"nobody-{uid}"))[0] == 2
    finally:
        await conn.close()
        for proc in (ledger, serve):
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(ledger.wait(), 30) == 0
        assert await asyncio.wait_for(serve.wait(), 30) == 0


async def test_ld_serve_exits_when_its_dispatcher_stops(uid: str) -> None:
    """Before, a dispatcher that ended (here: no Kafka at all) left `lenders serve` answering
    REST with no webhook going out, and nothing said so; now the process exits 1."""
    proc = await asyncio.create_subprocess_exec(CLI, "lenders", "serve", "--port", str(free_port()),
                                                "--bootstrap", "127.0.0.1:1", stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    code, err = await exit_of(proc, 60, "lenders serve kept running without its webhook dispatcher")
    assert code == 1 and "the webhook dispatcher stopped" in err
    assert "Unclosed AIOKafkaConsumer" not in err
