"""Input events: what core enterprises, telematics, logistics and ledgers publish.

Every event is an :class:`Envelope` whose ``type`` selects the payload model. The type
strings are stable wire names; the Python classes may be renamed freely.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.common import (
    Code,
    Currency,
    EventId,
    Geofence,
    GeoPoint,
    Id,
    Model,
    Money,
    ShortText,
    TaxId,
    Timestamp,
)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)


class Envelope(Model):
    """Common envelope (modelled on Apache Fineract's business events).

    ``event_id`` is the idempotency key: a producer that retries sends the same id, and
    every consumer treats a second copy as a no-op. ``occurred_at`` is event time (when
    it happened at the source); ``recorded_at`` is when the producer recorded it.
    """

    event_id: EventId
    type: str
    schema_version: Literal[1] = 1
    tenant: Id = Field(description="Who published the event (a core enterprise, a telematics provider)")
    source: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
    occurred_at: Timestamp
    recorded_at: Timestamp

    @model_validator(mode="after")
    def _plausible_time(self) -> Envelope:
        if self.occurred_at < EARLIEST:
            raise ValueError("occurred_at is before 2000-01-01: not a plausible event time")
        # Subtract from occurred_at (at least 2000-01-01 here): recorded_at + 1 day
        # overflows for a recorded_at on 9999-12-31.
        if self.occurred_at - MAX_CLOCK_SKEW > self.recorded_at:
            raise ValueError("occurred_at is more than 1 day after recorded_at: clock skew")
        return self


# ---------------------------------------------------------------- purchase orders
class PurchaseOrderIssuedPayload(Model):
    po_id: Id
    buyer_id: Id
    supplier_id: Id
    amount: Money
    delivery_due: Timestamp


class PurchaseOrderRefPayload(Model):
    po_id: Id
    buyer_id: Id
    supplier_id: Id


class PurchaseOrderCancelledPayload(PurchaseOrderRefPayload):
    reason: ShortText | None = None


class PurchaseOrderIssued(Envelope):
    type: Literal["po.issued"]
    payload: PurchaseOrderIssuedPayload


class PurchaseOrderConfirmed(Envelope):
    type: Literal["po.confirmed"]
    payload: PurchaseOrderRefPayload


class PurchaseOrderCancelled(Envelope):
    type: Literal["po.cancelled"]
    payload: PurchaseOrderCancelledPayload


# ---------------------------------------------------------------- invoices
class InvoiceRef(Model):
    """The identity of an invoice; its fingerprint guards against double financing."""

    seller_tax_id: TaxId
    invoice_number: Annotated[str, Field(pattern=r"^[A-Za-z0-9\-/]{1,32}$")]
    issue_date: date
    total: Money

    def fingerprint(self) -> str:
        raw = "|".join(
            (
                self.seller_tax_id,
                self.invoice_number,
                f"{self.total.amount.normalize():f}",
                self.total.currency,
                self.issue_date.isoformat(),
            )
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


class InvoiceIssuedPayload(Model):
    invoice: InvoiceRef
    seller_id: Id = Field(description="The borrower that issued the invoice and seeks finance")
    buyer_id: Id
    due_date: date
    po_id: Id | None = Field(default=None, description="Purchase order the invoice bills")


class InvoiceActionPayload(Model):
    invoice: InvoiceRef
    seller_id: Id
    buyer_id: Id


class InvoiceDisputedPayload(InvoiceActionPayload):
    reason: ShortText


class InvoicePartiallyPaidPayload(InvoiceActionPayload):
    paid: Money = Field(description="Amount of this payment (not cumulative)")


class InvoiceIssued(Envelope):
    type: Literal["invoice.issued"]
    payload: InvoiceIssuedPayload


class InvoiceConfirmed(Envelope):
    type: Literal["invoice.confirmed"]
    payload: InvoiceActionPayload


class InvoiceDisputed(Envelope):
    type: Literal["invoice.disputed"]
    payload: InvoiceDisputedPayload


class InvoicePaid(Envelope):
    type: Literal["invoice.paid"]
    payload: InvoiceActionPayload


class InvoicePartiallyPaid(Envelope):
    type: Literal["invoice.partially_paid"]
    payload: InvoicePartiallyPaidPayload


class InvoiceCancelled(Envelope):
    type: Literal["invoice.cancelled"]
    payload: InvoiceActionPayload


# ---------------------------------------------------------------- shipments (EPCIS-like)
class BizStep(StrEnum):
    packing = "packing"  # goods packed for the order at the supplier: observed, not yet moving
    shipping = "shipping"
    receiving = "receiving"
    departing = "departing"
    arriving = "arriving"
    accepting = "accepting"


class Disposition(StrEnum):
    in_transit = "in_transit"
    in_progress = "in_progress"
    delivered = "delivered"


class ShipmentPayload(Model):
    shipment_id: Id
    po_id: Id
    supplier_id: Id
    biz_step: BizStep
    disposition: Disposition
    location: GeoPoint | None = None
    site_id: Id | None = None
    planned_at: Timestamp
    actual_at: Timestamp


class ShipmentObserved(Envelope):
    type: Literal["shipment.observed"]
    payload: ShipmentPayload


# ---------------------------------------------------------------- telemetry
class FaultCode(Model):
    """A J1939 diagnostic trouble code as ISO 15143-3 reports it."""

    spn: Annotated[int, Field(ge=0, le=524287)]
    fmi: Annotated[int, Field(ge=0, le=31)]
    severity: Literal["info", "warning", "critical"] = "warning"


NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class EquipmentTelemetryPayload(Model):
    """ISO 15143-3 (AEMP 2.0) snapshot of one machine; counters are cumulative."""

    machine_id: Id
    oem: ShortText | None = None
    model: ShortText | None = None
    serial_number: Id | None = None
    cumulative_operating_hours: NonNeg
    cumulative_idle_hours: NonNeg | None = None
    fuel_used_litres: NonNeg | None = None
    fuel_remaining_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    odometer_km: NonNeg | None = None
    location: GeoPoint | None = None
    engine_running: bool | None = None
    # default_factory, not `= []`: pydantic deep-copies a mutable default on every
    # validation (5.8% of the hot path's time); the schema still documents [] as default.
    fault_codes: Annotated[list[FaultCode], Field(max_length=64, default_factory=list, json_schema_extra={"default": []})]


class BatteryTelemetryPayload(Model):
    """GB/T 32960 real-time (or reissued) data of an electric vehicle's battery."""

    machine_id: Id
    vin: Annotated[str, Field(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")]
    soc_pct: Annotated[float, Field(ge=0, le=100)]
    soh_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    pack_voltage_v: Annotated[float, Field(ge=0, le=2000)]
    pack_current_a: Annotated[float, Field(ge=-1000, le=1000)]
    max_cell_voltage_v: Annotated[float, Field(ge=0, le=15)] | None = None
    min_cell_voltage_v: Annotated[float, Field(ge=0, le=15)] | None = None
    max_temp_c: Annotated[float, Field(ge=-40, le=210)] | None = None
    alarm_level: Annotated[int, Field(ge=0, le=3)] = 0
    alarm_flags: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] = 0
    mileage_km: NonNeg | None = None
    location: GeoPoint | None = None
    reissued: bool = Field(default=False, description="GB/T 32960 command 3: late data")


class EquipmentTelemetry(Envelope):
    type: Literal["telemetry.equipment"]
    payload: EquipmentTelemetryPayload


class BatteryTelemetry(Envelope):
    type: Literal["telemetry.battery"]
    payload: BatteryTelemetryPayload


# ---------------------------------------------------------------- ledger
class DrawdownPayload(Model):
    loan_id: Id
    borrower_id: Id
    program_id: Id
    amount: Money


class RepaymentPayload(Model):
    loan_id: Id
    borrower_id: Id
    amount: Money


class OverduePayload(Model):
    loan_id: Id
    borrower_id: Id
    days_past_due: Annotated[int, Field(ge=1, le=36500)]
    amount: Money


class Drawdown(Envelope):
    type: Literal["ledger.drawdown"]
    payload: DrawdownPayload


class Repayment(Envelope):
    type: Literal["ledger.repayment"]
    payload: RepaymentPayload


class Overdue(Envelope):
    type: Literal["ledger.overdue"]
    payload: OverduePayload


# ---------------------------------------------------------------- dealers (以销定融)
# Sales-based dealer financing: an OEM's dealer is financed against what it sells. The
# OEM's dealer-management system publishes each unit's life from pickup (the wholesale
# delivery that the floor-plan loan pays for) to retail sale, the dealer's monthly
# production plan and stock audits; all keyed by dealer, so one partition orders them.
DealerMonth = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="Calendar month YYYY-MM")]


