"""Output events: limit updates for lenders, alerts, and dead-letter records."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from schemas.common import Code, EventId, Id, Model, Money, Timestamp, is_code
from schemas.events import Envelope


class FacilityStatus(StrEnum):
    active = "active"
    partially_frozen = "partially_frozen"
    frozen = "frozen"


class Reason(Model):
    """A stable machine code plus a sentence the borrower understands."""

    code: Code
    text: Annotated[str, Field(min_length=1, max_length=500)]


class Component(Model):
    """One asset's contribution to the limit (an invoice, an order, a machine)."""

    kind: Literal["receivable", "order", "equipment", "dealer", "dealer_unit", "inventory", "freight"]
    asset_id: Id
    contribution: Money
    frozen: bool = False
    detail: dict[str, str] = {}


class LenderAllocation(Model):
    lender_id: Id
    share: Decimal
    limit: Money
    # Only for a program in a risk-sharing pool (docs/credit-policy.md section 14).
    covered: Money | None = Field(None, description="The part of this lender's limit covered by the program's "
                                                    "risk-sharing pool")
    covered_share: Decimal | None = Field(None, description="Share of this lender's limit whose losses the pool "
                                                            "bears: the pool's covered share x covered / limit")


class RiskPoolCover(Model):
    """The limit's place in its program's risk-sharing pool (docs/credit-policy.md section 14)."""

    pool_id: Id
    on_overflow: Literal["uncovered", "hold"]
    covered_share: Decimal = Field(description="Share of a covered exposure's loss the pool bears")
    claimed: Money = Field(description="The exposure asked to be covered: the limit before any hold")
    covered: Money = Field(description="The exposure the pool covers")
    pending: bool = Field(description="The pool has not yet answered the latest claim")
    capacity: Money = Field(description="fund x leverage, as this borrower's program declares it (the pool's "
                                        "utilisation: GET /v1/risk-pools/{pool_id})")


class Contribution(Model):
    """One early-warning scorecard line (docs/credit-policy.md section 9)."""

    indicator: Literal["order_intake", "repeat_frequency", "fulfilment", "utilisation", "distance", "disputes",
                       "payment_delays", "buyer_distress"]
    value: float = Field(description="The indicator over the recent window")
    reference: float | None = Field(None, description="Its reference (the window before), when it has one")
    points: Annotated[int, Field(ge=0)]
    max_points: Annotated[int, Field(ge=1)]


class EarlyWarning(Model):
    """The borrower's early-warning score with every contribution (explainable scorecard)."""

    score: Annotated[int, Field(ge=0, le=100)]
    active: bool = Field(description="An EARLY_WARNING is in force")
    horizon_days: Annotated[int, Field(ge=1)]
    coverage: Annotated[int, Field(ge=0, description="Points the applicable indicators can earn")]
    contributions: list[Contribution]
    top: list[str] = Field(description="The indicators that earned most, most first")


class GradePoints(Model):
    early_warning: Annotated[int, Field(ge=0)]
    buyers: Annotated[int, Field(ge=0)]
    unconfirmed_assets: Annotated[int, Field(ge=0)]
    total: Annotated[int, Field(ge=0)]


class Pricing(Model):
    """The indicative price of the limit (docs/credit-policy.md section 13): annualised
    rates in percent, never above 4 x the one-year LPR."""

    grade: Literal["A", "B", "C", "D", "E"]
    grade_points: GradePoints
    apr_pct: Decimal = Field(description="gross APR, percent a year")
    net_apr_pct: Decimal = Field(description="the borrower's APR after the program's interest subsidy")
    subsidy_share: Decimal
    ceiling_pct: Decimal = Field(description="4 x lpr_1y_pct: the legal ceiling")
    lpr_1y_pct: Decimal
    lpr_source: Annotated[str, Field(max_length=128, description="event id of the reference rate, or 'default'")]
    capped: bool
    subsidy_capped: bool | None = Field(None, description=(
        "Present (true) when the subsidy on the full limit would exceed CNY 500,000 a year: "
        "the net APR is then gross minus 500,000 / limit"))


