"""Bugs the bad-input campaign found, one test each (they failed before the fix)."""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import orjson
import pytest

from connectors.sources import aemp, epcis, invoices, safexml
from connectors.sources.common import SourceError
from schemas import codec
from schemas.examples import example_events
from streams.domain.signals import LATEST, alert, utc_time
from streams.processors import MachineProcessor, dead_letter

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
TELEMETRY = orjson.loads(codec.encode(next(e for e in example_events() if e.type == "telemetry.equipment")))


def _with_times(occurred: str, recorded: str) -> bytes:
    event = copy.deepcopy(TELEMETRY)
    event["occurred_at"], event["recorded_at"] = occurred, recorded
    return orjson.dumps(event)


def test_recorded_at_in_year_9999_decodes_instead_of_overflowing() -> None:
    # The clock-skew rule added one day to recorded_at: OverflowError escaped the codec
    # (a 500 from the gateway, an internal error in the engine).
    event = codec.decode(_with_times("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"))
    assert event.occurred_at.year == 9999
    with pytest.raises(codec.DecodeError, match="clock skew"):
        codec.decode(_with_times("2026-03-04T00:00:01Z", "2026-03-03T00:00:00Z"))


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
def test_times_outside_the_utc_range_are_refused_clearly(when: str) -> None:
    with pytest.raises(codec.DecodeError) as exc:
        codec.decode(_with_times(when, when))
    assert exc.value.reason == "invalid_event"
    assert {"field": "occurred_at", "rule": "timestamp is outside years 1-9999 once converted to UTC",
            "kind": "value_error"} in exc.value.errors


def test_dead_letters_of_undecodable_records_are_valid_records() -> None:
    # Their time was 1970-01-01, which the envelope contract refuses (before 2000).
    out = MachineProcessor().process({}, "cs.telemetry", b"k", b"\xff not json", 0, 7)
    (letter,) = out
    decoded = codec.decode(orjson.dumps(letter.value))
    assert decoded.type == "deadletter.record" and decoded.occurred_at.year == 2000
    assert base64.b64decode(decoded.payload.value_b64) == b"\xff not json"


def test_last_microsecond_of_9999_does_not_break_dead_letters_or_alerts() -> None:
    # 9999-12-31T23:59:59.999999Z as an epoch float rounds up into year 10000.
    at = codec.decode(_with_times("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z")).occurred_at.timestamp()
    assert utc_time(at) == LATEST
    letter = dead_letter("cs.telemetry", 0, 1, None, b"{}", "machines", "unknown_pledge", "x", at)
    assert codec.decode(orjson.dumps(letter.value)).occurred_at == LATEST
    assert codec.decode(orjson.dumps(alert("X", "info", "text", at, ["e1"], "b1").value)).occurred_at == LATEST


def test_unknown_xml_encoding_is_malformed_xml_not_lookup_error() -> None:
    with pytest.raises(SourceError) as exc:
        safexml.parse(b'<?xml version="1.0" encoding="x-unknown"?><Invoice/>')
    assert exc.value.reason == "malformed_xml"
    (refusal,) = invoices.parse_ubl(b'<?xml version="1.0" encoding="x-unknown"?><Invoice/>', tenant="t").rejected
    assert refusal.reason == "malformed_xml"


def test_epcis_time_that_leaves_the_calendar_in_its_offset_is_bad_datetime() -> None:
    event = {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "shipping",
             "eventTime": "9999-12-31T23:00:00Z", "eventTimeZoneOffset": "+08:00"}
    with pytest.raises(SourceError) as exc:
        epcis.event_time(event)
    assert exc.value.reason == "bad_datetime"


DEEP = b"[" * 300 + b"]" * 300  # written by hand: orjson itself writes 254 levels at most


