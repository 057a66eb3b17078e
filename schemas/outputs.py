"""Output events: limit updates for lenders, alerts, and dead-letter records."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from schemas.common import Code, EventId, Id, Model, Money, Timestamp
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

    kind: Literal["receivable", "order", "equipment", "dealer", "dealer_unit"]
    asset_id: Id
    contribution: Money
    frozen: bool = False
    detail: dict[str, str] = {}


class LenderAllocation(Model):
    lender_id: Id
    share: Decimal
    limit: Money


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


OUTPUT_EVENTS: tuple[type[Envelope], ...] = (LimitUpdated, AlertRaised, DeadLetter)
