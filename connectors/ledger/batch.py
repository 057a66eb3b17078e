"""Pure batch planning for the ledger: Kafka records in, rows and dead letters out.

No I/O here. ``plan`` turns one poll's worth of records into the rows each table gets,
the dead letters for records that are not valid limit updates or alerts, and the
offsets to commit once those rows are durable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from schemas import codec
from schemas.common import Money
from schemas.currencies import in_minor_units
from schemas.outputs import AlertRaised, DeadLetter, LimitUpdated, dead_letter_record
from schemas.topics import ALERTS_TOPIC, LIMITS_TOPIC

STAGE = "ledger"
_EXPECTED = {LIMITS_TOPIC: "limit.updated", ALERTS_TOPIC: "alert.raised"}


@dataclass(frozen=True)
class RawRecord:
    """What the ledger needs of a Kafka record (so tests build them without a broker)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass
class Batch:
    """Rows for one transaction, plus what to do around it."""

    decisions: list[tuple[Any, ...]] = field(default_factory=list)
    current: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # (topic, partition) -> next offset to consume, committed after the rows are durable.
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    # The records that decoded: re-planned one at a time if PostgreSQL refuses the batch.
    valid: list[RawRecord] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.decisions or self.current or self.alerts or self.dead_letters)

    def singles(self) -> list[tuple[RawRecord, Batch]]:
        """Each valid record as a batch of its own, to isolate one PostgreSQL refuses."""
        return [(rec, plan([rec])) for rec in self.valid]


def plan_offsets(records: list[RawRecord]) -> dict[tuple[str, int], int]:
    """The next offset to consume per (topic, partition) after ``records``."""
    out: dict[tuple[str, int], int] = {}
    for rec in records:
        tp = (rec.topic, rec.partition)
        out[tp] = max(out.get(tp, 0), rec.offset + 1)
    return out


def _json(obj: Any) -> str:
    # asyncpg takes jsonb as text; Decimals become strings so no precision is lost.
    return orjson.dumps(obj, default=str).decode()


def _amount(money: Money) -> Decimal:
    # Exactly the currency's minor units in the numeric columns (migration 0006): 2000 JPY,
    # 1.234 KWD, 2000.00 CNY, whatever scale the publisher wrote the amount with.
    return in_minor_units(Decimal(money.amount), money.currency)


def decision_row(ev: LimitUpdated) -> tuple[Any, ...]:
    p = ev.payload
    data = ev.model_dump(mode="json", exclude_none=True)
    return (p.borrower_id, p.version, ev.event_id, p.program_id, _amount(p.limit),
            _amount(p.available), p.limit.currency, p.status.value, p.policy_version,
            p.watermark, _json(data["payload"]["reasons"]), _json(data["payload"]["components"]),
            _json(p.trigger_event_ids), _json(data))


def current_row(ev: LimitUpdated) -> tuple[Any, ...]:
    p = ev.payload
    return (p.borrower_id, p.version, p.program_id, _amount(p.limit),
            _amount(p.available), p.limit.currency, p.status.value,
            _json(ev.model_dump(mode="json", exclude_none=True)))


def alert_row(ev: AlertRaised) -> tuple[Any, ...]:
    p = ev.payload
    return (p.alert_id, p.code, p.severity.value, p.borrower_id, p.asset_id, ev.occurred_at,
            _json(ev.model_dump(mode="json", exclude_none=True)))


def dead_letter(rec: RawRecord, reason: str, error: str, now: datetime | None = None) -> DeadLetter:
    """A dead letter for ``rec``; its id is derived from the record's position, so a
    redelivered bad record yields the same id (consumers de-duplicate by event id)."""
    return DeadLetter.model_validate(dead_letter_record(
        topic=rec.topic, partition=rec.partition, offset=rec.offset, key=rec.key, value=rec.value,
        stage=STAGE, reason=reason, error=error, at=now or datetime.now(UTC)))


def plan(records: list[RawRecord], now: datetime | None = None) -> Batch:
    """Plan one batch.

    Every update goes to the decision log (its primary key makes redelivery a no-op); only
    the highest version per borrower in the batch is offered to ``current_limits``, whose
    upsert also refuses versions not above the stored one.
    """
    batch = Batch(offsets=plan_offsets(records))
    latest: dict[str, LimitUpdated] = {}
    for rec in records:
        try:
            event = codec.decode(rec.value)
        except codec.DecodeError as exc:
            batch.dead_letters.append(dead_letter(rec, exc.reason, str(exc), now))
            continue
        expected = _EXPECTED.get(rec.topic)
        if event.type != expected:
            batch.dead_letters.append(dead_letter(
                rec, "wrong_topic", f"event type {event.type} does not belong on {rec.topic}", now))
            continue
        batch.valid.append(rec)
        if isinstance(event, LimitUpdated):
            batch.decisions.append(decision_row(event))
            prev = latest.get(event.payload.borrower_id)
            if prev is None or prev.payload.version < event.payload.version:
                latest[event.payload.borrower_id] = event
        elif isinstance(event, AlertRaised):
            batch.alerts.append(alert_row(event))
    batch.current = [current_row(e) for e in latest.values()]
    return batch
