"""Issue 10.7 in the lender delivery: amounts in their currency's minor units everywhere.

Through Kafka -> ledger -> PostgreSQL -> HTTP: the ledger's numeric columns (JPY with no
decimals, KWD with three, exact), the REST answers, the portfolio totals the console
shows, and the webhook bodies. Before migration 0006 the columns were numeric(20, 2): a
KWD amount was rounded to 2 places and the totals of a JPY portfolio read "3000.00".
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import web

from connectors.kafka_io import produce_events
from connectors.lenders import repo
from connectors.lenders.access import RetryPolicy
from connectors.lenders.portfolio import total
from connectors.lenders.verify import HEADER, verify_signature
from schemas import outputs as out
from tests.lenders.ld_support import DEV_URLS, dispatching, eventually, limit_update, receiving
from tests.lenders.test_api import Env

pytestmark = pytest.mark.integration


def in_currency(update: out.LimitUpdated, currency: str, amount: str) -> out.LimitUpdated:
    """``update`` with every amount replaced by ``amount`` in ``currency``."""
    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"amount", "currency"}:
                return {"amount": amount, "currency": currency}
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node
    return out.LimitUpdated.model_validate(swap(update.model_dump(mode="json", exclude_none=True)))


def update(borrower: str, program: str, lender: str, currency: str, amount: str) -> out.LimitUpdated:
    return in_currency(limit_update(borrower, 1, program, [lender]), currency, amount)


AMOUNTS = {"JPY": ("1000", "2000", "3000"), "KWD": ("1.234", "2.345", "3.579"), "CNY": ("0.01", "0.02", "0.03")}


async def test_ld_ledger_rows_rest_and_portfolio_totals_keep_each_currencys_minor_units(
        bootstrap: str, pg_url: str, producer, uid: str) -> None:
    async with Env(bootstrap, pg_url, uid) as env:
        sent = {(cur, i): update(f"b{cur.lower()}{i}-{uid}", f"pa-{uid}", env.x, cur, AMOUNTS[cur][i])
                for cur in AMOUNTS for i in (0, 1)}
        await produce_events(producer, list(sent.values()))
        for ev in sent.values():
            await env.in_ledger(ev.payload.borrower_id, 1)

        for (cur, i), ev in sent.items():
            b = ev.payload.borrower_id
            for table in ("decision_log", "current_limits"):
                row = await env.pool.fetchrow(
                    f"SELECT limit_amount::text AS l, available::text AS a FROM {table} WHERE borrower_id = $1", b)
                assert (row["l"], row["a"]) == (AMOUNTS[cur][i], AMOUNTS[cur][i]), (table, cur)
            status, body = await env.get(f"/v1/borrowers/{b}/limit", env.key_x)
            assert status == 200
            assert body["payload"]["limit"] == {"amount": AMOUNTS[cur][i], "currency": cur}  # type: ignore[index]
            assert body["payload"]["lenders"][0]["limit"]["amount"] == AMOUNTS[cur][i]  # type: ignore[index]

        # What the console's portfolio page shows: one total per currency, in its minor units.
        status, body = await env.get("/v1/portfolio", env.key_x)
        assert status == 200
        assert body["totals"] == [  # type: ignore[index]
            {"currency": cur, "borrowers": 2, "limit": AMOUNTS[cur][2], "available": AMOUNTS[cur][2],
             "lender_limit": AMOUNTS[cur][2]} for cur in sorted(AMOUNTS)]
        rows = {i["borrower_id"]: i for i in body["items"]}  # type: ignore[index]
        assert rows[f"bjpy0-{uid}"]["limit"] == {"amount": "1000", "currency": "JPY"}


def test_ld_portfolio_total_renders_sums_to_the_minor_unit() -> None:
    """Pure: PostgreSQL's sum keeps the inputs' scale; the answer has the currency's."""
    row = {"currency": "JPY", "borrowers": 2, "limit": "3000.00", "available": "0", "lender_limit": None}
    assert total(row) == {"currency": "JPY", "borrowers": 2, "limit": "3000", "available": "0",
                          "lender_limit": None}
    assert total({**row, "currency": "KWD", "limit": "3.5"})["limit"] == "3.500"
    with pytest.raises(ValueError, match="finer than the minor unit"):
        total({**row, "limit": "3000.5"})


async def test_ld_webhook_bodies_carry_each_currencys_minor_units(
        bootstrap: str, pool, producer, uid: str) -> None:
    lender, bodies, secret = f"lw-{uid}", [], {}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        verify_signature(secret["s"], request.headers.get(HEADER), body)
        bodies.append(orjson.loads(body))
        return web.Response(status=204)

    async with receiving("/hook", hook) as port:
        _, secret["s"] = await repo.add_lender(pool, lender, "Bank W", f"http://127.0.0.1:{port}/hook",
                                               url_policy=DEV_URLS)
        await repo.subscribe(pool, lender, "all")
        group = f"test-webhooks-minor-{uid}"
        sent = [update(f"bw{cur.lower()}-{uid}", f"pw-{uid}", lender, cur, AMOUNTS[cur][0]) for cur in AMOUNTS]
        async with dispatching(bootstrap, pool, group, RetryPolicy(max_attempts=3, base_s=0.05, cap_s=0.2)):
            await produce_events(producer, sent)
            await eventually(lambda: _true(len(bodies) >= len(sent)), timeout=30)
        got = {b["payload"]["limit"]["currency"]: b["payload"] for b in bodies}
        for cur in AMOUNTS:
            p = got[cur]
            assert [p[k]["amount"] for k in ("limit", "available", "previous_limit", "outstanding")] == [
                AMOUNTS[cur][0]] * 4, cur


async def _true(value: bool) -> bool:
    return value