class DealerPlanPayload(Model):
    dealer_id: Id
    oem_id: Id
    month: DealerMonth
    amount: Money = Field(description="Wholesale value the OEM plans to deliver to the dealer in the month")
    units: Annotated[int, Field(ge=0, le=1_000_000)]


class UnitPickedUpPayload(Model):
    dealer_id: Id
    oem_id: Id
    unit_id: Id = Field(description="Serial number or VIN: the unit is tracked by it from pickup to retail sale")
    model: ShortText | None = None
    wholesale_price: Money = Field(description="The amount the floor-plan loan finances for this unit")
    order_id: Id | None = Field(default=None, description="The OEM's wholesale order")


class RetailSalePayload(Model):
    dealer_id: Id
    unit_id: Id
    retail_price: Money | None = None


class UnitRepaidPayload(Model):
    dealer_id: Id
    unit_id: Id


class StockAuditPayload(Model):
    dealer_id: Id
    audit_id: Id
    present_unit_ids: Annotated[list[Id], Field(max_length=5000, default_factory=list,
                                                json_schema_extra={"default": []},
                                                description="Every unit the auditor found on the dealer's lot")]


class DealerPlan(Envelope):
    type: Literal["dealer.plan"]
    payload: DealerPlanPayload


class UnitPickedUp(Envelope):
    type: Literal["dealer.unit_picked_up"]
    payload: UnitPickedUpPayload


