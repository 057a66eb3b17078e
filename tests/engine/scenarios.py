"""The credit-engine scenarios of issue 3, as event logs with the numbers they must give.

Each function returns the events of one story. The same logs run offline through the
replay (test_scenarios.py) and through the real broker and a worker
(test_broker.py), so both paths are held to the same figures.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.events import Envelope
from schemas.factory import EventFactory

# Monday-aligned weeks are not needed; utilisation windows are epoch weeks (day // 7).
WEEK0 = datetime.fromtimestamp(2933 * 7 * 86400, UTC)  # 2026-03-19, start of an epoch week
TAX_S = "91310115MA1K4ABC2X"
TAX_S2 = "91440300MA5FQ7XY3K"


def base(f: EventFactory, u: str, borrower: str, cap: str = "5000000") -> list[Envelope]:
    return [f.program(f"prg-{u}", cap=cap), f.borrower(borrower, f"prg-{u}"), f.consent(borrower),
            f.supplies(borrower, f"core-{u}")]


def receivables(u: str) -> tuple[list[Envelope], dict[str, str]]:
    """Two confirmed invoices (500k, 300k) and one disputed (200k): 0.8 x 800k = 640k."""
    f = EventFactory(f"rcv-{u}", WEEK0)
    s, core = f"sup-{u}", f"core-{u}"
    evs = base(f, u, s)
    for n, amount in (("A1", "500000"), ("A2", "300000"), ("A3", "200000")):
        ref = f.invoice_ref(TAX_S, f"{u}{n}", amount)
        evs += [f.invoice_issued(ref, s, core), f.invoice_action("confirmed", ref, s, core)]
    evs.append(f.invoice_action("disputed", f.invoice_ref(TAX_S, f"{u}A3", "200000"), s, core, reason="short delivery"))
    return evs, {s: "640000.00"}


def poor_delivery(u: str) -> tuple[list[Envelope], dict[str, str]]:
    """5 deliveries, 2 on time: score 0.4; open confirmed PO of 1m: 1m x 0.3 x 0.4 = 120k."""
    f = EventFactory(f"ord-{u}", WEEK0)
    s, core = f"sup-{u}", f"core-{u}"
    evs = base(f, u, s)
    for i in range(5):
        po = f"po-{u}-{i}"
        evs += [f.po("issued", po, core, s, "50000"), f.po("confirmed", po, core, s)]
        planned = f.now + timedelta(days=3)
        actual = planned + timedelta(days=(0 if i < 2 else 2))
        evs.append(f.delivered(po, s, planned, actual))
        f.advance(days=1)
    evs += [f.po("issued", f"po-{u}-big", core, s, "1000000"), f.po("confirmed", f"po-{u}-big", core, s)]
    return evs, {s: "120000.00"}


def delivery_of_a_counted_order(u: str) -> tuple[list[Envelope], dict[str, str]]:
    """Four 100k orders delivered on time, an open order of 1m, then a fifth 100k order
    confirmed and delivered on time. Before the fifth delivery the score is the prior
    0.80: (1m + 100k) x 0.30 x 0.80 = 264k. The fifth delivery makes the score 5/5 = 1.0
    *and* ends the fifth order: 1m x 0.30 x 1.0 = 300k. (Applied apart, the new score
    with the fifth order still counted gave 330k, a limit no state justifies: issue 10.2.)"""
    f = EventFactory(f"dlv-{u}", WEEK0)
    s, core = f"sup-{u}", f"core-{u}"
    evs = base(f, u, s)
    for i in range(5):
        po = f"po-{u}-{i}"
        evs += [f.po("issued", po, core, s, "100000"), f.po("confirmed", po, core, s)]
        if i == 4:
            evs += [f.po("issued", f"po-{u}-big", core, s, "1000000"), f.po("confirmed", f"po-{u}-big", core, s)]
        planned = f.now + timedelta(days=3)
        evs.append(f.delivered(po, s, planned, planned - timedelta(hours=2)))
        f.advance(days=1)
    return evs, {s: "300000.00"}


def order_never_delivered(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """A 100k order confirmed, due in 14 days, never delivered: 100k x 0.30 x 0.80 = 24k
    while the watermark is at most 14 days past the due date, 0 after. Another order
    issued later (issued orders do not count) moves the watermark: first exactly to the
    end of the grace (still counts), then one second past it."""
    f = EventFactory(f"und-{u}", WEEK0)
    s, core = f"sup-{u}", f"core-{u}"
    evs = base(f, u, s)
    evs += [f.po("issued", f"po-{u}", core, s, "100000", due_in_days=14), f.po("confirmed", f"po-{u}", core, s)]
    f.advance(days=28)
    evs.append(f.po("issued", f"po-{u}-b", core, s, "100000"))
    f.advance(seconds=1)
    evs.append(f.po("issued", f"po-{u}-c", core, s, "100000"))
    return evs, {"counting": "24000.00", "at_end_of_grace": "24000.00", "after": "0.00"}


def duplicate_invoice(u: str) -> tuple[list[Envelope], dict[str, str]]:
    """One 400k invoice issued twice by its seller and once by another: counted once."""
    f = EventFactory(f"dup-{u}", WEEK0)
    s, s2, core = f"sup-{u}", f"sup2-{u}", f"core-{u}"
    evs = base(f, u, s) + [f.borrower(s2, f"prg-{u}", tax_id=TAX_S2), f.consent(s2), f.supplies(s2, core)]
    ref = f.invoice_ref(TAX_S, f"{u}D1", "400000")
    evs += [f.invoice_issued(ref, s, core), f.invoice_action("confirmed", ref, s, core),
            f.invoice_issued(ref, s, core), f.invoice_issued(ref, s2, core)]
    return evs, {s: "320000.00", s2: "0.00"}


def represented_invoices(u: str) -> tuple[list[Envelope], dict[str, str]]:
    """Invoices presented again after they closed, and an invoice under another's tax id.

    ``sup`` (tax id TAX_S) has P1 (400k) confirmed, then paid: 0. It presents P1 again
    and the buyer confirms again. C1 (200k) of ``sup`` is cancelled; ``sup2`` (TAX_S2)
    presents it, quoting ``sup``'s tax id. ``sup2`` also presents F1 (100k), an invoice
    never seen, under ``sup``'s tax id, and the buyer confirms it. None of these count:
    both end at 0 (before 2026.12-1: ``sup`` 320k, ``sup2`` 80k + 160k = 240k)."""
    f = EventFactory(f"rep-{u}", WEEK0)
    s, s2, core = f"sup-{u}", f"sup2-{u}", f"core-{u}"
    evs = base(f, u, s) + [f.borrower(s2, f"prg-{u}", tax_id=TAX_S2), f.consent(s2), f.supplies(s2, core)]
    p1, c1, f1 = (f.invoice_ref(TAX_S, f"{u}{n}", a) for n, a in (("P1", "400000"), ("C1", "200000"),
                                                                    ("F1", "100000")))
    evs += [f.invoice_issued(p1, s, core), f.invoice_action("confirmed", p1, s, core),
            f.invoice_action("paid", p1, s, core),
            f.invoice_issued(p1, s, core), f.invoice_action("confirmed", p1, s, core),
            f.invoice_issued(c1, s, core), f.invoice_action("cancelled", c1, s, core),
            f.invoice_issued(c1, s2, core), f.invoice_action("confirmed", c1, s2, core),
            f.invoice_issued(f1, s2, core), f.invoice_action("confirmed", f1, s2, core)]
    return evs, {s: "0.00", s2: "0.00"}


def colliding_event_ids(u: str) -> tuple[list[Envelope], dict[str, str]]:
    """Another tenant's events reuse event ids (ids are each publisher's own choice).

    On receivables (640k, all from tenant ``core``): the borrower's own seller system
    (tenant ``sup``) issues invoice E1 (100k) and ``core`` confirms it under the same
    event id (+80k: 720k); lender ``bank-a`` draws down 100k and co-lender ``mfi-b``
    repays 40k under the same event id (outstanding 60k); then the borrower (tenant
    ``sup``) revokes its consent under the id of ``core``'s program registration: the
    facility is frozen at 0. Before 2026.12-1 each of the three was dropped as a
    duplicate of the other tenant's event (the revocation left the limit active)."""
    evs, _ = receivables(u)
    f = EventFactory(f"col-{u}", WEEK0 + timedelta(hours=1))
    s, core = f"sup-{u}", f"core-{u}"
    ref = f.invoice_ref(TAX_S, f"{u}E1", "100000")
    evs += [f.invoice_issued(ref, s, core).model_copy(update={"tenant": s, "event_id": f"col-{u}-inv"}),
            f.invoice_action("confirmed", ref, s, core).model_copy(update={"event_id": f"col-{u}-inv"}),
            f.drawdown(f"ln-{u}", s, f"prg-{u}", "100000").model_copy(update={"tenant": "bank-a",
                                                                               "event_id": f"col-{u}-led"}),
            f.repayment(f"ln-{u}", s, "40000").model_copy(update={"tenant": "mfi-b", "event_id": f"col-{u}-led"}),
            f.consent(s, granted=False).model_copy(update={"tenant": s, "event_id": evs[0].event_id})]
    return evs, {"before_revocation": "720000.00", "outstanding": "60000.00", "final": "0.00"}


