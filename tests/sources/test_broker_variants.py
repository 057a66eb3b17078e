"""Issue 12's variants through each command into the real broker (samples: tests/sources/samples/)."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from connectors.kafka_io import TopicReader, produce_events
from connectors.sources import gbt32960 as g
from schemas.events import MachinePledged
from tests.sources.aemp_pages import serve
from tests.sources.test_broker import cli, of_tenant

pytestmark = pytest.mark.integration
SAMPLES = Path(__file__).parent / "samples"
ROOT = Path(__file__).resolve().parents[2]


def hex_sample(name: str) -> bytes:
    return bytes.fromhex((SAMPLES / "gbt32960" / name).read_text().strip())


async def start_gateway(*argv: str, env: dict[str, str]) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "creditstream.cli", "gbt32960", "serve", "--port", "0", *argv,
        stderr=asyncio.subprocess.PIPE, cwd=ROOT, env={**os.environ, **env})
    assert proc.stderr is not None
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        assert line, "gateway exited before listening"
        if m := re.search(r"listening on [\d.]+:(\d+)", line):
            return proc, int(m.group(1))


async def test_gbt32960_serve_takes_a_logged_in_platforms_pledged_vins_only(
        bootstrap: str, producer, uid: str, tmp_path: Path) -> None:
    tenant = f"fleet-{uid}"
    pledged, stranger = "HAUV4BGN6S5002219", "LGHXCAE28M7654321"
    now = datetime.now(UTC)
    await produce_events(producer, [MachinePledged.model_validate({
        "event_id": f"pledge-{uid}", "type": "registry.pledge", "tenant": tenant, "source": "test",
        "occurred_at": now, "recorded_at": now, "payload": {
            "machine_id": f"truck-{uid}", "borrower_id": f"b-{uid}", "program_id": f"p-{uid}",
            "kind": "electric_truck", "price": {"amount": "300000", "currency": "CNY"},
            "acquired_on": date(2024, 1, 1)}})])
    vins = tmp_path / "vins.json"
    vins.write_bytes(orjson.dumps({pledged: f"truck-{uid}"}))
    proc, port = await start_gateway("--tenant", tenant, "--vin-map", str(vins), "--bootstrap", bootstrap,
                                     "--platform-user", "fleetplat", "--platform-password-env", "GBT_TEST_PW",
                                     env={"GBT_TEST_PW": "s3cret-pass"})
    vendor = hex_sample("realtime-2016-vendor-0x83.hex")  # a pledged VIN, with a vendor block
    t = g.decode_frame(vendor).time
    assert t is not None
    stranger_frame = g.encode_frame(2, stranger, g.realtime_data(t, g.vehicle_block(soc=50, voltage_v=500, current_a=0)))
    frames = [vendor,  # before the platform login: refused
              g.encode_frame(g.Command.PLATFORM_LOGIN, "PLATFORM000000001", g.platform_login_data(t, "fleetplat", "s3cret-pass")),
              vendor, stranger_frame, hex_sample("realtime-2025.hex")]
    try:
        async with TopicReader(bootstrap, "cs.telemetry", "cs.deadletter") as reader:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            buf, answers = g.FrameBuffer(), []
            for n, frame in enumerate(frames, 1):
                w.write(frame)
                await w.drain()
                while len(answers) < n:  # every frame here is answered
                    got = buf.feed(await asyncio.wait_for(r.read(4096), 10))
                    answers += [d for k, d in got if k == "frame"]
            w.close()
            recs = await reader.read(lambda rs: of_tenant(rs, "cs.telemetry", tenant)
                                     and len(of_tenant(rs, "cs.deadletter", tenant)) >= 3)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert [(a[:2], a[2], a[3]) for a in answers] == [
        (b"##", 2, 2), (b"##", 5, 1), (b"##", 2, 1), (b"##", 2, 2), (b"$$", 2, 2)]
    (tele,) = of_tenant(recs, "cs.telemetry", tenant)
    assert (tele["payload"]["machine_id"], tele["payload"]["soc_pct"]) == (f"truck-{uid}", 85)
    letters = of_tenant(recs, "cs.deadletter", tenant)
    assert [d["payload"]["reason"] for d in letters] == ["not_logged_in", "vin_not_pledged", "unsupported_edition"]
    assert base64.b64decode(letters[1]["payload"]["value_b64"]) == stranger_frame


async def test_epcis_import_reads_gs1_samples_with_a_location_table(bootstrap: str, uid: str, tmp_path: Path) -> None:
    tenant = f"oem-{uid}"
    locations = tmp_path / "locations.json"
    locations.write_bytes(orjson.dumps({"urn:epc:id:sgln:0614141.07346.0": f"sup-{uid}"}))
    parties = tmp_path / "parties.json"
    parties.write_bytes(orjson.dumps({"urn:epc:id:pgln:4012345.00225": f"sup-{uid}"}))
    files = [SAMPLES / "epcis" / n for n in ("single-object-event.json", "aggregation-receiving-po.jsonld",
                                             "query-document.jsonld")]
    async with TopicReader(bootstrap, "cs.shipments", "cs.deadletter") as reader:
        rc = await cli("epcis", "import", *map(str, files), "--tenant", tenant, "--location-map", str(locations),
                       "--party-map", str(parties), "--bootstrap", bootstrap)
        recs = await reader.read(lambda rs: len(of_tenant(rs, "cs.shipments", tenant)) >= 3
                                 and of_tenant(rs, "cs.deadletter", tenant))
    assert rc == 1  # the query's receiving event is at an unmapped dock: refused
    got = of_tenant(recs, "cs.shipments", tenant)
    assert sorted((e["payload"]["biz_step"], e["payload"]["po_id"]) for e in got) == [
        ("receiving", "0614141.00001.1618034"), ("shipping", "12345678"), ("shipping", "12345678")]
    assert {e["payload"]["supplier_id"] for e in got} == {f"sup-{uid}"}
    (dl,) = of_tenant(recs, "cs.deadletter", tenant)
    assert dl["payload"]["reason"] == "no_supplier" and dl["payload"]["topic"].endswith("query-document.jsonld#1")
    assert orjson.loads(base64.b64decode(dl["payload"]["value_b64"]))["bizStep"] == "receiving"


async def test_aemp_poll_reads_array_pages_and_pinless_machines(bootstrap: str, uid: str, tmp_path: Path) -> None:
    tenant = f"oem-{uid}"
    aemp_dir = SAMPLES / "aemp"
    async with serve() as provider, TopicReader(bootstrap, "cs.telemetry", "cs.deadletter") as reader:
        # The array page links to "2": the provider's empty last page, then the XML page is polled alone.
        provider.pages[f"/{uid}/Fleet/1"] = ((aemp_dir / "fleet-page-in-array.json").read_bytes(), "application/json")
        provider.pages[f"/{uid}/Fleet/2"] = ((aemp_dir / "fleet-last-page-empty-array.json").read_bytes(),
                                             "application/json")
        provider.pages[f"/{uid}/pinless/Fleet/1"] = ((aemp_dir / "fleet-pinless.xml").read_bytes(), "application/xml")
        assert await cli("aemp", "poll", provider.url(uid), "--tenant", tenant, "--once", "--bootstrap", bootstrap) == 0
        assert provider.hits[f"/{uid}/Fleet/2"] == 1
        assert await cli("aemp", "poll", provider.url(f"{uid}/pinless"), "--tenant", tenant, "--once",
                         "--bootstrap", bootstrap) == 1
        recs = await reader.read(lambda rs: len(of_tenant(rs, "cs.telemetry", tenant)) >= 4
                                 and len(of_tenant(rs, "cs.deadletter", tenant)) >= 2)
    tele = of_tenant(recs, "cs.telemetry", tenant)
    assert sorted(e["payload"]["machine_id"] for e in tele) == [
        "243925", "243925", "353000512", "Seither-Lustadt-Kramer5085-SN:353010025"]
    letters = of_tenant(recs, "cs.deadletter", tenant)
    assert [d["payload"]["reason"] for d in letters] == ["no_machine_id", "no_machine_id"]
    assert b"<ns0:SerialNumber>0</ns0:SerialNumber>" in base64.b64decode(letters[0]["payload"]["value_b64"])


async def test_invoice_imports_peppol_parties_credit_notes_and_pinyin_exports(
        bootstrap: str, uid: str, tmp_path: Path) -> None:
    tenant = f"oem-{uid}"
    ubl_dir, index = SAMPLES / "ubl", tmp_path / "invoices-index.json"
    # A partial credit of Snippet1, imported in a later run than the invoice: found through the index.
    partial = tmp_path / "credit-400.xml"
    partial.write_bytes((ubl_dir / "base-creditnote-correction.xml").read_bytes().replace(
        b"1656.25</cbc:PayableAmount>", b"400.00</cbc:PayableAmount>"))
    common = ["--tenant", tenant, "--bootstrap", bootstrap]
    async with TopicReader(bootstrap, "cs.invoices", "cs.deadletter") as reader:
        assert await cli("invoices", "import", str(ubl_dir / "base-example.xml"), str(ubl_dir / "vat-category-O.xml"),
                         str(ubl_dir / "GR-base-example-correct.xml"), "--format", "ubl",
                         "--invoice-index", str(index), *common) == 1
        assert await cli("invoices", "import", str(partial), "--format", "ubl", "--invoice-index", str(index),
                         *common) == 0
        assert await cli("invoices", "import", str(SAMPLES / "vat" / "pinyin-export.json"), "--format", "vat",
                         *common) == 1
        recs = await reader.read(lambda rs: len(of_tenant(rs, "cs.invoices", tenant)) >= 5
                                 and len(of_tenant(rs, "cs.deadletter", tenant)) >= 2)
    got = of_tenant(recs, "cs.invoices", tenant)
    assert sorted((e["type"], e["payload"]["invoice"]["invoice_number"]) for e in got) == [
        ("invoice.issued", "24312000000123456790"), ("invoice.issued", "4300231130-08812346"),
        ("invoice.issued", "Snippet1"), ("invoice.issued", "Vat-O"), ("invoice.partially_paid", "Snippet1")]
    keys = {orjson.loads(r.value)["type"]: r.key for r in recs if r.topic == "cs.invoices"
            and orjson.loads(r.value)["tenant"] == tenant and b"Snippet1" in r.value}
    assert keys["invoice.issued"] == keys["invoice.partially_paid"]  # one partition: the engine sees both
    assert sorted(d["payload"]["reason"] for d in of_tenant(recs, "cs.deadletter", tenant)) == [
        "bad_invoice_number", "total_mismatch"]


async def test_epcis_refusals_of_a_nested_file_do_not_each_carry_the_file(bootstrap: str, uid: str, tmp_path: Path) -> None:
    # Issue 11.4: every refused item of a deeply nested file used to carry the whole file.
    tenant = f"oem-{uid}"
    event = (b'{"type": "ObjectEvent", "bizStep": "shipping", "action": "OBSERVE", "bizTransactionList": [], '
             b'"cs:deep": ' + b"[" * 300 + b'"x"' + b"]" * 300 + b"}")
    doc = tmp_path / "nested.jsonld"
    doc.write_bytes(b'{"type": "EPCISDocument", "epcisBody": {"eventList": [' + b", ".join([event] * 50) + b"]}}")
    async with TopicReader(bootstrap, "cs.deadletter") as reader:
        assert await cli("epcis", "import", str(doc), "--tenant", tenant, "--bootstrap", bootstrap) == 1
        recs = await reader.read(lambda rs: len(of_tenant(rs, "cs.deadletter", tenant)) >= 50)
    letters = of_tenant(recs, "cs.deadletter", tenant)
    carried = [len(base64.b64decode(d["payload"]["value_b64"])) for d in letters]
    assert len(letters) == 50 and {d["payload"]["reason"] for d in letters} == {"no_po_reference"}
    assert sum(carried) <= doc.stat().st_size and max(carried) < 2048
