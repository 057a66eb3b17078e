"""Stage 1 -> stage 2 messages and the outputs a processor returns.

A signal carries the *whole current state* of one asset (or registry fact) for one
borrower, never a delta, with a sequence number per asset. Stage 2 replaces the asset's
entry when the sequence is newer, so a redelivered or reordered signal is harmless: this
is what makes at-least-once delivery safe between the stages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict, cast

import orjson

from schemas.events import Envelope
from schemas.topics import ALERTS_TOPIC, SIGNALS_TOPIC
from streams.errors import StreamsError

# ---------------------------------------------------------------- the signal records
# What stage 1 sends stage 2 on the signals topic, kind by kind. A signal is a JSON object
# on the wire and in stage 2's state (which keeps the latest signal of each asset), so
# these are TypedDicts: the names and meaning of every field for a reader and the type
# checker, at no cost on the hot path. The keys are the wire's (short ones like ``r7``
# stay: they are in every stored state); the comments say what each one is.


class SignalHead(TypedDict):
    """The fields every signal has."""

    kind: str  # one of SIGNAL_TYPES (or "batch")
    borrower_id: str  # the record key: stage 2's partition and state
    asset_id: str  # the thing the signal is the whole current state of (machine, invoice, ...)
    seq: int  # per (kind, asset): stage 2 keeps only a newer one (at-least-once is harmless)
    at: float  # event time (epoch seconds) of the input that caused it
    triggers: list[str]  # the causing inputs' event ids (the last 10)


class PledgeTerms(TypedDict):
    """A machine's pledge as stage 1 keeps it and sends it with every machine signal."""

    borrower_id: str
    program_id: str
    kind: str  # excavator, loader, crane, electric_truck
    price: str  # acquisition price, a decimal string
    currency: str
    acquired_on: str  # ISO date
    life_years: float
    life_hours: float
    baseline: float  # the program's expected operating hours per day
    fence: list[float] | None  # [lat, lon, radius_km] of the geofence, if any
    pledged_at: float


class _MachineLater(TypedDict, total=False):
    km7: float | None  # mean km per day over the r7 days (odometer; electric trucks): since
    # 2026-12-01, so a signal recorded before has none


class MachineSignal(SignalHead, _MachineLater):
    """A pledged machine's use and condition (machines.py)."""

    pledge: PledgeTerms
    hours: float | None  # the hour meter (cumulative; None: battery-only telemetry)
    r7: float | None  # mean operating hours per day over the trailing 7 complete days
    w1: float | None  # the same over the last complete calendar week
    w2: float | None  # and over the week before it
    soh: float | None  # battery state of health, %
    alarm: int  # highest battery alarm level of the last reading (3 = critical)
    critical: bool  # a critical equipment fault is active
    in_fence: bool  # last position inside the pledge's geofence
    last_seen: float  # event time of the machine's last reading (silence is judged on it)
    first_day: int | None  # first (partial) day of observation, epoch days: r7 starts after it


class MachineReleasedSignal(SignalHead):
    """A pledge released: the machine no longer counts (no further fields)."""


class ReceivableSignal(SignalHead):
    """An invoice of the borrower's (invoices.py); ``asset_id`` is its fingerprint."""

    status: str
    buyer_id: str
    number: str
    outstanding: str  # decimal string
    currency: str
    issue_date: str  # ISO dates
    due_date: str
    po_id: str | None
    seller_tax_ref: str | None  # digest of the seller's tax id (tax_ref)


class OrderSignal(SignalHead):
    """A purchase order from a buyer (orders.py); ``asset_id`` is the order id."""

    status: str  # issued, confirmed, delivered, cancelled
    buyer_id: str
    amount: str
    currency: str
    due: str


class DeliverySignal(SignalHead):
    """An order delivered (orders.py): the fulfilment score's input."""

    on_time: bool
    planned_at: float
    actual_at: float


class BuyersSignal(SignalHead):
    """The borrower's buyers and the risk factor of each (registry.buyer_factors)."""

    factors: dict[str, dict[str, Any]]  # buyer id -> factor, status, source, hops


class _ProgramLater(TypedDict, total=False):
    # (total=False, not NotRequired: with postponed annotations typing cannot see the latter)
    policy: str  # the promoted policy version, once there is one
    rate: dict[str, Any]  # the published one-year LPR, once there is one


class ProgramSignal(SignalHead, _ProgramLater):
    """The borrower's registration: its program's terms and who operates it (registry.py)."""

    program_id: str
    program: dict[str, Any] | None  # the registry.program payload as JSON
    operator: str | None
    tax_ref: str | None  # digest of the borrower's registered tax id


class ConsentSignal(SignalHead):
    granted: bool
    purpose: str


