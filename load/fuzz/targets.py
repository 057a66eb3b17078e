"""What every decoder must do with any input: a valid event, or its own clear error.

A target pairs a decoder with the inputs of ``load.fuzz.inputs`` and a ``check`` that
runs one input and returns one :class:`Verdict` per record: accepted, or refused with the
decoder's reason code. Anything else is a failure of the campaign: another exception
type, an accepted event that breaks the contract (does not re-encode to itself, cannot be
routed), a refusal whose dead letter is not a valid record carrying the original bytes,
an ``internal_error`` dead letter (a processor bug caught by its last-resort handler),
or a byte of a TCP stream that the framer loses.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import strategies as st

from connectors.sources.common import (
    MAX_DEADLETTER_BYTES,
    Outcome,
    RejectedItem,
    SourceError,
    dead_letter,
)
from load.fuzz import inputs
from schemas import codec
from schemas.events import Envelope
from schemas.topics import DEADLETTER_TOPIC, SIGNALS_TOPIC, route


class ContractBroken(AssertionError):
    """A decoder answered, but not as its contract says."""


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str = ""


ACCEPTED = Verdict(True)


def refused(reason: str) -> Verdict:
    return Verdict(False, reason)


@dataclass
class Target:
    """One decoder under fuzz: its inputs and the check of one input."""

    name: str
    doc: str
    inputs: st.SearchStrategy[Any]
    check: Callable[[Any], list[Verdict]]
    # Per-campaign state (a counter tracker, an engine's stores), rebuilt by ``reset``.
    reset: Callable[[], None] = field(default=lambda: None)


# ---------------------------------------------------------------- shared invariants
def valid_event(event: Envelope) -> None:
    """An accepted event re-encodes to itself and can be routed to its topic and key."""
    again = codec.decode(codec.encode(event))
    if again != event:
        raise ContractBroken(f"{event.type} {event.event_id!r} changes when re-encoded")
    route(event)


def valid_dead_letter(item: RejectedItem, stage: str) -> None:
    """A refusal becomes a valid dead-letter record that carries the original bytes."""
    letter = dead_letter(item, tenant="fuzz", stage=stage)
    # Dead letters carry inputs of any size: the codec's input size limit is not theirs.
    decoded = codec.decode_obj(orjson.loads(codec.encode(letter)))
    carried = base64.b64decode(decoded.payload.value_b64)  # type: ignore[attr-defined]
    if carried != item.raw[:MAX_DEADLETTER_BYTES]:
        raise ContractBroken(f"dead letter of {item.origin} does not carry the original bytes")


def outcome_verdict(out: Outcome, stage: str) -> Verdict:
    for event in out.events:
        valid_event(event)
    for item in out.rejected:
        valid_dead_letter(item, stage)
    return refused(out.rejected[0].reason) if out.rejected else ACCEPTED


# ---------------------------------------------------------------- the event codec
def check_codec(data: bytes) -> list[Verdict]:
    try:
        event = codec.decode(data)
    except codec.DecodeError as exc:
        return [refused(exc.reason)]
    valid_event(event)
    return [ACCEPTED]


# ---------------------------------------------------------------- GB/T 32960
def check_gbt(raw: bytes) -> list[Verdict]:
    from connectors.sources import gbt32960 as g

    try:
        frame = g.decode_frame(raw)
    except g.GbtDecodeError as exc:
        reply = g.answer(None, exc)
        if reply is not None:
            g.decode_frame(reply)  # our own error answer must be a valid frame
        valid_dead_letter(RejectedItem("gbt32960", exc.reason, exc.message, raw), "gbt32960")
        return [refused(exc.reason)]
    reply = g.answer(frame)
    if reply is not None:
        g.decode_frame(reply)
    try:
        event = g.to_event(frame, tenant="fuzz")
    except SourceError as exc:
        valid_dead_letter(RejectedItem("gbt32960", exc.reason, exc.message, raw), "gbt32960")
        return [refused(exc.reason)]
    if event is not None:
        valid_event(event)
    return [ACCEPTED]


def check_gbt_stream(chunks: list[bytes]) -> list[Verdict]:
    """The TCP framer: whatever the reads, every byte comes out as a frame, as garbage, or
    is still pending; no read raises."""
    from connectors.sources import gbt32960 as g

    buf = g.FrameBuffer()
    out: list[tuple[str, bytes]] = []
    for chunk in chunks:
        out += buf.feed(chunk)
    if b"".join(d for _, d in out) + bytes(buf.buf) != b"".join(chunks):
        raise ContractBroken("the stream framer lost or reordered bytes")
    return [ACCEPTED if kind == "frame" else refused("garbage") for kind, _ in out] or [ACCEPTED]


# ---------------------------------------------------------------- ISO 15143-3 (AEMP)
class AempCheck:
    """Pages through one long-lived counter tracker, so repeats and counter resets occur."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        from connectors.sources.aemp import CounterTracker

        self.tracker = CounterTracker("fuzz")

    def __call__(self, body: bytes) -> list[Verdict]:
        from connectors.sources import aemp

        try:
            page = aemp.parse_page(body, base_url="https://oem.example/Fleet/1")
        except SourceError as exc:
            valid_dead_letter(RejectedItem("aemp", exc.reason, exc.message, body), "aemp")
            return [refused(exc.reason)]
        return [outcome_verdict(self.tracker.accept_page(page), "aemp")]


