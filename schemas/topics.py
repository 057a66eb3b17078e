"""The topic catalogue: every Kafka topic creditstream uses, in one place.

The stack creates topics from it, workers subscribe by it, producers route by it and
docs/topics.md is generated from it, so a name or a key rule lives here only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from schemas import events as ev
from schemas import outputs as out

DAY_MS = 24 * 3600 * 1000
FOREVER = -1
# Stage-1 topics that are joined per asset must have the same partition count.
PARTITIONS = 4

# The names, for code that reads or writes one topic; TOPICS below holds their specs.
# A "cs.*" literal anywhere else in the packages fails tests/test_topic_names.py.
REGISTRY_TOPIC = "cs.registry"
PLEDGES_TOPIC = "cs.pledges"
TELEMETRY_TOPIC = "cs.telemetry"
INVOICES_TOPIC = "cs.invoices"
ORDERS_TOPIC = "cs.orders"
SHIPMENTS_TOPIC = "cs.shipments"
DEALERS_TOPIC = "cs.dealers"
RECEIPTS_TOPIC = "cs.receipts"
PRICES_TOPIC = "cs.prices"
WAYBILLS_TOPIC = "cs.waybills"
LEDGER_TOPIC = "cs.ledger"
SIGNALS_TOPIC = "cs.signals"
POOLS_TOPIC = "cs.pools"
LIMITS_TOPIC = "cs.limits"
ALERTS_TOPIC = "cs.alerts"
DEADLETTER_TOPIC = "cs.deadletter"
# The production engine's id: its consumer groups and changelogs are named after it.
ENGINE_ID = "creditstream-engine"


def signals_topic(app_id: str = ENGINE_ID) -> str:
    """An engine's private stage-1 -> stage-2 topic: cs.signals for the production engine,
    ``cs.signals.<app_id>`` for a test or shadow engine, so that two engines on one
    broker never read each other's signals."""
    return SIGNALS_TOPIC if app_id == ENGINE_ID else f"{SIGNALS_TOPIC}.{app_id}"


def pools_topic(app_id: str = ENGINE_ID) -> str:
    """An engine's private stage-2 -> pool-stage topic (risk-sharing claims), named like
    its signals topic (``cs.pools.<app_id>`` for an engine other than production)."""
    return POOLS_TOPIC if app_id == ENGINE_ID else f"{POOLS_TOPIC}.{app_id}"