class RetailSale(Envelope):
    type: Literal["dealer.retail_sale"]
    payload: RetailSalePayload


class UnitRepaid(Envelope):
    type: Literal["dealer.unit_repaid"]
    payload: UnitRepaidPayload


class StockAudit(Envelope):
    type: Literal["dealer.stock_audit"]
    payload: StockAuditPayload


# ---------------------------------------------------------------- warehouse receipts (仓单)
# Inventory finance: goods held in a third-party warehouse back a limit through the
# warehouse's receipts. Keyed by the receipt's identity (warehouse and receipt number),
# so every event of one receipt, whoever sends it, meets in one partition: a receipt
# pledged twice is seen there, like an invoice presented twice.
Quantity = Annotated[Decimal, Field(gt=0, lt=Decimal(10) ** 12, max_digits=18, decimal_places=6,
                                    description="Decimal string or number, in the receipt's unit")]
UnitOfMeasure = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]{1,16}$",
                                     description="Unit of quantity, e.g. t, kg, bbl, m3")]


def receipt_key(warehouse_id: str, receipt_id: str) -> str:
    """A receipt's identity: warehouse and receipt number (a digest when they are long,
    so the key stays an Id)."""
    key = f"{warehouse_id}:{receipt_id}"
    return key if len(key) <= 64 else "wr-" + hashlib.sha256(key.encode()).hexdigest()[:40]


class ReceiptRefPayload(Model):
    warehouse_id: Id
    receipt_id: Id = Field(description="The warehouse's receipt number")

    def key(self) -> str:
        return receipt_key(self.warehouse_id, self.receipt_id)


class ReceiptIssuedPayload(ReceiptRefPayload):
    owner_id: Id = Field(description="The depositor the receipt is issued to")
    commodity: Id = Field(description="Commodity code, as the price feed names it (e.g. copper-cathode)")
    quantity: Quantity
    unit: UnitOfMeasure


class ReceiptPledgedPayload(ReceiptRefPayload):
    borrower_id: Id = Field(description="Who pledges the receipt (its owner) to its program's lenders")


class ReceiptReleasedPayload(ReceiptRefPayload):
    borrower_id: Id


class StockDirection(StrEnum):
    into = "in"
    out = "out"


class StockMovedPayload(ReceiptRefPayload):
    direction: StockDirection = Field(description="Goods taken into (in) or out of (out) the warehouse "
                                                  "under this receipt")
    quantity: Quantity
    unit: UnitOfMeasure | None = Field(default=None, description="The quantity's unit; when given it must be "
                                                                 "the receipt's")
    reference: Id | None = Field(default=None, description="The movement's own id (e.g. the EPCIS event id)")


class ReceiptIssued(Envelope):
    type: Literal["receipt.issued"]
    payload: ReceiptIssuedPayload


class ReceiptPledged(Envelope):
    type: Literal["receipt.pledged"]
    payload: ReceiptPledgedPayload


class ReceiptReleased(Envelope):
    type: Literal["receipt.released"]
    payload: ReceiptReleasedPayload


class StockMoved(Envelope):
    type: Literal["receipt.stock_moved"]
    payload: StockMovedPayload


