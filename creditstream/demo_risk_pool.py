"""The demo's risk-sharing chapter (issue 17.2; docs/credit-policy.md section 14).

A provincial compensation pool, fund 100,000 leveraged 1:10 (capacity 1,000,000),
covers two programs: one lets a limit rise beyond the pool uncovered, the other holds
the increase until the pool has room. Three suppliers fill it, one paid invoice frees it.
"""

from __future__ import annotations

from collections.abc import Iterator

from schemas.events import Envelope
from schemas.factory import EventFactory


def risk_pool(f: EventFactory, u: str) -> Iterator[tuple[str, list[Envelope]]]:
    """valves 600,000 covered; pumps 600,000 of which 400,000 covered (POOL_UNCOVERED);
    seals 300,000 held at 0 (POOL_HOLD); valves' invoice paid: pumps covered whole and
    seals' 300,000 released."""
    pool, open_prg, held_prg, core = f"hunan-guarantee-{u}", f"pool-open-{u}", f"pool-hold-{u}", f"zoomlion-{u}"
    lenders = (("bank-cmb", "0.6"), ("mfi-hunan", "0.4"))
    who = {"valves": ("91430100MA4LVALVE1", "750000", open_prg), "pumps": ("91430100MA4LPUMPS1", "750000", open_prg),
           "seals": ("91430100MA4LSEALS1", "375000", held_prg)}
    refs = {}
    registry: list[Envelope] = [
        f.program(open_prg, cap="3000000", lenders=lenders,
                  risk_pool=f.risk_pool(pool, "100000", "10", "0.60", "uncovered")),
        f.program(held_prg, cap="3000000", lenders=lenders,
                  risk_pool=f.risk_pool(pool, "100000", "10", "0.60", "hold"))]
    for name, (tax, _, prg) in who.items():
        b = f"{name}-{u}"
        registry += [f.borrower(b, prg, tax_id=tax), f.consent(b), f.supplies(b, core)]
    yield ("Risk sharing: a compensation pool (fund 100,000 x 10 = 1,000,000, 60% of losses) covers two programs",
           registry)
    for name, (tax, amount, _) in who.items():
        f.advance(hours=1)
        b = f"{name}-{u}"
        refs[name] = f.invoice_ref(tax, f"{u[:8]}{name[0].upper()}", amount)
        caption = {"valves": "Valves' invoice is confirmed: 600,000, all covered by the pool",
                   "pumps": "Pumps' invoice is confirmed: the pool has 400,000 left (POOL_UNCOVERED)",
                   "seals": "Seals' invoice is confirmed: the pool is full, its increase is held (POOL_HOLD)"}[name]
        yield caption, [f.invoice_issued(refs[name], b, core), f.invoice_action("confirmed", refs[name], b, core)]
    f.advance(hours=1)
    yield "Valves' invoice is paid: the pool covers pumps whole and releases seals' 300,000", [
        f.invoice_action("paid", refs["valves"], f"valves-{u}", core)]