def test_items_nested_deeper_than_orjson_writes_are_refused_with_their_own_bytes() -> None:
    # orjson reads 1024 levels but writes 254: re-serialising the item raised TypeError.
    # Since issue 11.4 a refused item carries its own bytes (never the whole document),
    # with parts nested deeper than 64 levels cut, so they are always writable.
    body = b'{"invoices": [{"invoice_number": ' + DEEP + b"}]}"
    (refusal,) = invoices.parse_vat(body, tenant="t").rejected
    assert refusal.raw.startswith(b'{"invoice_number":') and len(refusal.raw) < len(body)
    orjson.loads(refusal.raw)
    ship = orjson.loads((EXAMPLES / "epcis-shipments.jsonld").read_bytes())["epcisBody"]["eventList"][0]
    del ship["eventID"]  # so the event is identified by its content, which is too deep to write
    doc = b'{"type": "EPCISDocument", "epcisBody": {"eventList": [' + orjson.dumps(ship)[:-1] + b', "x": ' + DEEP + b"}]}}"
    out = epcis.parse_document(doc, tenant="t")
    assert [r.reason for r in out.rejected] == ["too_deep"]
    assert orjson.loads(out.rejected[0].raw)["type"] == "ObjectEvent" and len(out.rejected[0].raw) < len(doc)
    page = b'{"Equipment": [{"EquipmentHeader": {"PIN": "P1"}, "x": ' + DEEP + b"}]}"
    (item,) = aemp.parse_json(page).items
    assert not isinstance(item, aemp.RejectedItem) and item.raw.startswith(b'{"EquipmentHeader":')
    orjson.loads(item.raw)


def test_a_deeply_nested_event_type_is_refused_without_an_unraisable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # pydantic-core reprs the discriminator; a 1000-deep list made that fail as an
    # "Exception ignored" on stderr for every such record.
    import sys

    ignored: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    event = dict(TELEMETRY, type="@@")
    with pytest.raises(codec.DecodeError) as exc:
        codec.decode(orjson.dumps(event).replace(b'"@@"', b"[" * 1000 + b"]" * 1000))
    assert exc.value.errors[0]["field"] == "type" and not ignored


def test_amounts_from_10_to_the_16_are_refused_by_the_contract() -> None:
    # With cents such an amount has 19+ digits: no limit update could carry it.
    event = orjson.loads(codec.encode(next(e for e in example_events() if e.type == "ledger.drawdown")))
    event["payload"]["amount"]["amount"] = "999999999999999999"
    with pytest.raises(codec.DecodeError) as exc:
        codec.decode(orjson.dumps(event))
    assert exc.value.errors[0]["field"] == "payload.amount.amount"
    event["payload"]["amount"]["amount"] = "9999999999999999.99"
    assert codec.decode(orjson.dumps(event))


def test_drawdowns_beyond_what_an_amount_carries_are_dead_lettered_and_the_facility_goes_on() -> None:
    # Two drawdowns just under 10^16 made an outstanding of 20 digits: every later decision
    # for the borrower failed validation (internal_error), forever.
    from datetime import UTC, datetime

    from schemas.factory import EventFactory
    from streams.replay import Replay

    f = EventFactory("big", datetime(2026, 3, 2, tzinfo=UTC), tenant="bank")
    r = Replay()
    outs = []
    for e in [f.program("prg-big", cap="9000000000000000"), f.borrower("b-big", "prg-big"), f.consent("b-big"),
              f.drawdown("ln-1", "b-big", "prg-big", "9999999999999999.99"),
              f.drawdown("ln-2", "b-big", "prg-big", "9999999999999999.99"),
              f.repayment("ln-1", "b-big", "1.00")]:
        outs += list(r.feed(codec.encode(e)))
    letters = [o.value["payload"] for o in outs if o.topic == "cs.deadletter"]
    assert [d["reason"] for d in letters] == ["amount_out_of_range"]
    loans = r.stores["facilities"]["b-big"]["loans"]
    assert {k: v["out"] for k, v in loans.items()} == {"ln-1": "9999999999999998.99"}  # the repayment counted
    assert [o.value["payload"]["outstanding"] for o in outs if o.topic == "cs.limits"]  # decisions still made
