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
from typing import Any

from schemas.events import Envelope
from schemas.topics import ALERTS_TOPIC, SIGNALS_TOPIC


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


def first_time(state: dict[str, Any], event: Envelope, keep: int = 32) -> bool:
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


class Rejected(Exception):
    """An input that is valid JSON and schema but cannot be applied (unknown asset, ...)."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
