"""Each source adapter through the real broker: input file / local server / TCP client -> topics."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import orjson
import pytest

from connectors.kafka_io import TopicReader
from connectors.sources import gbt32960 as g
from connectors.sources.common import Outcome
from connectors.sources.emit import deliver
from connectors.sources.gbt32960_server import GbtGateway
from creditstream.cli import main
from tests.sources.aemp_pages import machine, serve

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def of_tenant(records: list, topic: str, tenant: str) -> list[dict]:
    out = []
    for r in records:
        v = orjson.loads(r.value)
        if r.topic == topic and v["tenant"] == tenant:
            out.append(v)
    return out


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_epcis_import_produces_shipments_keyed_by_po(bootstrap: str, uid: str) -> None:
    tenant = f"oem-{uid}"
    async with TopicReader(bootstrap, "cs.shipments") as reader:
        rc = await cli("epcis", "import", str(EXAMPLES / "epcis-shipments.jsonld"), "--tenant", tenant,
                       "--bootstrap", bootstrap)
        assert rc == 0
        recs = await reader.read(lambda rs: len(of_tenant(rs, "cs.shipments", tenant)) >= 2)
    got = of_tenant(recs, "cs.shipments", tenant)
    assert [(e["payload"]["biz_step"], e["payload"]["disposition"]) for e in got] == [
        ("shipping", "in_transit"), ("receiving", "in_progress")]
    assert {r.key for r in recs if orjson.loads(r.value)["tenant"] == tenant} == {b"PO-2024-0117"}


async def test_invoice_imports_produce_events_and_dead_letter_refusals(bootstrap: str, uid: str, tmp_path: Path) -> None:
    tenant = f"oem-{uid}"
    bomb = tmp_path / "bomb.xml"
    bomb.write_bytes(b'<!DOCTYPE i [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Invoice>&b;</Invoice>')
    async with TopicReader(bootstrap, "cs.invoices", "cs.deadletter") as reader:
        assert await cli("invoices", "import", str(EXAMPLES / "vat-invoices.json"), "--format", "vat",
                         "--tenant", tenant, "--bootstrap", bootstrap) == 0
        assert await cli("invoices", "import", str(EXAMPLES / "ubl-invoice.xml"), str(bomb), "--format", "ubl",
                         "--tenant", tenant, "--bootstrap", bootstrap) == 1
        recs = await reader.read(lambda rs: len(of_tenant(rs, "cs.invoices", tenant)) >= 3
                                 and of_tenant(rs, "cs.deadletter", tenant))
    invoices = of_tenant(recs, "cs.invoices", tenant)
    assert sorted(e["payload"]["invoice"]["invoice_number"] for e in invoices) == [
        "24312000000123456789", "4300231130-08812345", "INV-2024-00871"]
    (dl,) = of_tenant(recs, "cs.deadletter", tenant)
    assert dl["payload"]["reason"] == "xml_forbidden" and dl["payload"]["stage"] == "invoices"
    assert base64.b64decode(dl["payload"]["value_b64"]) == bomb.read_bytes()
    assert dl["payload"]["topic"] == f"file:{bomb}"


async def test_aemp_poll_command_produces_telemetry_once_per_reading(bootstrap: str, uid: str, tmp_path: Path) -> None:
    tenant = f"oem-{uid}"
    pins = [f"PIN{uid}{n}" for n in range(3)]
    async with serve() as provider, TopicReader(bootstrap, "cs.telemetry", "cs.deadletter") as reader:
        provider.set_snapshot(uid, [machine(p, 100.0 + n, "2024-03-01T09:00:00Z") for n, p in enumerate(pins)],
                              per_page=2, fmt="xml")
        state = tmp_path / "state.json"
        args = ["aemp", "poll", provider.url(uid), "--tenant", tenant, "--once", "--state", str(state),
                "--bootstrap", bootstrap]
        assert await cli(*args) == 0
        assert await cli(*args) == 0  # same snapshot again: no new events (state file)
        provider.set_snapshot(uid, [machine(pins[0], 50.0, "2024-03-01T10:00:00Z"),  # reset
                                    machine(pins[1], 101.4, "2024-03-01T10:00:00Z")], per_page=2, fmt="json")
        assert await cli(*args) == 1  # the reset was refused
        recs = await reader.read(lambda rs: len(of_tenant(rs, "cs.telemetry", tenant)) >= 4
                                 and of_tenant(rs, "cs.deadletter", tenant), timeout=10)
        recs += await reader.read(lambda rs: False, timeout=1.0)  # anything extra would show here
    tele = of_tenant(recs, "cs.telemetry", tenant)
    assert sorted((e["payload"]["machine_id"], e["payload"]["cumulative_operating_hours"]) for e in tele) == sorted(
        [(p, 100.0 + n) for n, p in enumerate(pins)] + [(pins[1], 101.4)])
    assert all(r.key == orjson.loads(r.value)["payload"]["machine_id"].encode() for r in recs if r.topic == "cs.telemetry"
               and orjson.loads(r.value)["tenant"] == tenant)
    (dl,) = of_tenant(recs, "cs.deadletter", tenant)
    assert dl["payload"]["reason"] == "counter_reset" and pins[0] in dl["payload"]["topic"]


async def test_gbt32960_gateway_answers_and_produces(bootstrap: str, producer, uid: str) -> None:
    tenant = f"fleet-{uid}"
    vin = ("LGH" + uid.upper() + "0000")[:17]
    from datetime import UTC, datetime, timedelta

    async def sink(outcome: Outcome) -> None:
        await deliver(producer, outcome, tenant=tenant, stage="gbt32960")

    gateway = GbtGateway(sink, tenant=tenant, vin_map={vin: f"truck-{uid}"}, idle_timeout=5)
    await gateway.start("127.0.0.1", 0)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    realtime = g.encode_frame(2, vin, g.realtime_data(t0, g.vehicle_block(soc=81, voltage_v=610.2, current_a=-50),
                                                      g.extremes_block(3.4, 3.35, 35, 27), g.alarm_block()))
    reissued = g.encode_frame(3, vin, g.realtime_data(t0 - timedelta(hours=2), g.vehicle_block(
        soc=90, voltage_v=620.0, current_a=10)))
    corrupt = bytearray(realtime)
    corrupt[-1] ^= 0xFF
    try:
        async with TopicReader(bootstrap, "cs.telemetry", "cs.deadletter") as reader:
            r, w = await asyncio.open_connection("127.0.0.1", gateway.port)
            stream = g.encode_frame(1, vin, g.login_data(t0)) + realtime + bytes(corrupt) + reissued
            for i in range(0, len(stream), 13):  # split reads across frame boundaries
                w.write(stream[i:i + 13])
                await w.drain()
            buf, answers = g.FrameBuffer(), []
            while len(answers) < 4:
                answers += [g.decode_frame(d) for k, d in buf.feed(await asyncio.wait_for(r.read(4096), 10)) if k == "frame"]
            w.close()
            await w.wait_closed()
            recs = await reader.read(lambda rs: len(of_tenant(rs, "cs.telemetry", tenant)) >= 2
                                     and of_tenant(rs, "cs.deadletter", tenant))
    finally:
        await gateway.stop()
    assert [(a.command, a.flag) for a in answers] == [(1, 1), (2, 1), (2, 2), (3, 1)]
    tele = of_tenant(recs, "cs.telemetry", tenant)
    assert [(e["payload"]["machine_id"], e["payload"]["soc_pct"], e["payload"]["reissued"]) for e in tele] == [
        (f"truck-{uid}", 81, False), (f"truck-{uid}", 90, True)]
    (dl,) = of_tenant(recs, "cs.deadletter", tenant)
    assert dl["payload"]["reason"] == "bad_checksum" and base64.b64decode(dl["payload"]["value_b64"]) == bytes(corrupt)
