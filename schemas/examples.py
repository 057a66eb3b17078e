"""One realistic example of every event type: for docs, tests and first-time producers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from schemas import events as ev
from schemas import outputs as out
from schemas.common import Geofence, GeoPoint, Money, cny
from schemas.topics import TELEMETRY_TOPIC

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SELLER_TAX_ID = "91310115MA1K4ABC2X"


def _env(cls: type[ev.Envelope], n: int, payload: object, tenant: str = "sany-heavy",
         source: str = "erp.sap", at: datetime = T0) -> ev.Envelope:
    # call-arg: cls is a concrete event class; the Envelope base it is typed as declares no payload.
    return cls(event_id=f"ex-{n:04d}", type=cls.model_fields["type"].annotation.__args__[0],  # type: ignore[union-attr, call-arg]
               tenant=tenant, source=source, occurred_at=at, recorded_at=at + timedelta(seconds=2),
               payload=payload)


def invoice_ref(number: str = "24312000000012345678", amount: str = "500000.00") -> ev.InvoiceRef:
    return ev.InvoiceRef(seller_tax_id=SELLER_TAX_ID, invoice_number=number,
                         issue_date=date(2026, 3, 1), total=cny(amount))


def example_events() -> list[ev.Envelope]:
    inv = invoice_ref()
    act = {"invoice": inv, "seller_id": "sup-hydraulics", "buyer_id": "sany-heavy"}
    po = {"po_id": "po-778812", "buyer_id": "sany-heavy", "supplier_id": "sup-hydraulics"}
    site = Geofence(center=GeoPoint(lat=28.2282, lon=112.9388), radius_km=50)
    items: list[tuple[type[ev.Envelope], object]] = [
        (ev.PurchaseOrderIssued, ev.PurchaseOrderIssuedPayload(**po, amount=cny("800000.00"),
                                                               delivery_due=T0 + timedelta(days=20))),
        (ev.PurchaseOrderConfirmed, ev.PurchaseOrderRefPayload(**po)),
        (ev.PurchaseOrderCancelled, ev.PurchaseOrderCancelledPayload(**po, reason="plan changed")),
        (ev.InvoiceIssued, ev.InvoiceIssuedPayload(**act, due_date=date(2026, 5, 30), po_id="po-778812")),
        (ev.InvoiceConfirmed, ev.InvoiceActionPayload(**act)),
        (ev.InvoiceDisputed, ev.InvoiceDisputedPayload(**act, reason="short delivery")),
        (ev.InvoicePaid, ev.InvoiceActionPayload(**act)),
        (ev.InvoicePartiallyPaid, ev.InvoicePartiallyPaidPayload(**act, paid=cny("120000.00"))),
        (ev.InvoiceCancelled, ev.InvoiceActionPayload(**act)),
        (ev.ShipmentObserved, ev.ShipmentPayload(
            shipment_id="shp-5531", po_id="po-778812", supplier_id="sup-hydraulics",
            biz_step=ev.BizStep.receiving, disposition=ev.Disposition.delivered,
            location=GeoPoint(lat=28.19, lon=112.97), site_id="sany-changsha",
            planned_at=T0 + timedelta(days=20), actual_at=T0 + timedelta(days=19))),
        (ev.EquipmentTelemetry, ev.EquipmentTelemetryPayload(
            machine_id="exc-SY215C-00042", oem="SANY", model="SY215C", serial_number="SY215C00042",
            cumulative_operating_hours=1834.5, cumulative_idle_hours=210.25, fuel_used_litres=30122.0,
            fuel_remaining_pct=62.0, location=GeoPoint(lat=28.21, lon=112.95), engine_running=True,
            fault_codes=[ev.FaultCode(spn=110, fmi=0, severity="warning")])),
        (ev.BatteryTelemetry, ev.BatteryTelemetryPayload(
            machine_id="etruck-0007", vin="LFV2A21K8M4000007", soc_pct=71.0, soh_pct=93.5,
            pack_voltage_v=612.4, pack_current_a=-85.3, max_cell_voltage_v=3.412,
            min_cell_voltage_v=3.371, max_temp_c=34.0, alarm_level=0, alarm_flags=0,
            mileage_km=48211.3, location=GeoPoint(lat=30.59, lon=114.31))),
        (ev.Drawdown, ev.DrawdownPayload(loan_id="ln-1001", borrower_id="sup-hydraulics",
                                         program_id="prg-sany-chain", amount=cny("200000.00"))),
        (ev.Repayment, ev.RepaymentPayload(loan_id="ln-1001", borrower_id="sup-hydraulics",
                                           amount=cny("50000.00"))),
        (ev.Overdue, ev.OverduePayload(loan_id="ln-1001", borrower_id="sup-hydraulics",
                                       days_past_due=3, amount=cny("150000.00"))),
        (ev.BorrowerRegistered, ev.BorrowerPayload(
            party_id="sup-hydraulics", kind=ev.PartyKind.supplier, program_id="prg-sany-chain",
            name="Changsha Hydraulics Co., Ltd.", tax_id=SELLER_TAX_ID, region="CN-HN")),
        (ev.SupplyRelationship, ev.SupplyRelationshipPayload(
            supplier_id="sup-hydraulics", buyer_id="sany-heavy", tier=1)),
        (ev.PartyStatusChanged, ev.PartyStatusPayload(
            party_id="sany-heavy", status=ev.PartyStatus.watch, reason="bond spread widened")),
        (ev.ProgramRegistered, ev.ProgramPayload(
            program_id="prg-sany-chain", name="Sany supplier chain", cap=cny("5000000.00"),
            lenders=[ev.LenderShare(lender_id="bank-cmb", share=Decimal("0.6")),
                     ev.LenderShare(lender_id="mfi-hunan", share=Decimal("0.4"))])),
        # pydantic.mypy misses the default_factory of third_party_ids (inside Annotated).
        (ev.ConsentGranted, ev.ConsentPayload(borrower_id="sup-hydraulics")),  # type: ignore[call-arg]
        (ev.ConsentRevoked, ev.ConsentPayload(borrower_id="sup-hydraulics")),  # type: ignore[call-arg]
        (ev.PolicyPromoted, ev.PolicyPromotedPayload(version="2027.01-1", promoted_by="Credit committee (Li Wei)",
                                                     reason="Minutes of 2027-01-05, item 3")),
        (ev.ReferenceRateSet, ev.ReferenceRatePayload(rate="LPR_1Y", value_pct=Decimal("3.00"),
                                                      effective_date=date(2026, 11, 20))),
        (ev.MachinePledged, ev.PledgePayload(
            machine_id="exc-SY215C-00042", borrower_id="ctr-xiang", program_id="prg-sany-equip",
            kind=ev.MachineKind.excavator, price=cny("1150000.00"), acquired_on=date(2024, 6, 1),
            geofence=site)),
        (ev.PledgeReleased, ev.PledgeReleasedPayload(machine_id="exc-SY215C-00042", borrower_id="ctr-xiang")),
        (ev.DealerPlan, ev.DealerPlanPayload(dealer_id="dlr-hunan-01", oem_id="sany-heavy", month="2026-03",
                                             amount=cny("6000000.00"), units=6)),
        (ev.UnitPickedUp, ev.UnitPickedUpPayload(
            dealer_id="dlr-hunan-01", oem_id="sany-heavy", unit_id="SY215C00043", model="SY215C",
            wholesale_price=cny("980000.00"), order_id="wo-20260302")),
        (ev.RetailSale, ev.RetailSalePayload(dealer_id="dlr-hunan-01", unit_id="SY215C00043",
                                             retail_price=cny("1150000.00"))),
        (ev.UnitRepaid, ev.UnitRepaidPayload(dealer_id="dlr-hunan-01", unit_id="SY215C00043")),
        (ev.StockAudit, ev.StockAuditPayload(dealer_id="dlr-hunan-01", audit_id="aud-2026-03",
                                             present_unit_ids=["SY215C00044", "SY75C00102"])),
        (ev.ReceiptIssued, ev.ReceiptIssuedPayload(
            warehouse_id="wh-yangshan-3", receipt_id="WR-2026-0311", owner_id="trd-hunan-metals",
            commodity="copper-cathode", quantity=Decimal("100"), unit="t")),
        (ev.ReceiptPledged, ev.ReceiptPledgedPayload(warehouse_id="wh-yangshan-3", receipt_id="WR-2026-0311",
                                                     borrower_id="trd-hunan-metals")),
        (ev.StockMoved, ev.StockMovedPayload(warehouse_id="wh-yangshan-3", receipt_id="WR-2026-0311",
                                             direction=ev.StockDirection.out, quantity=Decimal("20"),
                                             reference="epcis-7f3a")),
        (ev.ReceiptReleased, ev.ReceiptReleasedPayload(warehouse_id="wh-yangshan-3", receipt_id="WR-2026-0311",
                                                       borrower_id="trd-hunan-metals")),
        (ev.MarketPrice, ev.MarketPricePayload(commodity="copper-cathode", price=cny("68000.00"), unit="t")),
        (ev.TruckEnrolled, ev.TruckEnrolledPayload(truck_id="trk-xx-0091", carrier_id="car-changsha-express")),
        (ev.WaybillCompleted, ev.WaybillCompletedPayload(
            waybill_id="WB-20260312-0007", truck_id="trk-xx-0091", carrier_id="car-changsha-express",
            shipper_id="sany-heavy", consignee_id="site-yuelu",
            destination=Geofence(center=GeoPoint(lat=28.17, lon=112.93), radius_km=1.0),
            window_start=T0, window_end=T0 + timedelta(hours=10), amount=cny("18500.00"), due_date=date(2026, 4, 12))),
        (ev.WaybillPaid, ev.WaybillPaidPayload(waybill_id="WB-20260312-0007", truck_id="trk-xx-0091",
                                               carrier_id="car-changsha-express")),
    ]
    events = [_env(cls, i, payload) for i, (cls, payload) in enumerate(items, start=1)]
    zero, lim = cny("0.00"), cny("320000.00")
    events += [
        _env(out.LimitUpdated, 90, out.LimitUpdatePayload(
            borrower_id="sup-hydraulics", program_id="prg-sany-chain", limit=lim, previous_limit=zero,
            outstanding=zero, available=lim, status=out.FacilityStatus.active,
            lenders=[out.LenderAllocation(lender_id="bank-cmb", share=Decimal("0.6"), limit=cny("192000.00")),
                     out.LenderAllocation(lender_id="mfi-hunan", share=Decimal("0.4"), limit=cny("128000.00"))],
            components=[out.Component(kind="receivable", asset_id=inv.fingerprint(), contribution=lim)],
            reasons=[out.Reason(code="RECEIVABLE_CONFIRMED",
                                text="Your buyer confirmed invoice 24312000000012345678.")],
            policy_version="2026.1", version=1, watermark=T0, trigger_event_ids=["ex-0005"]),
            tenant="creditstream", source="creditstream.engine"),
        _env(out.AlertRaised, 91, out.AlertPayload(
            alert_id="al-1", code="DUPLICATE_FINANCING", severity=out.AlertSeverity.critical,
            borrower_id="sup-other", asset_id=inv.fingerprint(),
            text="This invoice is already financed for another seller.", trigger_event_ids=["ex-0004"]),
            tenant="creditstream", source="creditstream.engine"),
        _env(out.DeadLetter, 92, out.DeadLetterPayload(
            topic=TELEMETRY_TOPIC, partition=0, offset=17, stage="ingest", reason="invalid_event",
            error="payload.soc_pct: Input should be less than or equal to 100",
            value_b64="eyJ0eXBlIjoidGVsZW1ldHJ5LmJhdHRlcnkifQ=="),
            tenant="creditstream", source="creditstream.engine"),
    ]
    return events


__all__ = ["example_events", "invoice_ref", "T0", "Money"]