def shadow_topics(app_id: str) -> dict[str, str]:
    """A shadow engine's own output topics, by the catalogue topic they stand for:
    ``cs.limits.<app_id>``, ``cs.alerts.<app_id>``, ``cs.deadletter.<app_id>``. A
    candidate policy's decisions never reach cs.limits or cs.alerts, which lenders'
    sinks (ledger, webhooks, console) read (docs/policy-lab.md)."""
    return {t: f"{t}.{app_id}" for t in (LIMITS_TOPIC, ALERTS_TOPIC, DEADLETTER_TOPIC)}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    partitions: int
    cleanup: str  # "delete" | "compact"
    retention_ms: int
    events: tuple[type[ev.Envelope], ...]
    doc: str
    internal: bool = False
    config: dict[str, str] = field(default_factory=dict)

    def kafka_config(self) -> dict[str, str]:
        conf = {"cleanup.policy": self.cleanup, "retention.ms": str(self.retention_ms)}
        conf.update(self.config)
        return conf


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "cs.registry", "party, program or supplier>buyer id", 1, "delete", FOREVER,
        (ev.BorrowerRegistered, ev.SupplyRelationship, ev.PartyStatusChanged,
         ev.ProgramRegistered, ev.ConsentGranted, ev.ConsentRevoked,
         ev.PolicyPromoted, ev.ReferenceRateSet),
        "Parties, programs, supply graph, consents, policy promotions and reference rates; small, read whole by every worker.",
    ),
    TopicSpec(
        "cs.pledges", "machine_id", PARTITIONS, "delete", FOREVER,
        (ev.MachinePledged, ev.PledgeReleased),
        "Collateral pledges, co-partitioned with cs.telemetry.",
    ),
    TopicSpec(
        "cs.telemetry", "machine_id", PARTITIONS, "delete", 7 * DAY_MS,
        (ev.EquipmentTelemetry, ev.BatteryTelemetry),
        "ISO 15143-3 equipment and GB/T 32960 battery telemetry: the hot path.",
    ),
    TopicSpec(
        "cs.invoices", "invoice fingerprint", PARTITIONS, "delete", 400 * DAY_MS,
        (ev.InvoiceIssued, ev.InvoiceConfirmed, ev.InvoiceDisputed, ev.InvoicePaid,
         ev.InvoicePartiallyPaid, ev.InvoiceCancelled),
        "Invoice lifecycle, keyed by fingerprint so duplicates meet in one partition.",
    ),
    TopicSpec(
        "cs.orders", "po_id", PARTITIONS, "delete", 400 * DAY_MS,
        (ev.PurchaseOrderIssued, ev.PurchaseOrderConfirmed, ev.PurchaseOrderCancelled),
        "Purchase orders from core enterprises to suppliers.",
    ),
    TopicSpec(
        "cs.shipments", "po_id", PARTITIONS, "delete", 400 * DAY_MS,
        (ev.ShipmentObserved,),
        "EPCIS-like shipment observations, co-partitioned with cs.orders.",
    ),
    TopicSpec(
        "cs.dealers", "dealer_id", PARTITIONS, "delete", 400 * DAY_MS,
        (ev.DealerPlan, ev.UnitPickedUp, ev.RetailSale, ev.UnitRepaid, ev.StockAudit),
        "Sales-based dealer financing: units from pickup to retail sale, plans and audits, by dealer.",
    ),
    TopicSpec(
        RECEIPTS_TOPIC, "warehouse_id:receipt_id", PARTITIONS, "delete", 400 * DAY_MS,
        (ev.ReceiptIssued, ev.ReceiptPledged, ev.ReceiptReleased, ev.StockMoved),
        "Warehouse receipts and their stock movements, keyed by receipt so a second pledge meets the first.",
    ),
    TopicSpec(
        PRICES_TOPIC, "commodity", 1, "delete", 400 * DAY_MS, (ev.MarketPrice,),
        "Commodity price feed; read with cs.registry, which knows the programs that finance each commodity.",
    ),
    TopicSpec(
        WAYBILLS_TOPIC, "truck_id", PARTITIONS, "delete", 400 * DAY_MS,
        (ev.TruckEnrolled, ev.WaybillCompleted, ev.WaybillPaid),
        "Carriers' trucks and completed waybills, co-partitioned with cs.telemetry (the truck's positions).",
    ),
    TopicSpec(
        "cs.ledger", "borrower_id", PARTITIONS, "delete", FOREVER,
        (ev.Drawdown, ev.Repayment, ev.Overdue),
        "Drawdowns, repayments and overdues from the lenders' loan systems.",
    ),
    TopicSpec(
        "cs.signals", "borrower_id", PARTITIONS, "delete", 30 * DAY_MS, (),
        "Stage 1 to stage 2: borrower-keyed asset signals, emitted on material change.",
        internal=True,
    ),
    TopicSpec(
        POOLS_TOPIC, "pool_id", PARTITIONS, "delete", 30 * DAY_MS, (),
        "Stage 2 to the pool stage: each borrower's claim on its program's risk-sharing pool, by pool "
        "(the pool's answers go back on cs.signals).",
        internal=True,
    ),
    TopicSpec(
        "cs.limits", "borrower_id", PARTITIONS, "compact", FOREVER, (out.LimitUpdated,),
        "Limit updates for lenders; compacted so the latest per borrower is kept forever.",
        config={"min.compaction.lag.ms": str(7 * DAY_MS)},
    ),
    TopicSpec(
        "cs.alerts", "borrower_id or asset id", PARTITIONS, "delete", 90 * DAY_MS,
        (out.AlertRaised,), "Risk and plausibility alerts.",
    ),
    TopicSpec(
        "cs.deadletter", "original key", 1, "delete", 30 * DAY_MS, (out.DeadLetter,),
        "Refused records with the reason and the original bytes.",
    ),
)

BY_NAME: dict[str, TopicSpec] = {t.name: t for t in TOPICS}
# The topics producers write to: the engine's inputs (a load run's or a new engine's
# start positions, lag figures). Derived here so a new input topic is never missed
# (cs.dealers was, in a hand-kept copy, and a load run waited forever for its lag).
INPUT_TOPICS: tuple[str, ...] = tuple(t.name for t in TOPICS if t.events and not t.internal
                                      and not set(t.events) & set(out.OUTPUT_EVENTS))
