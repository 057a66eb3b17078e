"""A price on every limit (issue 17.3): an indicative APR from a documented risk grade
and the program's pricing table, never above 4 x the one-year LPR (a reference-rate
event), gross and the subsidised net. Offline through the replay and through the broker."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas.factory import EventFactory
from streams.domain import pricing
from tests.engine import scenarios as sc
from tests.engine.test_broker import Outputs, replay_final, send_phased, u
from tests.engine.test_scenarios import codes, last_for, run

TABLE = {"A": "5.50", "B": "8.00", "C": "11.00", "D": "14.00", "E": "20.00"}


def priced(u: str, subsidy: str | None = None) -> tuple[list, str]:
    """A supplier with a confirmed 500k invoice to a buyer that then goes under watch,
    then into distress; the one-year LPR is published at 3.10%, later at 2.50%."""
    f = EventFactory(f"pr-{u}", sc.WEEK0)
    s, core = f"sup-{u}", f"core-{u}"
    params = {"pricing_table": TABLE, **({"interest_subsidy_share": subsidy} if subsidy else {})}
    evs = [f.program(f"prg-{u}", **params), f.borrower(s, f"prg-{u}"), f.consent(s), f.supplies(s, core)]
    ref = f.invoice_ref(sc.TAX_S, f"{u}P1", "500000")
    evs += [f.invoice_issued(ref, s, core), f.invoice_action("confirmed", ref, s, core)]
    f.advance(hours=1)
    evs.append(f.reference_rate("3.10"))
    f.advance(hours=1)
    evs.append(f.party_status(core, "distressed", "missed a bond coupon"))
    f.advance(hours=1)
    evs.append(f.reference_rate("2.50"))
    return evs, s


def test_the_grade_and_its_rate_and_the_legal_ceiling() -> None:
    events, s = priced("p1")
    limits, _, dead = run(events)
    assert dead == []
    mine = [x["payload"] for x in limits if x["payload"]["borrower_id"] == s]
    confirmed = next(x for x in mine if x["limit"]["amount"] == "400000.00")
    p = confirmed["pricing"]
    # Everything rests on a confirmed invoice of a healthy buyer, no early warning: 0 points, A.
    assert (p["grade"], p["grade_points"]["total"], p["apr_pct"], p["lpr_source"]) == ("A", 0, "5.50", "default")
    assert p["ceiling_pct"] == "12.00" and p["capped"] is False  # 4 x the default 3.00%
    # The published LPR (3.10%) moves the ceiling to 12.40%: said at once, the rate unchanged.
    published = next(x for x in mine if x["pricing"]["lpr_1y_pct"] == "3.10")
    assert published["pricing"]["ceiling_pct"] == "12.40" and published["limit"] == confirmed["limit"]
    assert published["version"] == confirmed["version"] + 1
    # The buyer in distress: its factor 0.5 gives 30 x 0.5 = 15 points (the invoice counts
    # at 50%: 200,000). Grade A still (below 20).
    distressed = next(x for x in mine if "BUYER_DISTRESSED" in codes(x))
    assert distressed["pricing"]["grade_points"] == {"early_warning": 0, "buyers": 15, "unconfirmed_assets": 0,
                                                     "total": 15}
    # The LPR at 2.50%: the ceiling 10.00%, above the table's A (5.50%): not capped.
    final = last_for(limits, s)
    assert final["pricing"]["ceiling_pct"] == "10.00" and final["pricing"]["apr_pct"] == "5.50"
    assert final["pricing"]["capped"] is False


def test_a_rate_above_four_times_the_lpr_is_capped_with_a_reason() -> None:
    f = EventFactory("pr-cap", sc.WEEK0)
    c = "ctr-cap"
    # A contractor: everything rests on a machine (20 points: grade B, 8.00%), LPR 1.50%.
    events = [f.program("prg-cap", pricing_table=TABLE), f.borrower(c, "prg-cap", kind="contractor"),
              f.consent(c), f.pledge("exc-cap", c, "prg-cap"), f.reference_rate("1.50")]
    limits, _, dead = run(events)
    assert dead == []
    final = last_for(limits, c)
    p = final["pricing"]
    assert (p["grade"], p["grade_points"]["unconfirmed_assets"]) == ("B", 20)
    assert (p["apr_pct"], p["ceiling_pct"], p["capped"]) == ("6.00", "6.00", True)
    assert "PRICE_CAPPED" in codes(final)
    text = next(r["text"] for r in final["reasons"] if r["code"] == "PRICE_CAPPED")
    assert "grade B (8.00%)" in text and "= 6.00%" in text


def test_a_subsidy_shows_gross_and_net() -> None:
    events, s = priced("p2", subsidy="0.30")
    limits, _, _ = run(events)
    final = last_for(limits, s)["pricing"]
    assert (final["apr_pct"], final["net_apr_pct"], final["subsidy_share"]) == ("5.50", "3.85", "0.30")


def test_only_the_engine_operator_sets_the_reference_rate() -> None:
    f = EventFactory("pr-own", sc.WEEK0)
    events = [f.program("prg-own"), f.borrower("sup-own", "prg-own"), f.consent("sup-own"),
              f.reference_rate("0.50", tenant="core")]
    limits, _, dead = run(events)
    assert [d["payload"]["reason"] for d in dead] == ["not_rate_owner"]
    assert last_for(limits, "sup-own")["pricing"]["lpr_source"] == "default"


def test_the_grade_bands() -> None:
    state = {"ew": {"score": 100}}
    receivable = [{"kind": "receivable", "contribution": Decimal("100"), "detail": {"buyer_factor": "0.0"}}]
    assert pricing.grade(state, receivable, Decimal("100")) == (
        "E", {"early_warning": 50, "buyers": 30, "unconfirmed_assets": 0, "total": 80})
    assert pricing.grade({}, [], Decimal("0"))[0] == "B"  # nothing confirmed: 20 points


# ---------------------------------------------------------------- through a real worker
@pytest.mark.integration
async def test_pricing_through_the_broker(producer, outputs: Outputs, mine) -> None:
    uid = u()
    events, s = priced(uid, subsidy="0.30")
    want = replay_final(events, s)
    await send_phased(producer, outputs, events, [s])
    await outputs.wait(lambda rs: bool(mine(rs, s)) and mine(rs, s)[-1]["pricing"]["lpr_1y_pct"] == "2.50"
                       and mine(rs, s)[-1]["limit"] == want["limit"], timeout=240)
    final = mine(outputs.records, s)[-1]
    assert final["pricing"] == want["pricing"]
    assert (final["pricing"]["apr_pct"], final["pricing"]["net_apr_pct"]) == ("5.50", "3.85")
