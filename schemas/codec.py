"""Wire codec: orjson bytes <-> validated envelopes, with errors a producer can act on."""

from __future__ import annotations

from typing import Annotated, Any, Union

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from schemas.common import TIMESTAMP_RANGE_RULE, UTC_MAX, UTC_MIN
from schemas.events import INPUT_EVENTS, Envelope
from schemas.outputs import OUTPUT_EVENTS

ALL_EVENTS = INPUT_EVENTS + OUTPUT_EVENTS
EVENT_TYPES: dict[str, type[Envelope]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in ALL_EVENTS
}
AnyEvent: Any = Annotated[Union[tuple(ALL_EVENTS)], Field(discriminator="type")]  # noqa: UP007
_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(AnyEvent)
MAX_EVENT_BYTES = 256 * 1024


class DecodeError(ValueError):
    """A record that is not a valid event; ``errors`` names each field and rule."""

    def __init__(self, reason: str, errors: list[dict[str, str]]) -> None:
        self.reason = reason
        self.errors = errors
        detail = "; ".join(f"{e['field']}: {e['rule']}" for e in errors)
        super().__init__(f"{reason}: {detail}" if detail else reason)


def _field(loc: tuple[Any, ...]) -> str:
    # Drop the discriminator tag pydantic inserts ("invoice.issued") from the path.
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in EVENT_TYPES)]
    return ".".join(parts) or "(event)"


_UTC_BOUNDS = {("greater_than_equal", "ge"): UTC_MIN, ("less_than_equal", "le"): UTC_MAX}


def _out_of_utc_range(err: Any) -> bool:
    """Whether a pydantic error is a Timestamp outside the years UTC can hold."""
    for (kind, key), bound in _UTC_BOUNDS.items():
        if err["type"] == kind:
            value = (err.get("ctx") or {}).get(key)
            return value == bound or value == bound.isoformat().replace("+00:00", "Z")
    return False


def errors_of(exc: ValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        msg = err["msg"]
        if err["type"] == "union_tag_invalid":
            msg = f"unknown event type {err.get('ctx', {}).get('tag')!r}"
            loc: tuple[Any, ...] = ("type",)
        elif err["type"] == "union_tag_not_found":
            msg, loc = "field required: the event type", ("type",)
        else:
            loc = err["loc"]
        kind = err["type"]
        if _out_of_utc_range(err):
            # Reported as before the bounds moved into pydantic-core (an AfterValidator).
            msg, kind = TIMESTAMP_RANGE_RULE, "value_error"
        msg = msg.removeprefix("Value error, ")
        out.append({"field": _field(loc), "rule": msg, "kind": kind})
    return out


def decode(data: bytes | str) -> Envelope:
    """Parse and validate one event; raise :class:`DecodeError` on anything wrong."""
    if len(data) > MAX_EVENT_BYTES:
        raise DecodeError("too_large", [{"field": "(event)", "rule": f"larger than {MAX_EVENT_BYTES} bytes"}])
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("malformed_json", [{"field": "(event)", "rule": str(exc)}]) from None
    return decode_obj(raw)


def decode_obj(raw: Any) -> Envelope:
    if not isinstance(raw, dict):
        raise DecodeError("not_an_object", [{"field": "(event)", "rule": "an event is a JSON object"}])
    if "type" in raw and not isinstance(raw["type"], str):
        # Checked here: pydantic-core reprs a non-string tag, and the repr of a list nested
        # a thousand deep fails inside it as an "Exception ignored" on stderr, per record.
        raise DecodeError("invalid_event", [{"field": "type", "rule": "the event type must be a string",
                                             "kind": "string_type"}])
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise DecodeError("invalid_event", errors_of(exc)) from None


def encode(event: Envelope) -> bytes:
    """Serialise an event; Decimals become strings so no precision is lost."""
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


def json_schema() -> dict[str, Any]:
    return _ADAPTER.json_schema(mode="validation")
