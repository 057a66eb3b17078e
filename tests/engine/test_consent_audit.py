"""Consent revoked, through the real path: the borrower's withdrawal goes through the HTTP
gateway to Kafka, a worker process recomputes the facility, the ledger writes the
decision and the alert to PostgreSQL, and the funding lender reads the audit trail over
REST. docs/credit-policy.md ("Consent"): every component is kept with contribution 0 and
``frozen``, the limit is 0, the status ``frozen``, and a ``CONSENT_REVOKED`` alert is the
audit record."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import orjson
import pytest

from connectors.gateway.app import Limits, build_app
from connectors.gateway.store import create_key
from connectors.ledger.service import TOPICS, Ledger
from connectors.lenders import repo
from connectors.lenders.api import make_app
from connectors.pg.migrate import migrate
from schemas import codec
from schemas.factory import EventFactory
from tests.engine import scenarios as sc
from tests.lenders.ld_support import eventually, group_at_end, start_site

pytestmark = pytest.mark.integration


async def test_consent_revoked_zeroes_recomputes_freezes_and_leaves_an_audit_trail(
        engine, bootstrap: str, pg_url: str, uid: str) -> None:
    core, sup, program = f"core-{uid}", f"sup-{uid}", f"prg-{uid}"
    funder, other = f"lx-{uid}", f"ly-{uid}"
    f = EventFactory(f"cns-{uid}", sc.WEEK0, tenant=core)
    await migrate(pg_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    conn = await asyncpg.connect(pg_url)
    try:
        _, key = await create_key(conn, core, ["*"], [core, sup], [program])
    finally:
        await conn.close()
    funder_key, _ = await repo.add_lender(pool, funder, "Funder")
    other_key, _ = await repo.add_lender(pool, other, "Other")
    group = f"test-consent-ledger-{uid}"
    await group_at_end(bootstrap, group, list(TOPICS))
    stop = asyncio.Event()
    ledger_task = asyncio.create_task(Ledger(bootstrap, pg_url, group=group).run(stop))
    gw_runner, gw_port = await start_site(build_app(pg_url, bootstrap, Limits()))
    api_runner, api_port = await start_site(make_app(pool, poll_s=0.2))
    gateway, api = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{api_port}"

    async def decisions() -> list[asyncpg.Record]:
        return await pool.fetch("SELECT * FROM decision_log WHERE borrower_id = $1 ORDER BY version", sup)

    try:
        async with aiohttp.ClientSession() as http:
            async def send(*events) -> None:
                async with http.post(f"{gateway}/v1/events", data=b"\n".join(codec.encode(e) for e in events),
                                     headers={"Authorization": f"Bearer {key}",
                                              "Content-Type": "application/x-ndjson"}) as r:
                    assert r.status == 200, await r.text()

            async def limit_is(amount: str) -> bool:
                rows = await decisions()
                return bool(rows) and f"{rows[-1]['limit_amount']:.2f}" == amount

            await send(f.program(program, lenders=((funder, "1"),)), f.borrower(sup, program), f.consent(sup),
                       f.supplies(sup, core))
            await eventually(decisions, timeout=60)
            f.advance(hours=1)
            ref = f.invoice_ref(sc.TAX_S, f"{uid}C1", "500000")
            await send(f.invoice_issued(ref, sup, core), f.invoice_action("confirmed", ref, sup, core))
            await eventually(lambda: limit_is("400000.00"), timeout=60)    # 0.8 x 500k
            f.advance(hours=1)
            revoke = f.consent(sup, granted=False)
            await send(revoke)
            await eventually(lambda: limit_is("0.00"), timeout=60)
            alert = await eventually(lambda: pool.fetchrow(
                "SELECT * FROM alerts WHERE borrower_id = $1 AND code = 'CONSENT_REVOKED'", sup), timeout=30)

            async def read(path: str, bearer: str) -> tuple[int, dict]:
                async with http.get(f"{api}/v1/borrowers/{sup}/{path}",
                                    headers={"Authorization": f"Bearer {bearer}"}) as r:
                    return r.status, await r.json()

            history = await read("history", funder_key)
            alerts = await read("alerts", funder_key)
            hidden = [(await read(path, other_key))[0] for path in ("limit", "history", "alerts")]
    finally:
        stop.set()
        await ledger_task
        await gw_runner.cleanup()
        await api_runner.cleanup()
        rows = await decisions()
        current = await pool.fetchrow("SELECT version, status FROM current_limits WHERE borrower_id = $1", sup)
        await pool.close()

    before, after = rows[-2], rows[-1]
    # Recomputed on the revocation itself, from the same facility: the data is kept, none counts.
    assert (before["status"], f"{before['limit_amount']:.2f}") == ("active", "400000.00")
    assert after["version"] == before["version"] + 1
    assert (after["status"], f"{after['limit_amount']:.2f}", f"{after['available']:.2f}") == ("frozen", "0.00", "0.00")
    assert orjson.loads(after["trigger_event_ids"]) == [revoke.event_id]
    assert "CONSENT_REVOKED" in {r["code"] for r in orjson.loads(after["reasons"])}
    components = orjson.loads(after["components"])
    assert [c["kind"] for c in components] == ["receivable"]
    assert all(c["frozen"] and c["contribution"]["amount"] == "0.00" for c in components)
    assert (current["version"], current["status"]) == (after["version"], "frozen")
    # The audit record: an alert tied to the withdrawal event, kept in PostgreSQL.
    payload = orjson.loads(alert["payload"])["payload"]
    assert (alert["severity"], payload["trigger_event_ids"]) == ("info", [revoke.event_id])
    assert "withdrew consent" in payload["text"]

    # The funder reads the trail; a lender that does not fund the borrower sees nothing.
    assert history[0] == 200 and history[1]["items"][0]["payload"]["version"] == after["version"]
    assert history[1]["items"][0]["payload"]["status"] == "frozen"
    assert history[1]["items"][1]["payload"]["limit"]["amount"] == "400000.00"
    assert alerts[0] == 200 and "CONSENT_REVOKED" in {a["payload"]["code"] for a in alerts[1]["items"]}
    assert hidden == [404, 404, 404]