def ledger_from_strangers(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """Who may move money. On receivables (640k; program registered by tenant ``core``,
    lenders ``bank-a`` and ``mfi-b``): tenant ``intruder`` draws down 500k and repays
    for the borrower, ``bank-a`` draws down naming another program, and ``intruder``
    re-registers the program with itself as the only lender and draws down again: all
    refused and dead-lettered. Then ``bank-a`` draws down 100k and the operator ``core``
    books a repayment of 30k: outstanding 70k, available 570k."""
    evs, _ = receivables(u)
    f = EventFactory(f"ent-{u}", WEEK0 + timedelta(hours=1))
    x = EventFactory(f"int-{u}", WEEK0 + timedelta(hours=1), tenant="intruder")
    bank = EventFactory(f"bka-{u}", WEEK0 + timedelta(hours=1), tenant="bank-a")
    s, prg, loan = f"sup-{u}", f"prg-{u}", f"ln-{u}"
    evs += [x.drawdown(loan, s, prg, "500000"), x.repayment(loan, s, "1000"),
            bank.drawdown(loan, s, f"prg-other-{u}", "100000"),
            x.program(prg, lenders=(("intruder", "1"),)), x.drawdown(loan, s, prg, "500000"),
            bank.drawdown(loan, s, prg, "100000"), f.repayment(loan, s, "30000")]
    return evs, {"refused": ["not_entitled", "not_entitled", "program_mismatch", "not_program_operator",
                             "not_entitled"], "outstanding": "70000.00", "available": "570000.00"}


def exposure_while_unavailable(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """Drawdowns and repayments while nothing is available. On receivables (640k): a
    drawdown of 700k on ln-1 (over-drawn: available 0), 10k more on ln-2, ln-1 overdue
    (frozen), ln-2 repaid 10k, then 5k more than its balance (a credit of 5k on ln-2:
    REPAYMENT_EXCEEDS_BALANCE), then 20k drawn on ln-2, which nets to 15k. Every move of
    ``outstanding`` is published though ``available`` stays 0."""
    evs, _ = receivables(u)
    f = EventFactory(f"exp-{u}", WEEK0 + timedelta(hours=1))
    s, prg = f"sup-{u}", f"prg-{u}"
    evs += [f.drawdown(f"ln1-{u}", s, prg, "700000"), f.drawdown(f"ln2-{u}", s, prg, "10000"),
            f.overdue(f"ln1-{u}", s, "700000"), f.repayment(f"ln2-{u}", s, "10000"),
            f.repayment(f"ln2-{u}", s, "5000"), f.drawdown(f"ln2-{u}", s, prg, "20000")]
    return evs, {"outstanding": ["700000.00", "710000.00", "710000.00", "700000.00", None, "715000.00"]}


def in_currency(u: str, currency: str, amount: str, drawn: str) -> tuple[list[Envelope], dict[str, str]]:
    """A program in ``currency``: one confirmed invoice of ``amount`` (x 0.80), then a
    drawdown of ``drawn`` in the currency and one of 1 CNY (refused: not the program's)."""
    from decimal import Decimal

    from schemas import events as ev
    from schemas.common import Money

    f = EventFactory(f"ccy-{u}", WEEK0)
    s, core, prg = f"sup-{u}", f"core-{u}", f"prg-{u}"
    program = f.program(prg)
    payload = program.payload.model_copy(update={  # type: ignore[attr-defined]
        "currency": currency, "cap": Money(amount=Decimal("900000000"), currency=currency)})
    evs = [program.model_copy(update={"payload": payload}), f.borrower(s, prg), f.consent(s), f.supplies(s, core)]
    ref = ev.InvoiceRef(seller_tax_id=TAX_S, invoice_number=f"{u}Y1", issue_date=f.now.date(),
                        total=Money(amount=Decimal(amount), currency=currency))
    evs += [f.invoice_issued(ref, s, core), f.invoice_action("confirmed", ref, s, core)]
    draw = f.drawdown(f"ln-{u}", s, prg, "1")
    evs += [draw.model_copy(update={"payload": draw.payload.model_copy(update={  # type: ignore[attr-defined]
        "amount": Money(amount=Decimal(drawn), currency=currency)})}), f.drawdown(f"ln-{u}", s, prg, "1")]
    return evs, {}


def overdue_notices_with_one_id(u: str) -> tuple[list[Envelope], dict[str, str]]:
    """Two lenders' loan systems each report an overdue loan, of two borrowers, under the
    same event id (each publisher numbers its own events): two alerts, two alert ids."""
    a, _ = receivables(f"{u}a")
    b, _ = receivables(f"{u}b")
    f = EventFactory(f"ovd-{u}", WEEK0 + timedelta(hours=1))
    one = f.overdue(f"ln-{u}a", f"sup-{u}a", "1000").model_copy(update={"tenant": "bank-a", "event_id": f"ovd-{u}"})
    two = f.overdue(f"ln-{u}b", f"sup-{u}b", "1000").model_copy(update={"tenant": "mfi-b", "event_id": f"ovd-{u}"})
    return a + b + [one, two], {}


def contractor_with_machines(f: EventFactory, u: str, c: str, *, truck: bool = False,
                             fence: tuple[float, float, float] | None = None) -> list[Envelope]:
    evs = [f.program(f"prg-{u}"), f.borrower(c, f"prg-{u}", kind="contractor"), f.consent(c),
           f.pledge(f"exc-{u}", c, f"prg-{u}", price="1000000", fence=fence)]
    if truck:
        evs.append(f.pledge(f"trk-{u}", c, f"prg-{u}", price="800000", kind="electric_truck"))
    return evs


def meter_days(f: EventFactory, mid: str, hours_per_day: list[float],
               silent: range = range(0)) -> list[list[Envelope]]:
    """A machine's hour meter read every 6 hours, one list of readings a day: on day ``d``
    it works ``hours_per_day[d]`` hours; on the ``silent`` days it reports nothing (the
    meter goes on)."""
    hours, days = 0.0, []
    for day, per_day in enumerate(hours_per_day):
        readings = []
        for _ in range(4):
            f.advance(hours=6)
            hours += per_day / 4
            if day not in silent:
                readings.append(f.equipment(mid, round(hours, 2), lat=28.2, lon=112.9))
        days.append(readings)
    return days


def utilisation_rising(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """Two weeks at baseline (8 h/day), then 12 h/day: a bounded +15%, only after two
    complete weekly windows confirm it. Readings every 6 hours."""
    f = EventFactory(f"utl-{u}", WEEK0)
    c, mid = f"ctr-{u}", f"exc-{u}"
    evs = contractor_with_machines(f, u, c)
    marks: dict[str, object] = {}
    for day, readings in enumerate(meter_days(f, mid, [8.0] * 14 + [12.0] * 22)):
        evs += readings
        if day in (13, 26, 35):
            marks[f"day{day}"] = len(evs)
    return evs, marks


def telemetry_outage(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """14 days at 8 h/day (readings every 6 h), then no reading for 3 days while the
    machine goes on working, then readings again: the first one after the gap shows 24 h
    more on the meter. The outage is not idleness: utilisation stays 1.0."""
    f = EventFactory(f"out-{u}", WEEK0)
    c, mid = f"ctr-{u}", f"exc-{u}"
    evs = contractor_with_machines(f, u, c)
    return evs + [e for day in meter_days(f, mid, [8.0] * 21, silent=range(14, 17)) for e in day], {}


def machine_stops_working(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """14 days at 8 h/day, then 9 days reporting every 6 h with 0 h worked."""
    f = EventFactory(f"idl-{u}", WEEK0)
    c, mid = f"ctr-{u}", f"exc-{u}"
    evs = contractor_with_machines(f, u, c)
    return evs + [e for day in meter_days(f, mid, [8.0] * 14 + [0.0] * 9) for e in day], {}


def battery_alarm(u: str) -> tuple[list[Envelope], dict[str, str]]:
    f = EventFactory(f"bat-{u}", WEEK0)
    c = f"ctr-{u}"
    evs = contractor_with_machines(f, u, c, truck=True)
    f.advance(hours=1)
    evs.append(f.battery(f"trk-{u}", "LFV2A21K8M4000007", soh=95))
    f.advance(hours=1)
    evs.append(f.battery(f"trk-{u}", "LFV2A21K8M4000007", soh=95, alarm=3))
    return evs, {}


def geofence_breach(u: str) -> tuple[list[Envelope], dict[str, str]]:
    f = EventFactory(f"geo-{u}", WEEK0)
    c, mid = f"ctr-{u}", f"exc-{u}"
    evs = contractor_with_machines(f, u, c, fence=(28.2, 112.9, 20.0))
    f.advance(hours=1)
    evs.append(f.equipment(mid, 10.0, lat=28.21, lon=112.91))
    f.advance(hours=5)
    evs.append(f.equipment(mid, 11.0, lat=28.9, lon=112.9))  # ~78 km north, 5 h later: plausible
    return evs, {}


def drawdown_repayment(u: str) -> tuple[list[Envelope], list[str]]:
    """Limit 640k; drawdown 200k -> available 440k; repayment 50k -> 490k."""
    evs, _ = receivables(u)
    f = EventFactory(f"led-{u}", WEEK0 + timedelta(hours=1))
    s = f"sup-{u}"
    evs += [f.drawdown(f"ln-{u}", s, f"prg-{u}", "200000"), f.repayment(f"ln-{u}", s, "50000")]
    return evs, ["640000.00", "440000.00", "490000.00"]


def tier2_distress(u: str) -> tuple[list[Envelope], list[str]]:
    """T2 sells 100k to tier-1 S1, which sells to the core. Core distressed: 80k -> 60k."""
    f = EventFactory(f"t2-{u}", WEEK0)
    core, s1, t2 = f"core-{u}", f"s1-{u}", f"t2-{u}"
    evs = [f.program(f"prg-{u}"), f.borrower(t2, f"prg-{u}", tax_id=TAX_S2), f.consent(t2),
           f.supplies(s1, core, 1), f.supplies(t2, s1, 2)]
    ref = f.invoice_ref(TAX_S2, f"{u}T1", "100000")
    evs += [f.invoice_issued(ref, t2, s1), f.invoice_action("confirmed", ref, t2, s1)]
    f.advance(hours=1)
    evs.append(f.party_status(core, "distressed", "missed bond coupon"))
    return evs, ["80000.00", "60000.00"]


def late_telemetry(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """A reissued (GB/T 32960 cmd 3) reading older than the machine's watermark."""
    f = EventFactory(f"late-{u}", WEEK0)
    c = f"ctr-{u}"
    evs = contractor_with_machines(f, u, c, truck=True)
    f.advance(hours=10)
    evs.append(f.battery(f"trk-{u}", "LFV2A21K8M4000007", soh=95))
    evs.append(f.battery(f"trk-{u}", "LFV2A21K8M4000007", soh=60, alarm=3, reissued=True,
                         at=f.now - timedelta(hours=5)))
    return evs, {}


def unique(u: str | None = None) -> str:
    return u or datetime.now(UTC).strftime("%H%M%S%f")


# A contractor's year (DOMAIN.md, seasonality): a quarter of the usual hours in December
# and January, half in February, the baseline otherwise (January first).
WINTER_PROFILE = ("0.25", "0.50", "1", "1", "1", "1", "1", "1", "1", "1", "1", "0.25")
NOV19 = WEEK0 + timedelta(weeks=35)  # 2026-11-19, the start of an epoch week


def winter_pause(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """Two contractors, each with one excavator (1m, baseline 8 h/day), work 8 h/day from
    19 November and 2 h/day from 1 December (a winter pause), readings every 6 hours, to
    29 December. ``ctr`` is in a program whose seasonal profile expects 25% in December:
    2 h/day is its full season, the factor stays 1.0. ``flat`` is in a program without a
    profile: 2 h/day is 25% of its baseline and its limit falls to the 0.30 floor."""
    f = EventFactory(f"win-{u}", NOV19)
    c, flat = f"ctr-{u}", f"flat-{u}"
    evs = [f.program(f"prg-{u}", seasonal_profile=list(WINTER_PROFILE)), f.program(f"prgf-{u}")]
    for b, prg in ((c, f"prg-{u}"), (flat, f"prgf-{u}")):
        evs += [f.borrower(b, prg, kind="contractor"), f.consent(b),
                f.pledge(f"exc-{b}", b, prg, price="1000000")]
    hours = 0.0
    marks: dict[str, object] = {}
    for day in range(40):  # 19 November .. 28 December; the last reading at 29 Dec 00:00
        per_day = 8.0 if day < 12 else 2.0
        for _ in range(4):
            f.advance(hours=6)
            hours += per_day / 4
            for b in (c, flat):
                evs.append(f.equipment(f"exc-{b}", round(hours, 2), lat=28.2, lon=112.9))
        if day == 11:
            marks["nov30"] = len(evs)
    return evs, marks


def dealer_floor_plan(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """A dealer of an OEM financed against its sales (以销定融), units of 500k wholesale.

    From 2026-03-19 (day 0): plans of 3m a month for March to May, 2m for June; ten
    units U1-U10 picked up on day 0. U1, U2 sold (days 5, 10) and repaid: 1m in the last
    30 days, nothing in the 30 before: the line waits (min of the windows: 0). U3-U5 sold
    (days 35, 40, 45) and repaid: on day 45 the windows hold 1.5m and 1m, the line is
    min x 2.0 = 2m. An audit on day 50 misses U9: its 500k is frozen (1.5m). U6 sold on
    day 52 and not repaid: on day 63, more than 10 days later, it is sold out of trust
    and the line is frozen (0); repaid on day 64 (1.5m). U7, U8 sold on days 70, 75 and
    repaid: the windows hold 1.5m and 1.5m, 3m is bounded by June's plan of 2m, less U9's
    500k (1.5m); an audit an hour later finds U9 (2m). On day 95 U9 and U10 are 95 days in
    stock: a curtailment step of 10% each (100k) under a line of min(1m, 1.5m) x 2 = 2m:
    1.9m."""
    f = EventFactory(f"dlr-{u}", WEEK0)
    d, oem, prg = f"dlr-{u}", f"oem-{u}", f"prg-{u}"
    evs = [f.program(prg), f.borrower(d, prg, kind="dealer"), f.consent(d)]
    for month, amount in (("2026-03", "3000000"), ("2026-04", "3000000"), ("2026-05", "3000000"),
                          ("2026-06", "2000000")):
        evs.append(f.dealer_plan(d, oem, month, amount, int(amount) // 500000))
    units = [f"U{i}-{u}" for i in range(1, 11)]
    evs += [f.pickup(d, oem, unit, "500000") for unit in units]
    marks: dict[str, object] = {}
    day = 0

    def at(n: int) -> None:
        nonlocal day
        f.advance(days=n - day)
        day = n

    def sold_and_repaid(n: int, unit: str) -> None:
        at(n)
        evs.append(f.retail_sale(d, unit))
        f.advance(hours=1)
        evs.append(f.unit_repaid(d, unit))

    for n, i in ((5, 0), (10, 1)):
        sold_and_repaid(n, units[i])
    marks["unconfirmed"] = len(evs)
    for n, i in ((35, 2), (40, 3), (45, 4)):
        sold_and_repaid(n, units[i])
    marks["confirmed"] = len(evs)
    at(50)
    evs.append(f.stock_audit(d, f"aud1-{u}", [units[5], units[6], units[7], units[9]]))  # U9 missing
    marks["missing"] = len(evs)
    at(52)
    evs.append(f.retail_sale(d, units[5]))
    at(63)
    evs.append(f.dealer_plan(d, oem, "2026-07", "2000000", 4))  # any input moves the watermark
    marks["out_of_trust"] = len(evs)
    at(64)
    evs.append(f.unit_repaid(d, units[5]))
    marks["repaid"] = len(evs)
    sold_and_repaid(70, units[6])
    sold_and_repaid(75, units[7])
    marks["plan_cap"] = len(evs)
    f.advance(hours=1)
    evs.append(f.stock_audit(d, f"aud2-{u}", [units[8], units[9]]))
    marks["found"] = len(evs)
    at(95)
    evs.append(f.stock_audit(d, f"aud3-{u}", [units[8], units[9]]))
    marks["curtailed"] = len(evs)
    return evs, marks


def warehouse_receipts(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """Inventory finance (仓单): a metals trader pledges warehouse receipts; the program's
    haircuts are 30% on copper and 25% on aluminium, nickel is not financed.

    Day 0: copper quoted 70,000 and aluminium 20,000 CNY/t. R1 (100 t copper) pledged:
    100 x 70,000 x 0.70 = 4.9m. R2 (200 t aluminium): + 200 x 20,000 x 0.75 = 3m (7.9m);
    R3 (10 t nickel): INVENTORY_NOT_ACCEPTED. 10 t of aluminium leave the warehouse under
    the pledge (STOCK_OUT_UNDER_PLEDGE): R2 = 2.85m, 7.75m. Day 1: 7m drawn. Day 2: copper
    falls to 55,000: R1 = 3.85m, limit 6.7m < 7m outstanding: INVENTORY_MARGIN_CALL for
    300,000. Another trader pledges R1 again: DUPLICATE_FINANCING. 300k repaid. Day 6:
    aluminium quoted again, copper's quote is 4 days old (more than 3): R1 frozen, 2.85m.
    Copper quoted at 60,000: 4.2m + 2.85m = 7.05m. 2.5m repaid, R2 released: 4.2m."""
    f = EventFactory(f"wr-{u}", WEEK0)
    t, t2, prg, wh = f"trd-{u}", f"trd2-{u}", f"prg-{u}", f"wh-{u}"
    # Commodity codes carry the run's id: quotes are kept per commodity by quote time
    # across everything on a broker, and another run's later quote would win.
    cu, al, ni = f"copper-{u}", f"aluminium-{u}", f"nickel-{u}"
    evs = [f.program(prg, cap="20000000", commodity_haircuts={cu: "0.30", al: "0.25"}),
           f.borrower(t, prg), f.consent(t), f.borrower(t2, prg, tax_id=TAX_S2), f.consent(t2),
           f.price(cu, "70000"), f.price(al, "20000"), f.price(ni, "130000"),
           f.receipt_issued(wh, "R1", t, cu, "100"), f.receipt_pledged(wh, "R1", t)]
    marks: dict[str, object] = {"copper": len(evs)}
    evs += [f.receipt_issued(wh, "R2", t, al, "200"), f.receipt_pledged(wh, "R2", t),
            f.receipt_issued(wh, "R3", t, ni, "10"), f.receipt_pledged(wh, "R3", t)]
    marks["both"] = len(evs)
    f.advance(hours=1)
    evs.append(f.stock_moved(wh, "R2", "out", "10"))
    marks["stock_out"] = len(evs)
    f.advance(days=1)
    evs.append(f.drawdown(f"ln-{u}", t, prg, "7000000"))
    marks["drawn"] = len(evs)
    f.advance(days=1)
    evs.append(f.price(cu, "55000"))
    marks["margin_call"] = len(evs)
    f.advance(hours=1)
    evs += [f.receipt_pledged(wh, "R1", t2), f.repayment(f"ln-{u}", t, "300000")]
    marks["repaid"] = len(evs)
    f.advance(days=4)
    evs.append(f.price(al, "20000"))
    marks["stale"] = len(evs)
    f.advance(hours=1)
    evs.append(f.price(cu, "60000"))
    marks["requoted"] = len(evs)
    f.advance(days=1)
    evs += [f.repayment(f"ln-{u}", t, "2500000"), f.receipt_released(wh, "R2", t)]
    marks["released"] = len(evs)
    return evs, marks


DEPOT, CONSIGNEE, ELSEWHERE = (28.20, 112.90), (28.60, 112.90, 1.0), (28.20, 113.40, 1.0)


def freight_waybills(u: str) -> tuple[list[Envelope], dict[str, object]]:
    """Freight receivables: carrier car-<u>'s truck (enrolled, not pledged) reports its
    position every 15 minutes; waybills for shipper shp-<u>, advance rate 0.80.

    Day 0: the truck drives from its depot to the consignee (28.60, 112.90), stays
    10:00-11:00 and returns; W1 (20,000, window 08:00-20:00) completes at 12:00 and is
    corroborated at once: 16,000. Day 1: the truck stays at the depot; W2 (to a site 49 km
    east, window 08:00-20:00) completes at 13:00: awaiting (FREIGHT_UNCORROBORATED); the
    first trail point after 20:00 settles it: WAYBILL_NOT_CORROBORATED, it never counts.
    Day 2: W3 (30,000, to the first consignee) completes at 08:00, before the positions
    that corroborate it at 10:00: 16,000 + 24,000 = 40,000. W1 paid: 24,000."""
    f = EventFactory(f"fw-{u}", WEEK0)
    c, shp, prg, trk = f"car-{u}", f"shp-{u}", f"prg-{u}", f"trk-{u}"
    evs = [f.program(prg, cap="1000000"), f.borrower(c, prg, kind="fleet_operator"), f.consent(c),
           f.supplies(c, shp), f.truck_enrolled(trk, c)]
    marks: dict[str, object] = {}
    day0 = WEEK0

    def at(day: int, hour: float) -> datetime:
        return day0 + timedelta(days=day, hours=hour)

    def drive(day: int, dest: tuple[float, float] | None, until: float, start: float = 0.0) -> None:
        """Positions every 15 min of ``day`` from ``start`` to ``until`` (hours): out to
        ``dest`` from 08:00 to 10:00, there until 11:00, back by 13:00; else the depot."""
        h = start
        while h < until:
            f.now = at(day, h)
            lat, lon = DEPOT
            if dest is not None and 8 <= h < 13:
                frac = min(h - 8, 2) / 2 if h < 11 else max(0.0, 1 - (h - 11) / 2)
                lat, lon = DEPOT[0] + (dest[0] - DEPOT[0]) * frac, DEPOT[1] + (dest[1] - DEPOT[1]) * frac
            evs.append(f.equipment(trk, 1000 + day * 24 + h, lat=round(lat, 5), lon=round(lon, 5)))
            h += 0.25

    def waybill(wid: str, day: int, hour: float, dest: tuple[float, float, float], amount: str) -> Envelope:
        f.now = at(day, hour)
        return f.waybill_completed(f"{wid}-{u}", trk, c, shp, dest, (at(day, 8), at(day, 20)), amount,
                                   (day0 + timedelta(days=30)).date())

    drive(0, CONSIGNEE[:2], 12.0)
    evs.append(waybill("W1", 0, 12.0, CONSIGNEE, "20000"))
    marks["w1"] = len(evs)
    drive(0, None, 24.0, start=12.25)
    drive(1, None, 13.0)
    evs.append(waybill("W2", 1, 13.0, ELSEWHERE, "50000"))
    marks["w2_awaiting"] = len(evs)
    drive(1, None, 20.5, start=13.25)
    marks["w2_failed"] = len(evs)
    drive(1, None, 24.0, start=20.5)
    evs.append(waybill("W3", 2, 8.0, CONSIGNEE, "30000"))
    drive(2, CONSIGNEE[:2], 14.0)
    marks["w3"] = len(evs)
    f.now = at(2, 15)
    evs.append(f.waybill_paid(f"W1-{u}", trk, c))
    marks["paid"] = len(evs)
    return evs, marks


def supplier_fades(u: str) -> tuple[list[Envelope], dict[str, int]]:
    """Early warning (issue 17): a supplier with a confirmed 1m invoice gets one 100k
    order a day for 35 days, each delivered on time two days later; from day 35 an
    order only every third day, each delivered two days late; on day 49 a 300k loan
    goes overdue. Its program lets an active warning cut the limit by up to 20%.
    ``marks``: the index of the first event of day 35 and of the overdue notice."""
    f = EventFactory(f"ew-{u}", WEEK0)
    s, core = f"sup-{u}", f"core-{u}"
    evs = [f.program(f"prg-{u}", ew_max_cut="0.20"), f.borrower(s, f"prg-{u}"), f.consent(s), f.supplies(s, core)]
    ref = f.invoice_ref(TAX_S, f"{u}E1", "1000000")
    evs += [f.invoice_issued(ref, s, core, due_in_days=120), f.invoice_action("confirmed", ref, s, core)]
    marks: dict[str, int] = {}
    start = f.now
    for day in range(49):
        if day == 35:
            marks["fading"] = len(evs)
        f.now = start + timedelta(days=day, hours=9)
        if day < 35 or day % 3 == 0:
            po = f"po-{u}-{day}"
            evs += [f.po("issued", po, core, s, "100000"), f.po("confirmed", po, core, s)]
        f.now = start + timedelta(days=day, hours=15)
        if day >= 2 and (day - 2 < 35 or (day - 2) % 3 == 0):
            late = day - 2 >= 35
            planned = start + timedelta(days=day - (2 if late else 0), hours=15)
            evs.append(f.delivered(f"po-{u}-{day - 2}", s, planned, f.now))
    f.now = start + timedelta(days=49, hours=9)
    evs.append(f.drawdown(f"ln-{u}", s, f"prg-{u}", "300000"))
    marks["overdue"] = len(evs)
    evs.append(f.overdue(f"ln-{u}", s, "300000", days=30))
    return evs, marks


def truck_fades(u: str) -> tuple[list[Envelope], dict[str, int]]:
    """Early warning from an odometer (issue 17): a contractor whose only machine is an
    electric truck (GB/T 32960 data: no hour meter) drives 200 km a day for 35 days
    (readings every 6 hours), then 15 km a day less each day (down to 20 km/day);
    on day 51 a 300k loan goes overdue. ``marks``: the first reading of day 35 and the
    overdue notice."""
    f = EventFactory(f"ewt-{u}", WEEK0)
    c, mid = f"ctr-{u}", f"trk-{u}"
    evs = [f.program(f"prg-{u}"), f.borrower(c, f"prg-{u}", kind="contractor"), f.consent(c),
           f.pledge(mid, c, f"prg-{u}", price="800000", kind="electric_truck")]
    marks: dict[str, int] = {}
    km = 1000.0
    for day in range(51):
        if day == 35:
            marks["fading"] = len(evs)
        per_day = 200.0 if day < 35 else max(20.0, 200.0 - 15 * (day - 34))
        for _ in range(4):
            f.advance(hours=6)
            km += per_day / 4
            evs.append(f.battery(mid, "LFV2A21K8M4000007", mileage=round(km, 1), lat=28.2, lon=112.9))
    f.advance(hours=3)
    evs.append(f.drawdown(f"ln-{u}", c, f"prg-{u}", "300000"))
    marks["overdue"] = len(evs)
    evs.append(f.overdue(f"ln-{u}", c, "300000", days=30))
    return evs, marks