class MarketPricePayload(Model):
    commodity: Id
    price: Money = Field(description="Price of one unit of the commodity")
    unit: UnitOfMeasure


class MarketPrice(Envelope):
    """A price feed's quote for one commodity (one event per commodity and quote)."""

    type: Literal["market.price"]
    payload: MarketPricePayload


# ---------------------------------------------------------------- freight receivables
# A carrier's completed waybill is a receivable against the shipper once the truck's own
# trajectory corroborates the delivery. Keyed by truck, like telemetry: the waybill meets
# the truck's positions in the machines lane (docs/credit-policy.md 1.6 says why).
class TruckEnrolledPayload(Model):
    truck_id: Id = Field(description="The truck's machine id, as its telemetry names it")
    carrier_id: Id = Field(description="The carrier (the borrower) that operates the truck")


class WaybillCompletedPayload(Model):
    waybill_id: Id
    truck_id: Id
    carrier_id: Id
    shipper_id: Id = Field(description="Who owes the freight charge: the receivable's debtor")
    consignee_id: Id | None = None
    destination: Geofence = Field(description="The consignee's site: the truck must reach it")
    window_start: Timestamp = Field(description="Earliest time the delivery may take place")
    window_end: Timestamp = Field(description="Latest time the delivery may take place")
    amount: Money = Field(description="The freight charge the shipper owes")
    due_date: date

    @model_validator(mode="after")
    def _window(self) -> WaybillCompletedPayload:
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        return self


class WaybillPaidPayload(Model):
    waybill_id: Id
    truck_id: Id
    carrier_id: Id


class TruckEnrolled(Envelope):
    type: Literal["freight.truck_enrolled"]
    payload: TruckEnrolledPayload


class WaybillCompleted(Envelope):
    type: Literal["freight.waybill_completed"]
    payload: WaybillCompletedPayload


class WaybillPaid(Envelope):
    type: Literal["freight.waybill_paid"]
    payload: WaybillPaidPayload


# ---------------------------------------------------------------- registry
class PartyKind(StrEnum):
    core_enterprise = "core_enterprise"
    supplier = "supplier"
    dealer = "dealer"
    contractor = "contractor"
    fleet_operator = "fleet_operator"


class BorrowerPayload(Model):
    party_id: Id
    kind: PartyKind
    program_id: Id | None = Field(default=None, description="Program financing this party")
    name: ShortText = Field(description="Personal/legal name: encrypted at rest")
    tax_id: TaxId
    region: Code | None = None

    @model_validator(mode="after")
    def _opaque_id(self) -> BorrowerPayload:
        # Party ids travel in clear through every topic, table and limit update; the tax
        # id is kept encrypted in one place (docs/security.md), so it may not be the id.
        if self.party_id.upper() == self.tax_id:
            raise ValueError("party_id must not be the tax id: party ids are not encrypted")
        return self


class SupplyRelationshipPayload(Model):
    supplier_id: Id
    buyer_id: Id
    tier: Annotated[int, Field(ge=1, le=5)]


class PartyStatus(StrEnum):
    healthy = "healthy"
    watch = "watch"
    distressed = "distressed"


class PartyStatusPayload(Model):
    party_id: Id
    status: PartyStatus
    reason: ShortText


class LenderShare(Model):
    lender_id: Id
    share: Annotated[Decimal, Field(gt=0, le=1, max_digits=6)]