# ---------------------------------------------------------------- EPCIS, invoices, XML
def check_epcis(body: bytes) -> list[Verdict]:
    from connectors.sources import epcis

    try:
        out = epcis.parse_document(body, tenant="fuzz")
    except SourceError as exc:
        valid_dead_letter(RejectedItem("epcis", exc.reason, exc.message, body), "epcis")
        return [refused(exc.reason)]
    return [outcome_verdict(out, "epcis")]


def check_ubl(body: bytes) -> list[Verdict]:
    from connectors.sources import invoices

    # parse_ubl reports every problem in its outcome: even its own error must not escape.
    return [outcome_verdict(invoices.parse_ubl(body, tenant="fuzz"), "ubl")]


def check_vat(body: bytes) -> list[Verdict]:
    from connectors.sources import invoices

    return [outcome_verdict(invoices.parse_vat(body, tenant="fuzz"), "vat")]


def check_safexml(body: bytes) -> list[Verdict]:
    from connectors.sources import safexml

    try:
        safexml.parse(body)
    except SourceError as exc:
        return [refused(exc.reason)]
    return [ACCEPTED]


# ---------------------------------------------------------------- the processors
class ProcessorCheck:
    """Records through the engine's processors, in-process, as a worker would see them.

    One set of stores lives for the whole campaign (seeded with a valid example of every
    input type), so later records meet state: duplicates, reissues, counters that go
    back, orders and invoices in odd lifecycles. Stage-1 signals go to stage 2 at once,
    as in ``streams.replay``. ``Processor.process`` must return outputs, never raise; no
    output may be an ``internal_error`` dead letter; every limit update, alert and dead
    letter must be a valid contract event; a record's dead letter carries its bytes.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        from streams.processors import all_processors

        self.processors = all_processors()
        self.stores: dict[str, dict[str, Any]] = {p.name: {} for p in self.processors}
        self.offset = 0
        for seed in inputs.seed_inputs():
            self.deliver(inputs.Delivery(orjson.dumps(seed)))

    def __call__(self, items: list[inputs.Delivery]) -> list[Verdict]:
        return [self.deliver(d) for d in items]

    def deliver(self, d: inputs.Delivery) -> Verdict:
        topic, key = inputs.destination(d)
        self.offset += 1
        letters = [o for o in self._run(topic, key, d.value, self.offset) if o.topic == DEADLETTER_TOPIC]
        mine = [o.value["payload"] for o in letters if o.value["payload"]["offset"] == self.offset]
        if not mine:
            return ACCEPTED
        if base64.b64decode(mine[0]["value_b64"]) != d.value:
            raise ContractBroken("a record's dead letter does not carry its original bytes")
        return refused(mine[0]["reason"])

    def _run(self, topic: str, key: bytes | None, value: bytes, offset: int | None) -> list[Any]:
        from streams.processors import processor_for

        proc = processor_for(topic, self.processors)
        outs = proc.process(self.stores[proc.name], topic, key, value, 0, offset)
        if not isinstance(outs, list):
            raise ContractBroken(f"{proc.name}.process returned {type(outs).__name__}, not a list")
        result: list[Any] = []
        for out in outs:
            if out.topic == SIGNALS_TOPIC:
                result += self._run(SIGNALS_TOPIC, out.key.encode(), orjson.dumps(out.value), None)
                continue
            data = orjson.dumps(out.value)
            # Limit updates and alerts must pass the codec as the ledger runs it; dead letters
            # carry inputs of any size, so only their model is checked. A DecodeError is a failure.
            event = codec.decode_obj(orjson.loads(data)) if out.topic == DEADLETTER_TOPIC else codec.decode(data)
            if event.type == "deadletter.record" and event.payload.reason == "internal_error":  # type: ignore[attr-defined]
                raise ContractBroken(f"{proc.name} hit an internal error: {event.payload.error}")  # type: ignore[attr-defined]
            result.append(out)
        return result


# ---------------------------------------------------------------- the catalogue
def all_targets() -> list[Target]:
    """Every decoder, in the order the campaign runs and reports them."""
    aemp_check, proc_check = AempCheck(), ProcessorCheck()
    xml_seeds = st.sampled_from(("ubl-invoice.xml", "aemp-fleet.xml")).flatmap(inputs.xml_documents)
    return [
        Target("codec.decode", "every event type (inputs and outputs), broken", inputs.envelopes, check_codec),
        Target("processors", "record sequences through all five processors", inputs.deliveries(),
               proc_check, proc_check.reset),
        Target("gbt32960.frame", "GB/T 32960 frames: decode, answer, map", inputs.gbt_bytes(), check_gbt),
        Target("gbt32960.stream", "TCP reads split anywhere, with garbage", inputs.gbt_streams(), check_gbt_stream),
        Target("aemp", "ISO 15143-3 pages, JSON and XML, one tracker",
               inputs.json_documents("aemp-fleet.json") | inputs.xml_documents("aemp-fleet.xml"),
               aemp_check, aemp_check.reset),
        Target("epcis", "EPCIS 2.0 JSON-LD documents", inputs.json_documents("epcis-shipments.jsonld"), check_epcis),
        Target("invoices.ubl", "UBL 2.1 invoice XML", inputs.xml_documents("ubl-invoice.xml"), check_ubl),
        Target("invoices.vat", "Chinese VAT invoice JSON", inputs.json_documents("vat-invoices.json"), check_vat),
        Target("safexml", "XML bombs, external entities, DTDs, encodings", xml_seeds, check_safexml),
    ]
