"""The demo's early-warning chapter (issue 17.1; docs/credit-policy.md section 12).

A gear supplier whose orders come daily and on time for five weeks, then thin out and
arrive late: the engine raises EARLY_WARNING with the score and its drivers, and the
program's bounded rule (``ew_max_cut`` 0.20) cuts the limit by 7.5%. Orders are left
unconfirmed so they do not move the limit: the chapter prints only what the warning does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from schemas.events import Envelope
from schemas.factory import EventFactory


def fading_supplier(f: EventFactory, u: str) -> Iterator[tuple[str, list[Envelope]]]:
    prg, s, core, tax = f"watch-{u}", f"gears-{u}", f"xcmg-{u}", "91430100MA4LGEAR01"
    start = f.now
    ref = f.invoice_ref(tax, f"{u[:8]}G", "1000000")
    history = [f.program(prg, cap="3000000", lenders=(("bank-cmb", "1.0"),), ew_max_cut="0.20"),
               f.borrower(s, prg, tax_id=tax), f.consent(s), f.supplies(s, core),
               f.invoice_issued(ref, s, core, due_in_days=120), f.invoice_action("confirmed", ref, s, core)]
    fading: list[Envelope] = []
    for day in range(42):
        evs = history if day < 35 else fading
        f.now = start + timedelta(days=day, hours=9)
        if day < 35 or day % 3 == 0:
            evs.append(f.po("issued", f"po-{u}-g{day}", core, s, "100000"))
        f.now = start + timedelta(days=day, hours=15)
        if day >= 2 and (day - 2 < 35 or (day - 2) % 3 == 0):
            late = day - 2 >= 35
            evs.append(f.delivered(f"po-{u}-g{day - 2}", s, f.now - timedelta(days=2 if late else 0), f.now))
    yield "Early warning: a gear supplier gets an order a day for five weeks, each delivered on time", history
    yield "Its orders thin out to one in three days and arrive two days late: an early warning", fading


def lpr_published(f: EventFactory, u: str) -> Iterator[tuple[str, list[Envelope]]]:
    """Issue 17.3 (docs/credit-policy.md section 13): every limit carries an indicative
    APR from its risk grade; the one-year LPR published at 1.50% puts the legal ceiling
    at 6.00%, so the rates above it are capped (PRICE_CAPPED) and said again."""
    f.advance(hours=1)
    yield "The one-year LPR is published at 1.50%: no rate may exceed 6.00% (PRICE_CAPPED)", [
        f.reference_rate("1.50")]
