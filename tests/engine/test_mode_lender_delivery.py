"""Warehouse receipts and freight receivables reach the lender (issue 16, "lender
delivery"): a real worker decides the two scenarios, the ledger stores its updates and
alerts, and the lender reads them over REST with the new component kinds."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from connectors.kafka_io import produce_events
from schemas import events as ev
from tests.engine import scenarios as sc
from tests.engine.test_scenarios import last_for, run
from tests.lenders.ld_support import eventually
from tests.lenders.test_api import Env

pytestmark = pytest.mark.integration


def funded_by(events: list[ev.Envelope], lender: str) -> list[ev.Envelope]:
    """The scenario with its program funded by ``lender`` alone."""
    program = events[0]
    payload = program.payload.model_copy(  # type: ignore[attr-defined]
        update={"lenders": [ev.LenderShare(lender_id=lender, share=Decimal(1))]})
    return [program.model_copy(update={"payload": payload}), *events[1:]]


async def test_receipts_and_waybills_reach_the_lender_through_the_ledger(
        bootstrap: str, pg_url: str, producer, uid: str, engine) -> None:
    async with Env(bootstrap, pg_url, uid) as env:
        ui, uf = f"{uid}i", f"{uid}f"  # each scenario registers its own program prg-<u>
        inv = funded_by(sc.warehouse_receipts(ui)[0], env.x)
        frt = funded_by(sc.freight_waybills(uf)[0], env.x)
        trader, carrier = f"trd-{ui}", f"car-{uf}"
        want = {trader: last_for(run(inv)[0], trader), carrier: last_for(run(frt)[0], carrier)}
        setup = [e for e in inv + frt if e.type.startswith("registry.") or e.type == "freight.truck_enrolled"]
        await produce_events(producer, setup)
        for b in (trader, carrier):
            await env.in_ledger(b, 2)  # registered and consent given: the worker has the registry
        await produce_events(producer, [e for e in inv + frt if e not in setup])

        async def final(borrower: str) -> dict | None:
            status, body = await env.get(f"/v1/borrowers/{borrower}/limit", env.key_x)
            p = body.get("payload") if status == 200 else None  # type: ignore[union-attr]
            w = want[borrower]
            return p if p and (p["limit"], p["status"], p["outstanding"]) == (
                w["limit"], w["status"], w["outstanding"]) else None

        got = {}
        for b in (trader, carrier):
            try:
                got[b] = await eventually(lambda b=b: final(b), timeout=120)
            except AssertionError:  # say what the lender got instead
                rows = await env.pool.fetch("SELECT version, payload FROM decision_log WHERE borrower_id = $1 "
                                            "ORDER BY version", b)
                raise AssertionError((b, want[b]["limit"], want[b]["status"], [
                    (r["version"], orjson.loads(r["payload"])["payload"]["reasons"]) for r in rows][-3:])) from None
        assert got[trader]["limit"]["amount"] == "4200000.00"
        assert [(c["kind"], c["asset_id"]) for c in got[trader]["components"]] == [("inventory", f"wh-{ui}:R1")]
        assert got[carrier]["limit"]["amount"] == "24000.00"
        assert [(c["kind"], c["asset_id"]) for c in got[carrier]["components"]] == [("freight", f"W3-{uf}")]

        async def alerts(borrower: str, code: str) -> bool:
            _, body = await env.get(f"/v1/borrowers/{borrower}/alerts", env.key_x)
            return code in [a["payload"]["code"] for a in body.get("items", [])]  # type: ignore[union-attr]

        await eventually(lambda: alerts(carrier, "WAYBILL_NOT_CORROBORATED"), timeout=60)
        await eventually(lambda: alerts(trader, "STOCK_OUT_UNDER_PLEDGE"), timeout=60)
        await eventually(lambda: alerts(f"trd2-{ui}", "DUPLICATE_FINANCING"), timeout=60)