class LimitUpdatePayload(Model):
    borrower_id: Id
    program_id: Id
    limit: Money
    previous_limit: Money
    outstanding: Money
    available: Money
    status: FacilityStatus
    lenders: list[LenderAllocation]
    components: list[Component]
    reasons: list[Reason]
    policy_version: Code
    version: Annotated[int, Field(ge=1)]
    watermark: Timestamp = Field(description="Event time up to which inputs were seen")
    trigger_event_ids: Annotated[list[EventId], Field(max_length=100)]
    early_warning: EarlyWarning | None = None  # from policy 2026.12-3
    pricing: Pricing | None = None  # from policy 2026.12-3
    risk_pool: RiskPoolCover | None = None  # a program in a risk-sharing pool (section 14)


class LimitUpdated(Envelope):
    type: Literal["limit.updated"]
    payload: LimitUpdatePayload


class AlertSeverity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class AlertPayload(Model):
    alert_id: EventId
    code: Code
    severity: AlertSeverity
    borrower_id: Id | None = None
    asset_id: Id | None = None
    text: Annotated[str, Field(min_length=1, max_length=500)]
    trigger_event_ids: Annotated[list[EventId], Field(max_length=100)] = []
    early_warning: EarlyWarning | None = None  # EARLY_WARNING and EARLY_WARNING_CLEARED


class AlertRaised(Envelope):
    type: Literal["alert.raised"]
    payload: AlertPayload


class DeadLetterPayload(Model):
    """Where a record came from, why it was refused, and its original bytes (base64)."""

    topic: Annotated[str, Field(max_length=249)]
    partition: int | None = None
    offset: int | None = None
    stage: Code
    reason: Code
    error: Annotated[str, Field(max_length=4000)]
    key_b64: str | None = None
    value_b64: str


class DeadLetter(Envelope):
    type: Literal["deadletter.record"]
    payload: DeadLetterPayload


def dead_letter_record(*, topic: str, stage: str, reason: str, error: str, value: bytes, at: datetime,
                       partition: int | None = None, offset: int | None = None, key: bytes | None = None,
                       tenant: str = "creditstream") -> dict[str, Any]:
    """The dead letter for a refused record, as JSON-ready data: where it came from, why,
    and its original bytes. The one builder: the engine sends this dict as it is (at
    ``at``, the refused event's time, so that replays agree), the connectors validate it
    (``DeadLetter.model_validate``).

    Its id is derived from the record, never drawn, so a redelivered or re-imported bad
    record yields the same id (consumers de-duplicate by it): ``dl-<stage>-<topic>-
    <partition>-<offset>`` for a record read from Kafka, else ``dl-<stage>-`` and a digest
    of its origin, reason and bytes.
    """
    if offset is not None:
        origin = f"{topic}-{partition}-{offset}"
    else:
        origin = hashlib.sha256(f"{topic}|{reason}|".encode() + value).hexdigest()[:32]
    when = at.isoformat()
    return {
        "event_id": f"dl-{stage}-{origin}"[:128], "type": "deadletter.record", "schema_version": 1,
        "tenant": tenant, "source": f"creditstream.{stage}", "occurred_at": when, "recorded_at": when,
        "payload": {"topic": topic[:249], "partition": partition, "offset": offset, "stage": stage,
                    # A reason that is not a code (free text from a parser) is not echoed as one.
                    "reason": reason if is_code(reason) else "invalid", "error": error[:4000],
                    "key_b64": base64.b64encode(key).decode() if key is not None else None,
                    "value_b64": base64.b64encode(value).decode()},
    }

OUTPUT_EVENTS: tuple[type[Envelope], ...] = (LimitUpdated, AlertRaised, DeadLetter)
