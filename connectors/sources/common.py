"""What every source adapter shares: its error type, event building, dead-letter records."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from connectors.errors import ConnectorError
from schemas.codec import errors_of
from schemas.events import Envelope
from schemas.outputs import DeadLetter, dead_letter_record

# Dead letters carry the original bytes; keep them well under Kafka's 1 MB message limit.
MAX_DEADLETTER_BYTES = 256 * 1024
# One refused item of a document (a machine, an event, an invoice) carries at most this
# much of its own bytes: a document of N refused items costs at most N x 64 KiB of dead
# letters, and never more than the items' own bytes (issue 11: 267 KB became 140 MB).
MAX_ITEM_BYTES = 64 * 1024
# orjson writes 254 levels of nesting at most; deeper parts of a refused item are cut here.
MAX_ITEM_DEPTH = 64
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")


class SourceError(ConnectorError, ValueError):
    """An input a source adapter refuses: a stable ``reason`` code and a readable message."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")


def is_id(value: str) -> bool:
    """Whether ``value`` is a valid contract identifier (``schemas.common.Id``)."""
    return bool(_ID_RE.match(value))


def item_bytes(value: Any, document: bytes | None = None) -> bytes:
    """One item of a parsed JSON document as bytes, for its dead letter: its own bytes only.

    orjson reads 1024 levels of nesting but writes only 254: an item nested deeper than
    that is written with its parts below :data:`MAX_ITEM_DEPTH` levels replaced by a
    marker. It used to fall back to the whole ``document`` (kept as a parameter for
    callers), which made every refused item of a big file carry the whole file.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return orjson.dumps(_trim(value, MAX_ITEM_DEPTH))


def _trim(value: Any, depth: int) -> Any:
    """``value`` with containers deeper than ``depth`` replaced by a marker string."""
    if not isinstance(value, dict | list):
        return value
    if depth <= 0:
        return f"(cut: nested deeper than {MAX_ITEM_DEPTH} levels)"
    # Iterative descent would avoid Python recursion, but depth is bounded to 64 here.
    if isinstance(value, dict):
        return {k: _trim(v, depth - 1) for k, v in value.items()}
    return [_trim(v, depth - 1) for v in value]


def digest(*parts: object, size: int = 24) -> str:
    """A short stable hash of ``parts``: deterministic event ids make re-imports idempotent."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:size]


def build_event(cls: type[Envelope], *, event_id: str, tenant: str, source: str,
                occurred_at: datetime, payload: dict[str, Any],
                recorded_at: datetime | None = None) -> Envelope:
    """Validate an event against the contract; a violation becomes a :class:`SourceError`."""
    type_name = cls.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    try:
        return cls.model_validate({
            "event_id": event_id, "type": type_name, "tenant": tenant, "source": source,
            "occurred_at": occurred_at, "recorded_at": recorded_at or datetime.now(UTC),
            "payload": payload,
        })
    except ValidationError as exc:
        detail = "; ".join(f"{e['field']}: {e['rule']}" for e in errors_of(exc))
        raise SourceError("invalid_event", detail) from None


@dataclass(frozen=True)
class RejectedItem:
    """One refused input item: where it came from, why, and its original bytes."""

    origin: str
    reason: str
    error: str
    raw: bytes
    truncated_from: int | None = None  # the item's size, when ``raw`` holds only its start

    @classmethod
    def item(cls, origin: str, reason: str, error: str, raw: bytes) -> RejectedItem:
        """One item of a larger document: its bytes cut to :data:`MAX_ITEM_BYTES`."""
        if len(raw) <= MAX_ITEM_BYTES:
            return cls(origin, reason, error, raw)
        return cls(origin, reason, error, raw[:MAX_ITEM_BYTES], len(raw))


def item_rejected(origin: str, exc: SourceError, value: Any) -> RejectedItem:
    """The refusal of one item of a document: its own bytes, at most :data:`MAX_ITEM_BYTES`."""
    return RejectedItem.item(origin, exc.reason, exc.message, item_bytes(value))


@dataclass
class Outcome:
    """What one decoding step produced: events to send, items refused, notes for the user."""

    events: list[Envelope] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.events += other.events
        self.rejected += other.rejected
        self.notes += other.notes


def dead_letter(item: RejectedItem, *, tenant: str, stage: str, now: datetime | None = None) -> DeadLetter:
    """A :class:`DeadLetter` for a refused input (of at most :data:`MAX_DEADLETTER_BYTES`)."""
    now = now or datetime.now(UTC)
    raw = item.raw
    error = item.error
    if item.truncated_from is not None:
        error = f"{error} (original truncated from {item.truncated_from} bytes to {len(raw)})"
    elif len(raw) > MAX_DEADLETTER_BYTES:
        error = f"{error} (original truncated from {len(raw)} bytes to {MAX_DEADLETTER_BYTES})"
        raw = raw[:MAX_DEADLETTER_BYTES]
    return DeadLetter.model_validate(dead_letter_record(
        topic=item.origin, stage=stage, reason=item.reason, error=error, value=raw, at=now, tenant=tenant))