class ProgramParameters(Model):
    """Credit-policy parameters a program may override; see docs/credit-policy.md. One
    left out (null) is the policy version's own value (streams/domain/policies/), so a
    new policy version reaches every program that did not set it."""

    advance_rate: Annotated[Decimal, Field(ge=0, le=1)] | None = None
    order_advance_rate: Annotated[Decimal, Field(ge=0, le=1)] | None = None
    loan_to_value: Annotated[Decimal, Field(ge=0, le=1)] | None = None
    max_tenor_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    # Agricultural and construction work follows the seasons: 12 monthly shares of the
    # baseline (January first), so a declared winter pause is not read as a collapse.
    seasonal_profile: Annotated[list[Annotated[Decimal, Field(ge=Decimal("0.05"), le=2, max_digits=4,
                                                              decimal_places=2)]],
                                Field(min_length=12, max_length=12, description=(
                                    "Expected share of the baseline operating hours per calendar month, "
                                    "January first (1.0 = the pledge's baseline); utilisation is judged "
                                    "against the same season"))] | None = None
    # Sales-based dealer financing (docs/credit-policy.md 1.4).
    dealer_sales_multiple: Annotated[Decimal, Field(ge=0, le=12)] | None = None
    dealer_repay_days: Annotated[int, Field(ge=1, le=90)] | None = None
    curtail_after_days: Annotated[int, Field(ge=1, le=720)] | None = None
    curtail_every_days: Annotated[int, Field(ge=1, le=365)] | None = None
    curtail_step: Annotated[Decimal, Field(ge=0, le=1)] | None = None
    # Warehouse receipts (docs/credit-policy.md 1.5): the share of the market value not
    # lent, per commodity; a commodity the program does not list is not financed.
    commodity_haircuts: Annotated[dict[Id, Annotated[Decimal, Field(ge=0, le=1)]], Field(
        max_length=200, description="Haircut per commodity code (0.30 = 70% of the market value counts)",
    )] | None = None
    price_max_age_days: Annotated[int, Field(ge=1, le=90)] | None = None
    # Freight receivables (docs/credit-policy.md 1.6).
    freight_advance_rate: Annotated[Decimal, Field(ge=0, le=1)] | None = None
    # Early warning (docs/credit-policy.md 12.3): the most an active warning may cut the limit.
    ew_max_cut: Annotated[Decimal, Field(ge=0, le=Decimal("0.30"), description=(
        "Largest share by which an active early warning reduces the limit (0 = warn only)"))] | None = None
    # Pricing (docs/credit-policy.md 13): annual rate in percent per risk grade, and the
    # share of the interest a public subsidy pays (the borrower's net rate).
    pricing_table: Annotated[dict[Literal["A", "B", "C", "D", "E"], Annotated[Decimal, Field(ge=0, le=100)]],
                             Field(min_length=5, description="Indicative APR in percent per risk grade A-E "
                                                             "(all five)")] | None = None
    interest_subsidy_share: Annotated[Decimal, Field(ge=0, le=1, description=(
        "Share of the interest paid by a public subsidy: the borrower's net APR"))] | None = None


# Joint lending rule: every cooperating funder contributes at least 30% of each loan. A
# regulatory floor, so not something a program's own registration may lower.
MIN_LENDER_SHARE = Decimal("0.30")


class RiskPool(Model):
    """A government risk-sharing (compensation) pool a program's limits are enrolled in
    (docs/credit-policy.md section 14). Its capacity, ``fund`` x ``leverage``, bounds the
    exposure covered across every program that names the pool."""

    pool_id: Id
    fund: Money = Field(description="The pool's fund (e.g. CNY 150 m)")
    leverage: Annotated[Decimal, Field(gt=0, le=100, max_digits=6, description=(
        "Exposure the pool covers per unit of fund (1:10 = 10): capacity = fund x leverage"))]
    covered_share: Annotated[Decimal, Field(gt=0, le=1, max_digits=6, description=(
        "Share of a covered exposure's loss the pool bears (0.60 = 60%)"))]
    on_overflow: Literal["uncovered", "hold"] = Field(description=(
        "When the pool is full: 'uncovered' = the limit rises, the increase is not covered; "
        "'hold' = the increase is held until the pool has room"))


class ProgramPayload(Model):
    program_id: Id
    name: ShortText
    currency: Currency = "CNY"
    cap: Money
    lenders: Annotated[list[LenderShare], Field(min_length=1, max_length=10)]
    min_lender_share: Annotated[Decimal, Field(
        ge=MIN_LENDER_SHARE, le=1, max_digits=6,
        description="Smallest share a lender of this program may have; a program may raise the "
                    "regulatory floor of 0.30, never lower it")] = MIN_LENDER_SHARE
    parameters: ProgramParameters = ProgramParameters()
    risk_pool: RiskPool | None = Field(default=None, description=(
        "The public compensation pool covering this program's limits, if any"))

    @model_validator(mode="after")
    def _joint_lending(self) -> ProgramPayload:
        total = sum((lender.share for lender in self.lenders), Decimal(0))
        if total != 1:
            raise ValueError(f"lender shares must add up to 1, they add up to {total}")
        for lender in self.lenders:
            if lender.share < self.min_lender_share:
                raise ValueError(
                    f"lender {lender.lender_id} has share {lender.share}: joint lending "
                    f"needs every funder to contribute at least {self.min_lender_share}"
                )
        ids = [lender.lender_id for lender in self.lenders]
        if len(set(ids)) != len(ids):
            raise ValueError("a lender appears twice in the program")
        if self.cap.currency != self.currency:
            raise ValueError("program cap must be in the program currency")
        if self.risk_pool is not None and self.risk_pool.fund.currency != self.currency:
            raise ValueError("the risk pool's fund must be in the program currency")
        return self


