"""ISO 15143-3 decoder, counter tracker, rate gate and poller against a local provider."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sources import aemp
from connectors.sources.aemp_client import AempPoller, RateGate
from connectors.sources.common import RejectedItem, SourceError
from tests.sources.aemp_pages import json_page, machine, serve, xml_page

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
T0 = "2024-03-01T08:00:00Z"
T1 = "2024-03-01T09:00:00Z"
T2 = "2024-03-01T10:00:00Z"


def reports(page: aemp.Page) -> list[aemp.MachineReport]:
    return [i for i in page.items if isinstance(i, aemp.MachineReport)]


def test_json_example_page_decodes() -> None:
    page = aemp.parse_json((EXAMPLES / "aemp-fleet.json").read_bytes(), "https://t.example/iso15143/Fleet/1")
    assert page.next_url == "https://telematics.example.com/iso15143/Fleet/2"
    a, b = reports(page)
    assert (a.machine_id, a.oem, a.model, a.hours.value, a.idle_hours.value) == (
        "SNY215CAKM0020391", "SANY", "SY215C", 4312.6, 655.2)
    assert a.hours.at == datetime(2024, 3, 1, 9, 58, 12, tzinfo=UTC)
    assert a.location.value == (28.228209, 112.938814) and a.engine_running.value is True
    assert a.faults == ({"spn": 110, "fmi": 0, "severity": "critical"},)
    assert b.fuel_litres.value == round(30211 * 3.785411784, 3)  # gallons converted


def test_xml_example_page_decodes_and_resolves_relative_next() -> None:
    page = aemp.parse_xml((EXAMPLES / "aemp-fleet.xml").read_bytes(), "https://t.example/iso15143/Fleet/1")
    assert page.next_url == "https://t.example/iso15143/Fleet/2"
    assert page.snapshot_time == datetime(2024, 3, 1, 10, tzinfo=UTC)
    (m,) = reports(page)
    assert (m.machine_id, m.hours.value, m.fuel_litres.value, m.fuel_remaining_pct.value) == (
        "XUG0215DAKL000107", 2210.4, 29550.0, 41.0)
    assert [f["severity"] for f in m.faults] == ["warning", "info"]


def test_same_machines_decode_alike_in_json_and_xml() -> None:
    ms = [machine("PIN000001", 10.5, T1, idle=2.0, fuel=100.0), machine("PIN000002", 20.0, T1)]
    from_json = reports(aemp.parse_page(json_page(ms, None), "application/json"))
    from_xml = reports(aemp.parse_page(xml_page(ms, None), "application/xml"))
    assert len(from_json) == 2
    assert [{**r.__dict__, "raw": b""} for r in from_json] == [{**r.__dict__, "raw": b""} for r in from_xml]


def test_machine_map_and_bad_machines_are_rejected_per_item() -> None:
    bad_hours = machine("PIN000003", 1.0, T1)
    bad_hours["CumulativeOperatingHours"]["Hour"] = "lots"
    no_id = machine("PIN000004", 1.0, T1)
    no_id["EquipmentHeader"] = {"OEMName": "X"}
    bad_time = machine("PIN000005", 1.0, "yesterday")
    page = aemp.parse_json(json_page([machine("PIN000001", 5, T1), bad_hours, no_id, bad_time], None),
                           machine_map={"PIN000001": "exc-1"})
    ok = reports(page)
    assert [r.machine_id for r in ok] == ["exc-1"]
    assert [(i.reason) for i in page.items if isinstance(i, RejectedItem)] == [
        "bad_value", "no_machine_id", "bad_datetime"]


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "not_a_fleet"),
    (b'{"Equipment": 3}', "not_a_fleet"),
    (b"<Invoice/>", "not_a_fleet"),
    (b"<Fleet><Equipment>", "malformed_xml"),
    (b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><Fleet>&b;</Fleet>',
     "xml_forbidden"),
    (b'<!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]><Fleet>&x;</Fleet>', "xml_forbidden"),
])
def test_bad_pages_raise_source_errors(body: bytes, reason: str) -> None:
    with pytest.raises(SourceError) as exc:
        aemp.parse_page(body)
    assert exc.value.reason == reason


def _report(hours: float, at: str, **kw) -> aemp.MachineReport:
    return reports(aemp.parse_json(json_page([machine("PIN000009", hours, at, **kw)], None)))[0]


def test_tracker_emits_once_per_datetime_and_refuses_resets() -> None:
    t = aemp.CounterTracker(tenant="oem-a")
    first = t.accept(_report(100.0, T0, idle=10.0, fuel=500.0))
    assert [e.payload.cumulative_operating_hours for e in first.events] == [100.0]
    e = first.events[0]
    assert e.occurred_at == datetime(2024, 3, 1, 8, tzinfo=UTC) and e.event_id == "aemp-PIN000009-1709280000"
    assert (e.payload.cumulative_idle_hours, e.payload.fuel_used_litres) == (10.0, 500.0)
    repeat = t.accept(_report(100.0, T0, idle=10.0, fuel=500.0))
    assert not repeat.events and not repeat.rejected and t.repeats == 1
    reset = t.accept(_report(3.0, T1))
    assert not reset.events and [r.reason for r in reset.rejected] == ["counter_reset"]
    later = t.accept(_report(101.5, T2, idle=4.0, fuel=520.0))  # idle counter was reset
    (ev,) = later.events
    assert ev.payload.cumulative_operating_hours == 101.5 and ev.payload.cumulative_idle_hours is None
    assert ev.payload.fuel_used_litres == 520.0 and any("went back" in n for n in later.notes)


def test_tracker_state_round_trips_so_a_restart_does_not_repeat() -> None:
    t = aemp.CounterTracker(tenant="oem-a")
    t.accept(_report(100.0, T0))
    again = aemp.CounterTracker(tenant="oem-a", state=dict(t.state))
    assert not again.accept(_report(100.0, T0)).events
    assert again.accept(_report(100.2, T1)).events


def test_machine_without_hours_is_skipped_with_a_note() -> None:
    m = machine("PIN000010", 1.0, T0)
    del m["CumulativeOperatingHours"]
    out = aemp.CounterTracker(tenant="t").accept_page(aemp.parse_json(json_page([m], None)))
    assert not out.events and not out.rejected and "no CumulativeOperatingHours" in out.notes[0]


class FakeClock:
    """A rate gate's clock and sleep: sleeping moves the clock on, and is recorded."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