TOPIC_OF_TYPE: dict[str, TopicSpec] = {
    cls.model_fields["type"].annotation.__args__[0]: t  # type: ignore[union-attr]
    for t in TOPICS
    for cls in t.events
}


def _registry_key(e: ev.Envelope) -> str:
    p: (ev.BorrowerPayload | ev.SupplyRelationshipPayload | ev.PartyStatusPayload | ev.ProgramPayload
        | ev.ConsentPayload | ev.PolicyPromotedPayload | ev.ReferenceRatePayload) = e.payload  # type: ignore[attr-defined]
    if isinstance(p, ev.SupplyRelationshipPayload):
        return f"{p.supplier_id}>{p.buyer_id}"
    if isinstance(p, ev.ProgramPayload):
        return p.program_id
    if isinstance(p, ev.ConsentPayload):
        return p.borrower_id
    if isinstance(p, ev.PolicyPromotedPayload):
        return "policy"  # one key: promotions are read in the order they were made
    if isinstance(p, ev.ReferenceRatePayload):
        return "reference_rate"  # one key: the rates are read in the order they were published
    return p.party_id


KEY_OF_TYPE: dict[str, Callable[[ev.Envelope], str]] = {
    **{t: _registry_key for t in (
        "registry.borrower", "registry.supply_relationship", "registry.party_status",
        "registry.program", "registry.consent_granted", "registry.consent_revoked",
        "registry.policy_promoted", "registry.reference_rate")},
    "registry.pledge": lambda e: e.payload.machine_id,  # type: ignore[attr-defined]
    "registry.pledge_released": lambda e: e.payload.machine_id,  # type: ignore[attr-defined]
    "telemetry.equipment": lambda e: e.payload.machine_id,  # type: ignore[attr-defined]
    "telemetry.battery": lambda e: e.payload.machine_id,  # type: ignore[attr-defined]
    **{t: (lambda e: e.payload.invoice.fingerprint()) for t in (  # type: ignore[attr-defined]
        "invoice.issued", "invoice.confirmed", "invoice.disputed", "invoice.paid",
        "invoice.partially_paid", "invoice.cancelled")},
    **{t: (lambda e: e.payload.po_id) for t in (  # type: ignore[attr-defined]
        "po.issued", "po.confirmed", "po.cancelled", "shipment.observed")},
    **{t: (lambda e: e.payload.borrower_id) for t in (  # type: ignore[attr-defined]
        "ledger.drawdown", "ledger.repayment", "ledger.overdue", "limit.updated")},
    **{t: (lambda e: e.payload.dealer_id) for t in (  # type: ignore[attr-defined]
        "dealer.plan", "dealer.unit_picked_up", "dealer.retail_sale", "dealer.unit_repaid",
        "dealer.stock_audit")},
    **{t: (lambda e: e.payload.key()) for t in (  # type: ignore[attr-defined]
        "receipt.issued", "receipt.pledged", "receipt.released", "receipt.stock_moved")},
    "market.price": lambda e: e.payload.commodity,  # type: ignore[attr-defined]
    **{t: (lambda e: e.payload.truck_id) for t in (  # type: ignore[attr-defined]
        "freight.truck_enrolled", "freight.waybill_completed", "freight.waybill_paid")},
    "deadletter.record": lambda e: e.event_id,
    "alert.raised": lambda e: e.payload.borrower_id or e.payload.asset_id or e.event_id,  # type: ignore[attr-defined]
}


def route(event: ev.Envelope) -> tuple[str, bytes]:
    """The topic and the message key an event is produced with."""
    return TOPIC_OF_TYPE[event.type].name, KEY_OF_TYPE[event.type](event).encode()


def markdown_table() -> str:
    rows = ["| topic | key | partitions | cleanup | retention | events | purpose |",
            "|---|---|---|---|---|---|---|"]
    for t in TOPICS:
        retention = "forever" if t.retention_ms == FOREVER else f"{t.retention_ms // DAY_MS} d"
        types = ", ".join(f"`{c.model_fields['type'].annotation.__args__[0]}`" for c in t.events)  # type: ignore[union-attr]
        rows.append(f"| `{t.name}` | {t.key} | {t.partitions} | {t.cleanup} | {retention} "
                    f"| {types or '(internal)'} | {t.doc} |")
    return "\n".join(rows) + "\n"
