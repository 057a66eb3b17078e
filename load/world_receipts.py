"""The simulator's warehouse receipts (inventory finance, docs/credit-policy.md 1.5).

Per core enterprise, metals traders in an inventory program that finances three
commodities (haircuts 30%, 25%, 40%; quotes count for 14 days of event time in the
simulator, where business time runs coarse). Flows, on their own generator so the other
flows keep their sequence: a price quote (a random walk, 1 in 5 a fall of 8%; each commodity at least weekly); a
receipt issued, pledged, drawn against at 90% of what it counts for, repaid and
released later; goods leaving under a pledged receipt (an EPCIS-style stock movement);
a receipt pledged again by another trader (DUPLICATE_FINANCING). A fall after a
drawdown leaves the loans above the limit: INVENTORY_MARGIN_CALL.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from schemas import events as ev
from schemas.common import Money

TRADERS_PER_CORE = 2
COMMODITIES = (("cu", "68000", "0.30"), ("al", "19000", "0.25"), ("rb", "14000", "0.40"))
# A commodity not quoted for this long (event time) is quoted by the next inventory flow.
QUOTE_EVERY = timedelta(days=7)


def _cny(amount: Decimal) -> Money:
    return Money(amount=amount.quantize(Decimal("0.01"), rounding=ROUND_DOWN), currency="CNY")


class Receipts:
    """The inventory mode of one world: its parties, setup events and flows."""

    def __init__(self, world: Any) -> None:
        from load.world import Party, tax_id

        cfg = world.cfg
        self.world, self.tag = world, cfg.tag
        self.commodities = {f"{cfg.tag}-{c}": (Decimal(p), Decimal(h)) for c, p, h in COMMODITIES}
        self.traders: list[Any] = []
        self.programs: dict[str, tuple[tuple[str, str], ...]] = {}
        for c, core in enumerate(world.cores):
            pid = f"{cfg.tag}-inv{c}"
            self.programs[pid] = world.programs[f"{cfg.tag}-scf{c}"]
            for i in range(TRADERS_PER_CORE):
                self.traders.append(Party(f"{cfg.tag}-trd{c}x{i}", "supplier", pid,
                                          tax_id(cfg.seed, 20_000 + c * 100 + i), core.region, core.party_id, 1))
        self.rng = random.Random(f"{cfg.seed}-receipts")
        self.price = {c: p for c, (p, _) in self.commodities.items()}
        self.quoted = {c: cfg.start - timedelta(days=1) for c in self.price}  # event time of the last quote
        # Per trader, its pledged receipts: [warehouse, receipt, quantity still held].
        self.pledged: dict[str, list[list[Any]]] = {t.party_id: [] for t in self.traders}

    def setup_events(self, mk: Any, at: datetime) -> list[ev.Envelope]:
        """The inventory programs, the traders and the first quotes."""
        out: list[ev.Envelope] = [mk(ev.ProgramRegistered, at, ev.ProgramPayload(
            program_id=pid, name=f"Inventory {pid}", cap=_cny(Decimal("50000000")),
            lenders=[ev.LenderShare(lender_id=lid, share=Decimal(sh)) for lid, sh in lenders],
            parameters=ev.ProgramParameters(commodity_haircuts={c: h for c, (_, h) in self.commodities.items()},
                                            price_max_age_days=14)))
            for pid, lenders in self.programs.items()]
        for t in self.traders:
            out += [mk(ev.BorrowerRegistered, at, ev.BorrowerPayload(
                party_id=t.party_id, kind=ev.PartyKind.supplier, program_id=t.program_id,
                name=f"Company {t.party_id}", tax_id=t.tax_id, region=t.region)),
                # pydantic.mypy misses the default_factory of third_party_ids (inside Annotated).
                mk(ev.ConsentGranted, at, ev.ConsentPayload(borrower_id=t.party_id))]  # type: ignore[call-arg]
        out += [mk(ev.MarketPrice, at, ev.MarketPricePayload(commodity=c, price=_cny(p), unit="t"))
                for c, p in self.price.items()]
        return out

    def crash(self, mk: Any, at: datetime, fall: Decimal = Decimal("0.20")) -> list[ev.Envelope]:
        """The ``commodity_crash`` scenario: every commodity quoted ``fall`` lower at once."""
        out = []
        for c in sorted(self.price):
            self.price[c] = (self.price[c] * (1 - fall)).quantize(Decimal("1"))
            self.quoted[c] = at
            out.append(mk(ev.MarketPrice, at, ev.MarketPricePayload(commodity=c, price=_cny(self.price[c]), unit="t")))
        return out

    def flow(self, biz: Any, at: datetime) -> ev.Envelope:
        """One new inventory flow at ``at``; follow-ups through ``biz._later``."""
        rng, mk = self.rng, biz.mk
        biz.n_flows += 1
        n = biz.n_flows
        roll = rng.random()
        stale = sorted(c for c, q in self.quoted.items() if at - q > QUOTE_EVERY)
        if roll < 0.15 or stale:
            c = stale[0] if stale else rng.choice(sorted(self.price))
            self.quoted[c] = at
            move = Decimal("-0.08") if rng.random() < 0.2 else Decimal(str(round(rng.gauss(0, 0.02), 4)))
            self.price[c] = (self.price[c] * (1 + move)).quantize(Decimal("1"))
            return mk(ev.MarketPrice, at, ev.MarketPricePayload(commodity=c, price=_cny(self.price[c]), unit="t"))
        trader = rng.choice(self.traders)
        tid, held = trader.party_id, self.pledged[trader.party_id]
        wh = f"{self.tag}-wh{self.traders.index(trader) % 3}"
        if roll < 0.45 and held and held[0][2] >= 1:
            entry = held[0]
            out = (entry[2] * Decimal("0.05")).quantize(Decimal("0.001"))
            entry[2] -= out
            return mk(ev.StockMoved, at, ev.StockMovedPayload(
                warehouse_id=entry[0], receipt_id=entry[1], direction=ev.StockDirection.out, quantity=out,
                reference=f"{self.tag}-epc{n}"))
        if roll < 0.50:
            others = [(t, r) for t, rs in self.pledged.items() if t != tid for r in rs]
            if others:
                _, (owh, rid, _) = others[rng.randrange(len(others))]  # another trader's receipt
                return mk(ev.ReceiptPledged, at, ev.ReceiptPledgedPayload(warehouse_id=owh, receipt_id=rid,
                                                                         borrower_id=tid))
        c = rng.choice(sorted(self.price))
        qty = Decimal(rng.randrange(20, 200))
        rid = f"{self.tag}-wr{n}"
        entry = [wh, rid, qty]
        counts = qty * self.price[c] * (1 - self.commodities[c][1])
        loan = f"{self.tag}-iln{n}"
        drawn = _cny(counts * Decimal("0.90"))

        def pledge(t: datetime) -> ev.Envelope:
            held.append(entry)
            return mk(ev.ReceiptPledged, t, ev.ReceiptPledgedPayload(warehouse_id=wh, receipt_id=rid, borrower_id=tid))

        def release(t: datetime) -> ev.Envelope:
            held.remove(entry)
            return mk(ev.ReceiptReleased, t, ev.ReceiptReleasedPayload(warehouse_id=wh, receipt_id=rid,
                                                                       borrower_id=tid))

        biz._later(1, pledge)
        biz._later(3, lambda t: mk(ev.Drawdown, t, ev.DrawdownPayload(loan_id=loan, borrower_id=tid,
                                                                      program_id=trader.program_id, amount=drawn)))
        biz._later(150, lambda t: mk(ev.Repayment, t, ev.RepaymentPayload(loan_id=loan, borrower_id=tid, amount=drawn)))
        biz._later(151, release)
        return mk(ev.ReceiptIssued, at, ev.ReceiptIssuedPayload(warehouse_id=wh, receipt_id=rid, owner_id=tid,
                                                                commodity=c, quantity=qty, unit="t"))

