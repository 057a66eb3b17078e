"""Seasonality (issue 16.4): a program's seasonal profile; a declared winter pause is
judged against its own season, not read as a collapse of use. Offline through the replay
and through the real broker with a worker of this module."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas import codec
from schemas.factory import EventFactory
from streams.domain.policy import PolicyParams, utilisation_target
from streams.domain.season import expected_share, window_shares
from tests.engine import scenarios as sc
from tests.engine.test_broker import (
    Outputs,
    replay_final,
    send_phased,
    u,
)
from tests.engine.test_scenarios import codes, last_for, run


def test_a_winter_pause_in_the_programs_profile_keeps_the_limit() -> None:
    events, marks = sc.winter_pause("s1")
    limits, alerts, dead = run(events)
    assert dead == []
    # Not a collapse in its own season; the same hours in a flat program are one (and,
    # its use falling to 25% of its own recent level, an early warning: section 12).
    assert [(a["code"], a["borrower_id"]) for a in alerts] == [("UTILISATION_COLLAPSE", "flat-s1"),
                                                               ("EARLY_WARNING", "flat-s1")]
    seasonal, flat = last_for(limits, "ctr-s1"), last_for(limits, "flat-s1")
    machine = seasonal["components"][0]
    assert machine["detail"]["utilisation"] == "1.000" and machine["detail"]["season"] == "0.250"
    assert seasonal["limit"]["amount"] == "593000.00"
    assert "SEASONAL_BASELINE" in codes(seasonal) and "UTILISATION_LOW" not in codes(seasonal)
    assert "in December your program expects 25% of the usual hours" in next(
        r["text"] for r in seasonal["reasons"] if r["code"] == "SEASONAL_BASELINE")
    # Never lower than depreciation alone explains: no step down at the turn of the month.
    assert min(x["payload"]["limit"]["amount"] for x in limits
               if x["payload"]["borrower_id"] == "ctr-s1" and x["payload"]["version"] > 2) == "593000.00"
    # The same machine in a program without a profile falls to the utilisation floor.
    assert flat["components"][0]["detail"]["utilisation"] == "0.300"
    assert flat["limit"]["amount"] == "178000.00" and "UTILISATION_LOW" in codes(flat)
    assert "season" not in flat["components"][0]["detail"]


def test_windows_that_span_two_months_expect_a_mix_of_both() -> None:
    profile = tuple(float(x) for x in sc.WINTER_PROFILE)
    dec3 = int(sc.NOV19.timestamp() // 86400) + 14  # 3 December
    # r7 on 3 December: 26-30 November (1.0) and 1-2 December (0.25).
    assert expected_share(profile, dec3 - 7, dec3 - 1) == pytest.approx((5 * 1.0 + 2 * 0.25) / 7)
    assert window_shares((), dec3 * 86400.0) == (1.0, 1.0, 1.0)
    # 5 days at 8 h and 2 at 2 h are exactly that season: the factor is 1.0.
    sig = {"pledge": {"baseline": 8.0}, "last_seen": dec3 * 86400.0 + 3600, "r7": (5 * 8 + 2 * 2) / 7,
           "w1": None, "w2": None}
    params = PolicyParams(seasonal_profile=profile)
    assert utilisation_target(sig, params) == pytest.approx(1.0)
    assert utilisation_target(sig, PolicyParams()) == pytest.approx((44 / 7) / 8)


def test_a_profile_must_name_twelve_months_within_bounds() -> None:
    import orjson

    f = EventFactory("prf", sc.WEEK0)
    raw = orjson.loads(codec.encode(f.program("prg-prf", seasonal_profile=list(sc.WINTER_PROFILE))))
    assert codec.decode(orjson.dumps(raw)).payload.parameters.seasonal_profile[11] == Decimal("0.25")
    for bad in (["1"] * 11, ["1"] * 11 + ["0"], ["1"] * 11 + ["2.5"]):
        raw["payload"]["parameters"]["seasonal_profile"] = bad
        with pytest.raises(codec.DecodeError):
            codec.decode(orjson.dumps(raw))


# ---------------------------------------------------------------- through a real worker
@pytest.mark.integration
async def test_a_winter_pause_through_the_broker(producer, outputs: Outputs, mine, my_alerts) -> None:
    uid = u()
    events, _ = sc.winter_pause(uid)
    c, flat = f"ctr-{uid}", f"flat-{uid}"
    want = {b: replay_final(events, b) for b in (c, flat)}

    def collapses(rs: list) -> list[str]:
        return [a["borrower_id"] for a in my_alerts(rs, c, flat) if a["code"] == "UTILISATION_COLLAPSE"]

    await send_phased(producer, outputs, events, [c, flat])
    await outputs.wait(lambda rs: all(mine(rs, b) and mine(rs, b)[-1]["limit"] == want[b]["limit"]
                                      and mine(rs, b)[-1]["components"] == want[b]["components"]
                                      for b in (c, flat)) and collapses(rs), timeout=240)
    final = mine(outputs.records, c)[-1]
    assert final["limit"]["amount"] == "593000.00"
    # Not a collapse in its own season; the same hours in a flat program are one.
    assert collapses(outputs.records) == [flat]
    assert "SEASONAL_BASELINE" in {r["code"] for r in final["reasons"]}
    assert final["policy_version"] == "2026.12-3"
    assert mine(outputs.records, flat)[-1]["limit"]["amount"] == "178000.00"


def test_a_machine_first_seen_in_the_low_season_is_judged_by_the_days_it_was_seen() -> None:
    """Pledged on 1 December and working 2 h/day, the December season of its program:
    r7 covers only the days since its first one, so their season (25%) is the measure,
    not the 7 nominal days that reach back into November (which read as 32% of it)."""
    f = EventFactory("wst", sc.NOV19 + sc.timedelta(days=12))
    c = "ctr-wst"
    events = [f.program("prg-wst", seasonal_profile=list(sc.WINTER_PROFILE)),
              f.borrower(c, "prg-wst", kind="contractor"), f.consent(c), f.pledge("exc-wst", c, "prg-wst")]
    hours = 0.0
    for _ in range(5 * 4):  # 1-5 December, a reading every 6 hours
        f.advance(hours=6)
        hours += 0.5
        events.append(f.equipment("exc-wst", hours, lat=28.2, lon=112.9))
    limits, _, dead = run(events)
    assert dead == []
    utilisations = {x["payload"]["components"][0]["detail"]["utilisation"] for x in limits
                    if x["payload"]["components"]}
    assert utilisations == {"1.000"}
    profile = tuple(float(x) for x in sc.WINTER_PROFILE)
    dec1 = int(f.now.timestamp()) // 86400 - 5
    assert window_shares(profile, f.now.timestamp(), first_day=dec1)[0] == 0.25
