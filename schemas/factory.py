"""Terse constructors for events, for tests, the demo and the simulator.

An :class:`EventFactory` owns a tenant, an id prefix and an event-time clock, so a
scenario reads like the story it tells: ``f.invoice_confirmed(inv)`` after ``f.advance(hours=2)``.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal

from schemas import events as ev
from schemas.common import Geofence, GeoPoint, Money


def cny(amount: str | int | Decimal) -> Money:
    return Money(amount=Decimal(str(amount)), currency="CNY")


class EventFactory:
    def __init__(self, prefix: str, start: datetime, tenant: str = "core") -> None:
        self.prefix = prefix
        self.now = start
        self.tenant = tenant
        self._ids = itertools.count(1)

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def _e(self, cls: type[ev.Envelope], payload: object, tenant: str | None = None,
           at: datetime | None = None, event_id: str | None = None) -> ev.Envelope:
        at = at or self.now
        # cls is a concrete event class; the Envelope base it is typed as declares no payload.
        return cls(event_id=event_id or f"{self.prefix}-{next(self._ids)}",  # type: ignore[call-arg]
                   type=cls.model_fields["type"].annotation.__args__[0],  # type: ignore[union-attr]
                   tenant=tenant or self.tenant, source="creditstream.factory", occurred_at=at,
                   recorded_at=at, payload=payload)

    # registry
    def program(self, program_id: str, cap: str = "5000000", lenders: tuple[tuple[str, str], ...] = (("bank-a", "0.6"), ("mfi-b", "0.4")),
                risk_pool: ev.RiskPool | None = None, **params: object) -> ev.Envelope:
        return self._e(ev.ProgramRegistered, ev.ProgramPayload(
            program_id=program_id, name=f"Program {program_id}", cap=cny(cap),
            lenders=[ev.LenderShare(lender_id=lid, share=Decimal(s)) for lid, s in lenders],
            parameters=ev.ProgramParameters(**params), risk_pool=risk_pool))

    @staticmethod
    def risk_pool(pool_id: str, fund: str, leverage: str = "10", covered_share: str = "0.60",
                  on_overflow: str = "uncovered") -> ev.RiskPool:
        """A risk-sharing pool declaration for ``program(risk_pool=...)``."""
        return ev.RiskPool(pool_id=pool_id, fund=cny(fund), leverage=Decimal(leverage),
                           covered_share=Decimal(covered_share), on_overflow=on_overflow)

    def borrower(self, party_id: str, program_id: str | None, kind: str = "supplier",
                 tax_id: str = "91310115MA1K4ABC2X") -> ev.Envelope:
        return self._e(ev.BorrowerRegistered, ev.BorrowerPayload(
            party_id=party_id, kind=ev.PartyKind(kind), program_id=program_id,
            name=f"Company {party_id}", tax_id=tax_id))

    def consent(self, borrower_id: str, granted: bool = True) -> ev.Envelope:
        cls = ev.ConsentGranted if granted else ev.ConsentRevoked
        # pydantic.mypy misses the default_factory of third_party_ids (inside Annotated).
        return self._e(cls, ev.ConsentPayload(borrower_id=borrower_id))  # type: ignore[call-arg]

    def supplies(self, supplier_id: str, buyer_id: str, tier: int = 1) -> ev.Envelope:
        return self._e(ev.SupplyRelationship, ev.SupplyRelationshipPayload(
            supplier_id=supplier_id, buyer_id=buyer_id, tier=tier))

    def reference_rate(self, value_pct: str, tenant: str = "creditstream") -> ev.Envelope:
        """The one-year LPR as published (the engine's operator relays it)."""
        return self._e(ev.ReferenceRateSet, ev.ReferenceRatePayload(
            rate="LPR_1Y", value_pct=Decimal(value_pct), effective_date=self.now.date()), tenant=tenant)

    def party_status(self, party_id: str, status: str, reason: str = "rating downgrade") -> ev.Envelope:
        return self._e(ev.PartyStatusChanged, ev.PartyStatusPayload(
            party_id=party_id, status=ev.PartyStatus(status), reason=reason))

    def pledge(self, machine_id: str, borrower_id: str, program_id: str, price: str = "1000000",
               kind: str = "excavator", acquired_on: date | None = None, baseline: float = 8.0,
               fence: tuple[float, float, float] | None = None, life_hours: int = 20000) -> ev.Envelope:
        return self._e(ev.MachinePledged, ev.PledgePayload(
            machine_id=machine_id, borrower_id=borrower_id, program_id=program_id,
            kind=ev.MachineKind(kind), price=cny(price), acquired_on=acquired_on or self.now.date(),
            baseline_hours_per_day=baseline, useful_life_hours=life_hours,
            geofence=Geofence(center=GeoPoint(lat=fence[0], lon=fence[1]), radius_km=fence[2]) if fence else None))

    # telemetry
    def equipment(self, machine_id: str, hours: float, lat: float | None = None, lon: float | None = None,
                  critical: bool = False, at: datetime | None = None) -> ev.Envelope:
        return self._e(ev.EquipmentTelemetry, ev.EquipmentTelemetryPayload(
            machine_id=machine_id, cumulative_operating_hours=hours,
            location=GeoPoint(lat=lat, lon=lon) if lat is not None and lon is not None else None,
            engine_running=True,
            fault_codes=[ev.FaultCode(spn=100, fmi=1, severity="critical")] if critical else []), at=at)

    def battery(self, machine_id: str, vin: str, soc: float = 70, soh: float | None = 95, alarm: int = 0,
                reissued: bool = False, at: datetime | None = None, lat: float | None = None,
                lon: float | None = None, mileage: float | None = None) -> ev.Envelope:
        return self._e(ev.BatteryTelemetry, ev.BatteryTelemetryPayload(
            machine_id=machine_id, vin=vin, soc_pct=soc, soh_pct=soh, pack_voltage_v=600.0,
            pack_current_a=-50.0, alarm_level=alarm, reissued=reissued, mileage_km=mileage,
            location=GeoPoint(lat=lat, lon=lon) if lat is not None and lon is not None else None), at=at)

    # invoices and orders
    def invoice_ref(self, seller_tax_id: str, number: str, amount: str, issued: date | None = None) -> ev.InvoiceRef:
        return ev.InvoiceRef(seller_tax_id=seller_tax_id, invoice_number=number,
                             issue_date=issued or self.now.date(), total=cny(amount))

    def invoice_issued(self, ref: ev.InvoiceRef, seller_id: str, buyer_id: str, due_in_days: int = 90,
                       po_id: str | None = None) -> ev.Envelope:
        return self._e(ev.InvoiceIssued, ev.InvoiceIssuedPayload(
            invoice=ref, seller_id=seller_id, buyer_id=buyer_id,
            due_date=ref.issue_date + timedelta(days=due_in_days), po_id=po_id))

    def invoice_action(self, kind: str, ref: ev.InvoiceRef, seller_id: str, buyer_id: str,
                       **extra: object) -> ev.Envelope:
        cls = {"confirmed": (ev.InvoiceConfirmed, ev.InvoiceActionPayload),
               "disputed": (ev.InvoiceDisputed, ev.InvoiceDisputedPayload),
               "paid": (ev.InvoicePaid, ev.InvoiceActionPayload),
               "partially_paid": (ev.InvoicePartiallyPaid, ev.InvoicePartiallyPaidPayload),
               "cancelled": (ev.InvoiceCancelled, ev.InvoiceActionPayload)}[kind]
        return self._e(cls[0], cls[1](invoice=ref, seller_id=seller_id, buyer_id=buyer_id, **extra))

    def po(self, kind: str, po_id: str, buyer_id: str, supplier_id: str, amount: str = "100000",
           due_in_days: int = 14) -> ev.Envelope:
        ref = {"po_id": po_id, "buyer_id": buyer_id, "supplier_id": supplier_id}
        if kind == "issued":
            return self._e(ev.PurchaseOrderIssued, ev.PurchaseOrderIssuedPayload(
                **ref, amount=cny(amount), delivery_due=self.now + timedelta(days=due_in_days)))
        if kind == "confirmed":
            return self._e(ev.PurchaseOrderConfirmed, ev.PurchaseOrderRefPayload(**ref))
        return self._e(ev.PurchaseOrderCancelled, ev.PurchaseOrderCancelledPayload(**ref))

    def delivered(self, po_id: str, supplier_id: str, planned: datetime, actual: datetime) -> ev.Envelope:
        return self._e(ev.ShipmentObserved, ev.ShipmentPayload(
            shipment_id=f"shp-{po_id}", po_id=po_id, supplier_id=supplier_id,
            biz_step=ev.BizStep.receiving, disposition=ev.Disposition.delivered,
            planned_at=planned, actual_at=actual), at=actual)

    # ledger
    def drawdown(self, loan_id: str, borrower_id: str, program_id: str, amount: str) -> ev.Envelope:
        return self._e(ev.Drawdown, ev.DrawdownPayload(loan_id=loan_id, borrower_id=borrower_id,
                                                       program_id=program_id, amount=cny(amount)))

    def repayment(self, loan_id: str, borrower_id: str, amount: str) -> ev.Envelope:
        return self._e(ev.Repayment, ev.RepaymentPayload(loan_id=loan_id, borrower_id=borrower_id,
                                                         amount=cny(amount)))

    def overdue(self, loan_id: str, borrower_id: str, amount: str, days: int = 5) -> ev.Envelope:
        return self._e(ev.Overdue, ev.OverduePayload(loan_id=loan_id, borrower_id=borrower_id,
                                                     days_past_due=days, amount=cny(amount)))

    # dealers (sales-based dealer financing)
    def dealer_plan(self, dealer_id: str, oem_id: str, month: str, amount: str, units: int) -> ev.Envelope:
        return self._e(ev.DealerPlan, ev.DealerPlanPayload(dealer_id=dealer_id, oem_id=oem_id, month=month,
                                                           amount=cny(amount), units=units))

    def pickup(self, dealer_id: str, oem_id: str, unit_id: str, price: str) -> ev.Envelope:
        return self._e(ev.UnitPickedUp, ev.UnitPickedUpPayload(dealer_id=dealer_id, oem_id=oem_id, unit_id=unit_id,
                                                               wholesale_price=cny(price)))

    def retail_sale(self, dealer_id: str, unit_id: str) -> ev.Envelope:
        return self._e(ev.RetailSale, ev.RetailSalePayload(dealer_id=dealer_id, unit_id=unit_id))

    def unit_repaid(self, dealer_id: str, unit_id: str) -> ev.Envelope:
        return self._e(ev.UnitRepaid, ev.UnitRepaidPayload(dealer_id=dealer_id, unit_id=unit_id))

    def stock_audit(self, dealer_id: str, audit_id: str, present: list[str]) -> ev.Envelope:
        return self._e(ev.StockAudit, ev.StockAuditPayload(dealer_id=dealer_id, audit_id=audit_id,
                                                           present_unit_ids=present))

    # warehouse receipts (inventory finance) and the price feed
    def receipt_issued(self, warehouse_id: str, receipt_id: str, owner_id: str, commodity: str,
                       quantity: str, unit: str = "t") -> ev.Envelope:
        return self._e(ev.ReceiptIssued, ev.ReceiptIssuedPayload(
            warehouse_id=warehouse_id, receipt_id=receipt_id, owner_id=owner_id, commodity=commodity,
            quantity=Decimal(quantity), unit=unit))

    def receipt_pledged(self, warehouse_id: str, receipt_id: str, borrower_id: str) -> ev.Envelope:
        return self._e(ev.ReceiptPledged, ev.ReceiptPledgedPayload(warehouse_id=warehouse_id, receipt_id=receipt_id,
                                                                   borrower_id=borrower_id))

    def receipt_released(self, warehouse_id: str, receipt_id: str, borrower_id: str) -> ev.Envelope:
        return self._e(ev.ReceiptReleased, ev.ReceiptReleasedPayload(
            warehouse_id=warehouse_id, receipt_id=receipt_id, borrower_id=borrower_id))

    def stock_moved(self, warehouse_id: str, receipt_id: str, direction: str, quantity: str) -> ev.Envelope:
        return self._e(ev.StockMoved, ev.StockMovedPayload(warehouse_id=warehouse_id, receipt_id=receipt_id,
                                                           direction=ev.StockDirection(direction),
                                                           quantity=Decimal(quantity)))

    def price(self, commodity: str, amount: str, unit: str = "t") -> ev.Envelope:
        return self._e(ev.MarketPrice, ev.MarketPricePayload(commodity=commodity, price=cny(amount), unit=unit))

    # freight receivables
    def truck_enrolled(self, truck_id: str, carrier_id: str) -> ev.Envelope:
        return self._e(ev.TruckEnrolled, ev.TruckEnrolledPayload(truck_id=truck_id, carrier_id=carrier_id))

    def waybill_completed(self, waybill_id: str, truck_id: str, carrier_id: str, shipper_id: str,
                          destination: tuple[float, float, float], window: tuple[datetime, datetime],
                          amount: str, due: date) -> ev.Envelope:
        return self._e(ev.WaybillCompleted, ev.WaybillCompletedPayload(
            waybill_id=waybill_id, truck_id=truck_id, carrier_id=carrier_id, shipper_id=shipper_id,
            destination=Geofence(center=GeoPoint(lat=destination[0], lon=destination[1]), radius_km=destination[2]),
            window_start=window[0], window_end=window[1], amount=cny(amount), due_date=due))

    def waybill_paid(self, waybill_id: str, truck_id: str, carrier_id: str) -> ev.Envelope:
        return self._e(ev.WaybillPaid, ev.WaybillPaidPayload(waybill_id=waybill_id, truck_id=truck_id,
                                                             carrier_id=carrier_id))