class PolicySignal(SignalHead):
    """A policy version promoted (registry.policy_promoted)."""

    version: str


class RateSignal(SignalHead):
    """A published one-year LPR (pricing.py): value_pct, effective_date."""

    rate: dict[str, Any]


class DealerSignal(SignalHead):
    """A dealer's floor-plan units and sales plans (dealers.py)."""

    oem: str | None
    units: dict[str, dict[str, Any]]  # unit id -> price, currency, picked up, sold, repaid, ...
    plans: dict[str, dict[str, Any]]  # month -> planned sales amount


class ReceiptSignal(SignalHead):
    """A warehouse receipt pledged by the borrower (receipts.py)."""

    status: str
    warehouse_id: str
    receipt_id: str
    commodity: str
    quantity: str  # decimal string, in ``unit``
    unit: str


class FreightSignal(SignalHead):
    """A carrier's waybill and whether the truck's positions corroborate it (freight.py)."""

    status: str  # awaiting, reached, not_reached, paid
    truck_id: str
    shipper_id: str
    amount: str
    currency: str
    due_date: str
    completed: float
    window: list[float]  # [start, end] of the delivery window, event time
    reached_at: float | None


class PriceSignal(SignalHead):
    """The latest market quote of a commodity the borrower's program finances (prices.py)."""

    commodity: str
    price: str
    currency: str
    unit: str
    quoted_at: float
    prev: dict[str, Any] | None  # the quote before it


class PoolSignal(SignalHead):
    """The risk-sharing pool's answer to the borrower's claim (risk_pool.py)."""

    granted: str
    answered: int  # the claim's seq this answers
    capacity: str
    pool_covered: str


# Every kind stage 2 applies (facility.SIGNAL_KINDS), and its record.
SIGNAL_TYPES: dict[str, type] = {
    "machine": MachineSignal, "machine_released": MachineReleasedSignal, "receivable": ReceivableSignal,
    "order": OrderSignal, "delivery": DeliverySignal, "buyers": BuyersSignal, "program": ProgramSignal,
    "consent": ConsentSignal, "policy": PolicySignal, "rate": RateSignal, "dealer": DealerSignal,
    "receipt": ReceiptSignal, "freight": FreightSignal, "price": PriceSignal, "pool": PoolSignal,
}

Signal = (MachineSignal | MachineReleasedSignal | ReceivableSignal | OrderSignal | DeliverySignal
          | BuyersSignal | ProgramSignal | ConsentSignal | PolicySignal | RateSignal | DealerSignal
          | ReceiptSignal | FreightSignal | PriceSignal | PoolSignal)


class BatchSignal(SignalHead):
    """Everything one stage-1 input caused for one borrower (one_signal_per_borrower)."""

    signals: list[Signal]  # in the order stage 1 made them; kind is "batch", asset_id too


SignalRecord = Signal | BatchSignal


def read_signal(value: bytes) -> SignalRecord:
    """A signal record from the wire: the one place stage 2 decodes one. The fields are not
    checked here (stage 1 made them; facility.apply_signal refuses an unknown kind)."""
    return cast(SignalRecord, orjson.loads(value))



@dataclass(slots=True)
class Output:
    """A record a processor wants produced: the adapter sends it, the domain never does."""

    topic: str
    key: str
    value: dict[str, Any]


BATCH = "batch"


def signal(kind: str, borrower_id: str, asset_id: str, seq: int, at: float,
           triggers: list[str], **data: Any) -> Output:
    """A borrower-keyed signal. ``at`` is the event time (epoch seconds) it reflects."""
    value = {"kind": kind, "borrower_id": borrower_id, "asset_id": asset_id, "seq": seq,
             "at": at, "triggers": triggers[-10:], **data}
    return Output(SIGNALS_TOPIC, borrower_id, value)


def one_signal_per_borrower(outs: list[Output]) -> list[Output]:
    """Fold the signals one input causes for the same borrower into one ``batch`` signal.

    Stage 2 decides once per signal record it reads. A delivery, for example, sends the
    order's new status and the delivery itself; sent apart, stage 2 would publish a
    decision on a state between the two (the order still counted with the new fulfilment
    score, a limit that no state of the facility justifies) and then another. Folded,
    everything one input causes reaches the facility at once: one decision, one version.
    Signals for different borrowers stay separate records (they are keyed by borrower).
    """
    if len(outs) < 2:  # the common case on the telemetry hot path: nothing to fold
        return outs
    by_borrower: dict[str, list[dict[str, Any]]] = {}
    for o in outs:
        if o.topic == SIGNALS_TOPIC:
            by_borrower.setdefault(o.key, []).append(o.value)
    if all(len(sigs) == 1 for sigs in by_borrower.values()):
        return outs
    folded: list[Output] = []
    for o in outs:
        if o.topic != SIGNALS_TOPIC or len(by_borrower[o.key]) == 1:
            folded.append(o)
        elif o.value is by_borrower[o.key][0]:  # the batch takes the place of the first one
            sigs = by_borrower[o.key]
            triggers = list(dict.fromkeys(t for s in sigs for t in s["triggers"]))
            folded.append(Output(SIGNALS_TOPIC, o.key, {
                "kind": BATCH, "borrower_id": o.key, "asset_id": BATCH, "seq": 0,
                "at": max(s["at"] for s in sigs), "triggers": triggers[-10:], "signals": sigs}))
    return folded


