"""One dead-letter builder for the engine, the sources and the ledger (pure)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from connectors.ledger.batch import RawRecord
from connectors.ledger.batch import dead_letter as ledger_dead_letter
from connectors.sources.common import RejectedItem
from connectors.sources.common import dead_letter as source_dead_letter
from schemas import codec
from schemas.outputs import DeadLetter
from schemas.topics import DEADLETTER_TOPIC, LIMITS_TOPIC, TELEMETRY_TOPIC
from streams.processors import MachineProcessor

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_the_engine_and_the_ledger_name_a_record_by_its_kafka_position() -> None:
    out, = MachineProcessor().process({}, TELEMETRY_TOPIC, b"m-1", b"{not json", partition=3, offset=147)
    assert out.topic == DEADLETTER_TOPIC
    letter = codec.decode_obj(out.value)
    assert isinstance(letter, DeadLetter)
    assert letter.event_id == f"dl-machines-{TELEMETRY_TOPIC}-3-147"
    assert (letter.payload.reason, base64.b64decode(letter.payload.value_b64)) == ("malformed_json", b"{not json")

    rec = RawRecord(LIMITS_TOPIC, 1, 9, b"b-1", b"[]")
    ledger = ledger_dead_letter(rec, "ledger_rejected", "boom", NOW)
    assert ledger.event_id == f"dl-ledger-{LIMITS_TOPIC}-1-9"
    assert (ledger.payload.partition, ledger.payload.offset, ledger.payload.key_b64) == (1, 9, "Yi0x")


def test_an_item_with_no_kafka_position_gets_a_digest_of_origin_reason_and_bytes() -> None:
    item = RejectedItem("invoices.xml#3", "invalid_item", "bad total", b"<Invoice/>")
    first, again = (source_dead_letter(item, tenant="t1", stage="invoices", now=NOW) for _ in range(2))
    assert first.event_id == again.event_id and first.event_id.startswith("dl-invoices-")
    other = source_dead_letter(RejectedItem("invoices.xml#4", "invalid_item", "bad total", b"<Invoice/>"),
                               tenant="t1", stage="invoices", now=NOW)
    assert other.event_id != first.event_id
    # Free text where a reason code belongs is not echoed as a code.
    odd = source_dead_letter(RejectedItem("x", "not a code!", "e", b"x"), tenant="t1", stage="invoices", now=NOW)
    assert odd.payload.reason == "invalid"
