"""How load.earlywarning counts (docs/credit-policy.md section 12.5): caught, false
alarms, lead times, the borrowers left out of utilisation_drop, and the misses list.
Pure: made-up world results, no simulation."""

from __future__ import annotations

from load.earlywarning import DAY, WorldResult, figures, misses


def world() -> WorldResult:
    r = WorldResult("gradual_decline", 7, 4, start=0.0)
    r.kinds = {"a": "supplier", "b": "supplier", "c": "contractor/electric_truck", "d": "supplier"}
    r.scored = {"a", "b", "d"}
    r.distress = {"a": 60 * DAY, "b": 60 * DAY, "c": 55 * DAY}
    # a: warned 9 days ahead (and once 40 days ahead: too early to count, a false alarm);
    # b: never warned (its peak score is listed); c: never scored; d: warned, never distressed.
    r.warned = {"a": [20 * DAY, 51 * DAY], "d": [45 * DAY]}
    r.scores = {"a": [(20 * DAY, 61, "order_intake +25, disputes +8 of 65"), (51 * DAY, 70, "fulfilment +20 of 65")],
                "b": [(40 * DAY, 41, "order_intake +21 of 55"), (50 * DAY, 57, "order_intake +25, fulfilment +6 of 55")],
                "d": [(45 * DAY, 62, "order_intake +22, fulfilment +18 of 65")]}
    return r


def test_caught_false_alarms_and_leads() -> None:
    f = figures([world()])
    assert (f.positives, f.warned_positives, f.false_alarms, f.unscored) == (3, 1, 2, 1)
    assert f.leads == [9.0] and f.precision == 1 / 3 and f.recall == 1 / 3


def test_the_misses_say_what_the_score_saw() -> None:
    lines = misses([world()])
    assert lines == [
        "gradual_decline seed 7 a (supplier): false alarm, distress day 60.0; peak 70 on day 51.0: "
        "fulfilment +20 of 65",
        "gradual_decline seed 7 b (supplier): missed, distress day 60.0; peak 57 on day 50.0: "
        "order_intake +25, fulfilment +6 of 55",
        "gradual_decline seed 7 c (contractor/electric_truck): missed, distress day 55.0; never scored",
        "gradual_decline seed 7 d (supplier): false alarm, warned day 45.0; peak 62 on day 45.0: "
        "order_intake +22, fulfilment +18 of 65",
    ]