async def test_rate_gate_waits_per_url() -> None:
    clock = FakeClock(1000.0)
    gate = RateGate(900, clock=clock, sleep=clock.sleep)
    await gate.wait("a")
    await gate.wait("b")
    assert clock.slept == []
    clock.now += 100
    await gate.wait("a")
    assert clock.slept == [800.0]
    gate.push("b", 3600)
    assert gate.delay("b") == 3600


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_poller_walks_pages_and_repolls_idempotently(fmt: str) -> None:
    ms = [machine(f"PIN{n:06d}", 100.0 + n, T1) for n in range(5)]
    async with serve() as provider, aiohttp.ClientSession() as session:
        provider.set_snapshot("p", ms, per_page=2, fmt=fmt)
        tracker = aemp.CounterTracker(tenant="oem-a")
        poller = AempPoller(session, tracker, gate=RateGate(0.0))
        first = await poller.poll(provider.url("p"))
        assert (first.pages, first.errors) == (3, [])
        assert sorted(e.payload.machine_id for e in first.outcome.events) == [m["EquipmentHeader"]["PIN"] for m in ms]
        again = await poller.poll(provider.url("p"))
        assert again.pages == 3 and not again.outcome.events and tracker.repeats == 5
        ms[0] = machine("PIN000000", 100.7, T2)
        provider.set_snapshot("p", ms, per_page=2, fmt=fmt)
        third = await poller.poll(provider.url("p"))
        assert [(e.payload.machine_id, e.payload.cumulative_operating_hours) for e in third.outcome.events] == [
            ("PIN000000", 100.7)]


async def test_poller_honours_the_interval_between_polls() -> None:
    clock = FakeClock()
    async with serve() as provider, aiohttp.ClientSession() as session:
        provider.set_snapshot("q", [machine("PIN000001", 1, T1)], per_page=100, fmt="json")
        poller = AempPoller(session, aemp.CounterTracker(tenant="t"),
                            gate=RateGate(900, clock=clock, sleep=clock.sleep))
        await poller.poll(provider.url("q"))
        clock.now += 60
        await poller.poll(provider.url("q"))
        assert clock.slept == [840.0] and provider.hits["/q/Fleet/1"] == 2


async def test_poller_reports_http_errors_and_bad_pages() -> None:
    async with serve() as provider, aiohttp.ClientSession() as session:
        provider.pages["/bad/Fleet/1"] = (b"<Fleet><Equipment>", "application/xml")
        poller = AempPoller(session, aemp.CounterTracker(tenant="t"), gate=RateGate(0.0))
        bad = await poller.poll(provider.url("bad"))
        assert [r.reason for r in bad.outcome.rejected] == ["malformed_xml"]
        missing = await poller.poll(provider.url("nothing"))
        assert missing.errors and "HTTP 404" in missing.errors[0]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=300).map(lambda s: f"<Fleet>{s}</Fleet>".encode())))
def test_fuzz_page_parsers_raise_only_source_errors(body: bytes) -> None:
    for parse in (aemp.parse_xml, aemp.parse_json):
        with contextlib.suppress(SourceError):
            parse(body)