class ConsentPayload(Model):
    borrower_id: Id
    purpose: Code = "credit_limit"
    third_party_ids: Annotated[list[Id], Field(max_length=20, default_factory=list, json_schema_extra={"default": []})]


class MachineKind(StrEnum):
    excavator = "excavator"
    electric_truck = "electric_truck"
    loader = "loader"
    crane = "crane"


class PledgePayload(Model):
    machine_id: Id
    borrower_id: Id
    program_id: Id
    kind: MachineKind
    price: Money
    acquired_on: date
    useful_life_years: Annotated[int, Field(ge=1, le=40)] = 10
    useful_life_hours: Annotated[int, Field(ge=100, le=200000)] = 20000
    baseline_hours_per_day: Annotated[float, Field(gt=0, le=24)] = 8.0
    geofence: Geofence | None = None


class PledgeReleasedPayload(Model):
    machine_id: Id
    borrower_id: Id


class BorrowerRegistered(Envelope):
    type: Literal["registry.borrower"]
    payload: BorrowerPayload


class SupplyRelationship(Envelope):
    type: Literal["registry.supply_relationship"]
    payload: SupplyRelationshipPayload


class PartyStatusChanged(Envelope):
    type: Literal["registry.party_status"]
    payload: PartyStatusPayload


class ProgramRegistered(Envelope):
    type: Literal["registry.program"]
    payload: ProgramPayload


class ConsentGranted(Envelope):
    type: Literal["registry.consent_granted"]
    payload: ConsentPayload


class ConsentRevoked(Envelope):
    type: Literal["registry.consent_revoked"]
    payload: ConsentPayload


class PolicyPromotedPayload(Model):
    """A credit-policy version made the one the engine decides under (docs/policy-lab.md)."""

    version: Annotated[str, Field(pattern=r"^[0-9]{4}\.[0-9]{1,2}-[0-9A-Za-z.]{1,16}$",
                                  description="a shipped policy version (streams/domain/policies/)")]
    promoted_by: ShortText = Field(description="who promoted it: recorded for the audit")
    reason: Annotated[str, Field(max_length=500)] | None = None


class PolicyPromoted(Envelope):
    type: Literal["registry.policy_promoted"]
    payload: PolicyPromotedPayload


class ReferenceRatePayload(Model):
    """A published reference rate: the one-year Loan Prime Rate caps every indicative APR
    at four times its value (docs/credit-policy.md section 13)."""

    rate: Literal["LPR_1Y"] = Field(description="the one-year Loan Prime Rate")
    value_pct: Annotated[Decimal, Field(gt=0, le=50, max_digits=6, decimal_places=4,
                                        description="annual rate in percent, e.g. 3.00")]
    effective_date: date


class ReferenceRateSet(Envelope):
    type: Literal["registry.reference_rate"]
    payload: ReferenceRatePayload


class MachinePledged(Envelope):
    type: Literal["registry.pledge"]
    payload: PledgePayload


class PledgeReleased(Envelope):
    type: Literal["registry.pledge_released"]
    payload: PledgeReleasedPayload


INPUT_EVENTS: tuple[type[Envelope], ...] = (
    PurchaseOrderIssued,
    PurchaseOrderConfirmed,
    PurchaseOrderCancelled,
    InvoiceIssued,
    InvoiceConfirmed,
    InvoiceDisputed,
    InvoicePaid,
    InvoicePartiallyPaid,
    InvoiceCancelled,
    ShipmentObserved,
    EquipmentTelemetry,
    BatteryTelemetry,
    Drawdown,
    Repayment,
    Overdue,
    BorrowerRegistered,
    SupplyRelationship,
    PartyStatusChanged,
    ProgramRegistered,
    ConsentGranted,
    ConsentRevoked,
    PolicyPromoted,
    ReferenceRateSet,
    MachinePledged,
    PledgeReleased,
    DealerPlan,
    UnitPickedUp,
    RetailSale,
    UnitRepaid,
    StockAudit,
    ReceiptIssued,
    ReceiptPledged,
    ReceiptReleased,
    StockMoved,
    MarketPrice,
    TruckEnrolled,
    WaybillCompleted,
    WaybillPaid,
)
