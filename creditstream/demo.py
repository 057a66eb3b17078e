"""The demo supply chain: a story told in events, and a printer of the limits it moves.

A core enterprise (an excavator OEM) with two tier-1 suppliers and one tier-2 supplier,
and a contractor with a pledged excavator and an electric truck. Each step is a moment of
the story; the engine's limit updates are printed with their reasons as they arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from creditstream import demo_early_warning, demo_modes, demo_risk_pool
from schemas.events import Envelope
from schemas.factory import EventFactory

SITE = (28.2282, 112.9388, 30.0)  # Changsha, 30 km


def story(run_id: str) -> Iterator[tuple[str, list[Envelope]]]:
    """(caption, events) steps. Ids carry ``run_id`` so demos never collide."""
    f = EventFactory(f"demo-{run_id}", datetime(2026, 3, 2, 8, 0, tzinfo=UTC), tenant="sany-heavy")
    u = run_id
    core, s1, s2, t2, ctr = f"sany-{u}", f"hydraulics-{u}", f"castings-{u}", f"bolts-{u}", f"xiang-{u}"
    prg, eq = f"chain-{u}", f"equip-{u}"
    tax = {s1: "91430100MA4L1A2B3C", s2: "91430100MA4L9Z8Y7X", t2: "91430100MA4LBOLT01"}
    yield "Programs, borrowers, consents and the supply graph are registered", [
        f.program(prg, cap="3000000", lenders=(("bank-cmb", "0.6"), ("mfi-hunan", "0.4"))),
        f.program(eq, cap="2000000", lenders=(("bank-icbc", "1.0"),)),
        *[e for b in (s1, s2, t2) for e in (f.borrower(b, prg, tax_id=tax[b]), f.consent(b))],
        f.borrower(ctr, eq, kind="contractor"), f.consent(ctr),
        f.supplies(s1, core, 1), f.supplies(s2, core, 1), f.supplies(t2, s1, 2),
    ]
    yield "The contractor pledges an excavator and an electric truck", [
        f.pledge(f"exc-{u}", ctr, eq, price="1150000", fence=SITE),
        f.pledge(f"trk-{u}", ctr, eq, price="900000", kind="electric_truck"),
    ]
    inv = {b: f.invoice_ref(tax[b], f"{u[:8]}{i}", amt) for i, (b, amt) in
           enumerate(((s1, "600000"), (s2, "450000"), (t2, "120000")))}
    yield "Suppliers issue invoices to their buyers", [
        f.invoice_issued(inv[s1], s1, core), f.invoice_issued(inv[s2], s2, core),
        f.invoice_issued(inv[t2], t2, s1)]
    f.advance(hours=3)
    yield "The buyers confirm the invoices: limits follow within seconds", [
        f.invoice_action("confirmed", inv[s1], s1, core), f.invoice_action("confirmed", inv[s2], s2, core),
        f.invoice_action("confirmed", inv[t2], t2, s1)]
    f.advance(hours=1)
    yield "The OEM places and confirms a purchase order with castings", [
        f.po("issued", f"po-{u}", core, s2, "800000"), f.po("confirmed", f"po-{u}", core, s2)]
    f.advance(hours=1)
    yield "Hydraulics submits the same invoice again (duplicate financing attempt)", [
        f.invoice_issued(inv[s1], s1, core)]
    yield "Hydraulics draws down 250,000", [f.drawdown(f"ln-{u}", s1, prg, "250000")]
    hours = 0.0
    steps = []
    for _day in range(3):
        for _ in range(4):
            f.advance(hours=6)
            hours += 2.0
            steps.append(f.equipment(f"exc-{u}", hours, lat=28.23, lon=112.94))
        steps.append(f.battery(f"trk-{u}", "LFV2A21K8M4000007", soh=93.0))
    yield "Three days of excavator and battery telemetry", steps
    f.advance(hours=1)
    yield "The truck's battery raises a level-3 alarm: part of the limit freezes", [
        f.battery(f"trk-{u}", "LFV2A21K8M4000007", soh=93.0, alarm=3)]
    f.advance(hours=1)
    yield "The excavator is moved off its pledged site", [
        f.equipment(f"exc-{u}", hours + 0.5, lat=28.75, lon=112.94)]
    f.advance(hours=2)
    yield "The OEM is put under distress: its tier-1 and tier-2 suppliers fall", [
        f.party_status(core, "distressed", "missed a bond coupon")]
    f.advance(hours=2)
    yield "Hydraulics repays 100,000", [f.repayment(f"ln-{u}", s1, "100000")]
    yield from demo_early_warning.fading_supplier(f, u)  # a score, its drivers, a bounded cut
    yield from demo_early_warning.lpr_published(f, u)  # a price on every limit, capped at 4 x LPR
    yield from demo_modes.inventory(f, u)  # warehouse receipts and a margin call
    yield from demo_modes.freight(f, u)  # waybills corroborated by the truck's trajectory
    yield from demo_risk_pool.risk_pool(f, u)  # a compensation pool fills up: uncovered, then held


def describe(update: dict) -> str:
    """One line per limit update: who, the move, status, available, and the reasons."""
    p = update["payload"]
    cur = p["limit"]["currency"]
    lim, prev = Decimal(p["limit"]["amount"]), Decimal(p["previous_limit"]["amount"])
    arrow = "↑" if lim > prev else "↓" if lim < prev else "="
    head = (f"  {p['borrower_id']:<22} v{p['version']:<3} {prev:>12,.0f} {arrow} {lim:>12,.0f} {cur}"
            f"  available {Decimal(p['available']['amount']):>12,.0f}  [{p['status']}]"
            + (f"  APR {p['pricing']['apr_pct']}% ({p['pricing']['grade']})" if p.get("pricing") else "")
            + (f"  pool-covered {Decimal(p['risk_pool']['covered']['amount']):,.0f}" if p.get("risk_pool") else ""))
    reasons = [f"      - {r['code']}: {r['text']}" for r in p["reasons"]]
    return "\n".join([head, *reasons])


def run_id() -> str:
    return (datetime.now(UTC) + timedelta()).strftime("%m%d%H%M%S")