# The last second a datetime can hold. Event times are epoch floats here, and a float
# cannot hold 9999-12-31T23:59:59.999999Z exactly: it rounds up into year 10000.
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_LATEST_TS = LATEST.timestamp()


def utc_time(at: float) -> datetime:
    """The UTC datetime of an epoch time, clamped to :data:`LATEST` (never raises for an
    event time the contract accepts)."""
    return datetime.fromtimestamp(min(at, _LATEST_TS), UTC)


def alert(code: str, severity: str, text: str, at: float, triggers: list[str],
          borrower_id: str | None = None, asset_id: str | None = None, tenant: str | None = None,
          extra: dict[str, Any] | None = None) -> Output:
    """An ``alert.raised`` envelope, its id derived from the input that raised it, so a
    replayed or redelivered input raises the same alert id (sinks de-duplicate by it).

    ``al-<code>-<last trigger event id>-<8 hex>``: the suffix digests the input's tenant
    (when the input itself raised the alert) and the alert's borrower and asset. Event
    ids are each publisher's own, so two lenders' overdue notices with the same id, for
    two borrowers, made the same alert id and a sink kept only one (issue 11.1)."""
    head = f"al-{code.lower()}-{(triggers[-1] if triggers else asset_id or borrower_id)}"[:119]
    scope = hashlib.sha256(f"{tenant or ''}/{borrower_id or ''}/{asset_id or ''}".encode()).hexdigest()[:8]
    alert_id = f"{head}-{scope}"
    when = utc_time(at).isoformat()
    payload = {"alert_id": alert_id, "code": code, "severity": severity, "text": text[:500],
               "borrower_id": borrower_id, "asset_id": asset_id, "trigger_event_ids": triggers[-10:],
               **(extra or {})}  # a code's own fields (EARLY_WARNING: the score and its contributions)
    value = {"event_id": alert_id, "type": "alert.raised", "schema_version": 1, "tenant": "creditstream",
             "source": "creditstream.engine", "occurred_at": when, "recorded_at": when,
             "payload": {k: v for k, v in payload.items() if v is not None}}
    return Output(ALERTS_TOPIC, borrower_id or asset_id or alert_id, value)


def event_key(event: Envelope) -> str:
    """An input's identity in the engine's states: its event id *within its tenant*.

    Event ids are chosen by each publisher, so two tenants may use the same one; an id
    alone made one tenant's event drop another's (issue 11: tenant B's consent
    revocation was ignored because tenant A had sent an event with the same id). A
    tenant id cannot contain ``/`` (schemas.common.Id), so the key is unambiguous."""
    return f"{event.tenant}/{event.event_id}"


# States written before policy 2026.12-1 hold bare event ids (no "/", which an event id
# cannot contain): they still count as seen, so a record redelivered across the upgrade
# is not applied twice. They age out of the per-asset windows; only the registry keeps
# its legacy ``seen:<id>`` keys.


class Seen(TypedDict):
    """The part of a stage-1 state :func:`first_time` keeps: the recent inputs' keys."""

    seen: list[str]


def first_time(state: Seen | dict[str, Any], event: Envelope, keep: int = 32) -> bool:
    """Remember ``event`` (by :func:`event_key`) in the asset's recent inputs; False when
    it was seen already.

    Producers retry with the same id, and at-least-once delivery repeats records: a
    bounded window per asset is enough, since repeats arrive close to the original."""
    key = event_key(event)
    seen = state["seen"]
    if key in seen or event.event_id in seen:  # the bare id: an entry from before 2026.12-1
        return False
    state["seen"] = [*seen[-(keep - 1):], key]
    return True


def tax_ref(tax_id: str) -> str:
    """A tax id as the engine's states and signals carry it: a digest, never the id
    itself (tax ids are kept encrypted in one place, docs/security.md). Stage 2 compares
    the digest of an invoice's seller tax id with its borrower's registered one."""
    return hashlib.sha256(f"creditstream-tax:{tax_id}".encode()).hexdigest()[:32]


class Rejected(StreamsError):
    """An input that is valid JSON and schema but cannot be applied (unknown asset, ...):
    its ``reason`` is the dead letter's reason code."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
