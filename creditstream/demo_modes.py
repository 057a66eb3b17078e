"""The demo's chapters for warehouse receipts and freight receivables (issue 16.2, 16.3).

Each chapter continues the demo's story (its factory, clock and run id) in a few steps:
a metals trader's receipts valued from a price feed until a price fall calls the
margin, and a carrier whose waybills count only where its truck's positions say the
goods arrived. docs/credit-policy.md 1.5 and 1.6 give the formulas.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from schemas.events import Envelope
from schemas.factory import EventFactory

DEPOT, CONSIGNEE, ELSEWHERE = (28.19, 112.97), (28.42, 113.01, 1.0), (27.83, 113.14, 1.0)


def inventory(f: EventFactory, u: str) -> Iterator[tuple[str, list[Envelope]]]:
    """100 t of copper at 70,000 CNY/t, haircut 30%: 4.9m; 4.5m drawn; copper falls to
    62,000: 4.34m, a margin call for 160,000; a second pledge of the receipt is refused."""
    prg, trader, rival, wh, cu = f"metals-{u}", f"trader-{u}", f"rival-{u}", f"wh-{u}", f"copper-{u}"
    yield "A metals trader pledges a warehouse receipt for 100 t of copper (price feed: 70,000/t)", [
        f.program(prg, cap="8000000", lenders=(("bank-cmb", "1.0"),), commodity_haircuts={cu: "0.30"}),
        f.borrower(trader, prg, tax_id="91430100MA4LTRD001"), f.consent(trader),
        f.borrower(rival, prg, tax_id="91430100MA4LTRD002"), f.consent(rival),
        f.price(cu, "70000"), f.receipt_issued(wh, "WR-1", trader, cu, "100"), f.receipt_pledged(wh, "WR-1", trader)]
    f.advance(hours=2)
    yield "The trader draws down 4,500,000 against the copper", [f.drawdown(f"ln-{u}-inv", trader, prg, "4500000")]
    f.advance(hours=20)
    yield "Copper falls to 62,000/t: the limit falls below the loan (margin call); a rival pledges the same receipt", [
        f.price(cu, "62000"), f.receipt_pledged(wh, "WR-1", rival)]


def freight(f: EventFactory, u: str) -> Iterator[tuple[str, list[Envelope]]]:
    """A waybill of 20,000 the truck's positions corroborate: 20,000 x 0.80, at 50% while
    the shipper (the OEM, distressed in the chapter before) is in distress: 8,000; one to
    a site the truck never reached: not counted, WAYBILL_NOT_CORROBORATED."""
    prg, carrier, shipper, truck = f"freight-{u}", f"carrier-{u}", f"sany-{u}", f"truck-{u}"
    yield "A carrier joins a freight program and enrols its truck", [
        f.program(prg, cap="1000000", lenders=(("bank-cmb", "1.0"),)),
        f.borrower(carrier, prg, kind="fleet_operator", tax_id="91430100MA4LCAR001"), f.consent(carrier),
        f.supplies(carrier, shipper, 1), f.truck_enrolled(truck, carrier)]
    day = f.now.replace(hour=0, minute=0) + timedelta(days=1)
    positions = []
    for h in range(8, 14):  # out to the consignee by 10:00, there until 11:00, back by 13:00
        frac = min(h - 8, 2) / 2 if h < 11 else max(0.0, 1 - (h - 11) / 2)
        f.now = day + timedelta(hours=h)
        positions.append(f.equipment(truck, 500.0 + h, lat=round(DEPOT[0] + (CONSIGNEE[0] - DEPOT[0]) * frac, 5),
                                     lon=round(DEPOT[1] + (CONSIGNEE[1] - DEPOT[1]) * frac, 5)))
    window = (day + timedelta(hours=8), day + timedelta(hours=20))
    due = (day + timedelta(days=30)).date()
    yield "The truck's positions reach the consignee; its waybill of 20,000 completes and counts", [
        *positions, f.waybill_completed(f"WB-{u}-1", truck, carrier, shipper, CONSIGNEE, window, "20000", due)]
    f.now = day + timedelta(hours=14)
    claim = f.waybill_completed(f"WB-{u}-2", truck, carrier, shipper, ELSEWHERE, window, "35000", due)
    later = []
    for h in (15, 18, 21):
        f.now = day + timedelta(hours=h)
        later.append(f.equipment(truck, 506.0, lat=DEPOT[0], lon=DEPOT[1]))
    yield "A second waybill names a site the truck never reached: it does not count", [claim, *later]
