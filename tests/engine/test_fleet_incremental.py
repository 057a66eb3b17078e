"""Stage 2's equipment kept per machine (streams/domain/fleet.py) decides exactly what
valuing the whole fleet decides (policy.equipment), over generated logs of machine
signals: the passing of time across age steps, the utilisation window and silence,
releases, other currencies, program changes, consent, and states read again from the
store. Pure: no broker."""

from __future__ import annotations

from datetime import timedelta

import orjson
from hypothesis import HealthCheck
from hypothesis import strategies as st

from streams.domain import facility, fleet
from streams.domain.policy import PolicyParams, decide
from streams.replay import Replay
from tests.twins import given_twice

T0 = 1_780_000_000.0  # 2026-05-28
BID = "sup-fleet"


def program(params: dict) -> dict:
    return {"program_id": "P1", "currency": "CNY", "cap": {"amount": "50000000", "currency": "CNY"},
            "lenders": [{"lender_id": "bank-a", "share": "0.6"}, {"lender_id": "mfi-b", "share": "0.4"}],
            "parameters": params}


PARAMS: tuple[dict[str, object], ...] = ({}, {"silent_after_hours": 5}, {"util_step_window_days": 1},
          {"seasonal_profile": ["0.6", "0.5", "1", "1", "1", "1", "1", "1", "1", "1", "1", "0.8"]})

machine_signal = st.fixed_dictionaries({
    "m": st.integers(0, 5),
    "dt": st.one_of(st.just(0.0), st.floats(0, 600), st.floats(0, 5 * 86400), st.floats(0, 40 * 86400)),
    "lag": st.one_of(st.just(0.0), st.floats(0, 10 * 3600), st.floats(0, 5 * 86400)),
    "hours": st.one_of(st.none(), st.floats(0, 25000)),
    "r7": st.one_of(st.none(), st.floats(0, 20)),
    "w1": st.one_of(st.none(), st.floats(0, 20)),
    "w2": st.one_of(st.none(), st.floats(0, 20)),
    "soh": st.one_of(st.none(), st.floats(50, 100)),
    "alarm": st.sampled_from((0, 0, 1, 3)),
    "critical": st.booleans(),
    "in_fence": st.sampled_from((True, True, True, False)),
    "acquired": st.sampled_from(("2016-01-01", "2024-06-30", "2026-05-28", "2027-01-01")),
    "life": st.sampled_from((1, 10, 30)),
    "price": st.sampled_from(("450000", "1234567.89", "99")),
    "currency": st.sampled_from(("CNY", "CNY", "CNY", "USD")),
})
action = st.one_of(
    st.tuples(st.just("signal"), machine_signal),
    st.tuples(st.just("release"), st.integers(0, 5)),
    st.tuples(st.just("tick"), st.one_of(st.floats(0, 3600), st.floats(0, 30 * 86400))),
    st.tuples(st.just("program"), st.integers(0, len(PARAMS) - 1)),
    st.tuples(st.just("consent"), st.booleans()),
    st.tuples(st.just("reload"), st.just(0)),
)


def signal(kind: str, asset: str, seq: int, at: float, **data) -> dict:
    return {"kind": kind, "borrower_id": BID, "asset_id": asset, "seq": seq, "at": at,
            "triggers": [f"e{seq}"], **data}


def same(a, b) -> bool:
    return (a.limit, a.status, a.codes, a.sums, a.available, a.outstanding, a.lenders, a.components, a.reasons) == (
        b.limit, b.status, b.codes, b.sums, b.available, b.outstanding, b.lenders, b.components, b.reasons)


def _incremental_fleet_decides_what_the_whole_fleet_decides(actions) -> None:
    state = facility.new_state(BID)
    seq, at = 0, T0
    facility.apply_signal(state, signal("program", "program", (seq := seq + 1), at, program_id="P1",
                                        program=program({}), operator="op", tax_ref=None))
    facility.apply_signal(state, signal("consent", "consent", (seq := seq + 1), at, granted=True))
    for kind, arg in actions:
        if kind == "signal":
            at += arg["dt"]
            pledge = {"borrower_id": BID, "program_id": "P1", "kind": "excavator", "price": arg["price"],
                      "currency": arg["currency"], "acquired_on": arg["acquired"], "life_years": arg["life"],
                      "life_hours": 20000, "baseline": 8.0, "fence": None, "pledged_at": T0}
            sig = signal("machine", f"M{arg['m']}", (seq := seq + 1), at, pledge=pledge, hours=arg["hours"],
                         r7=arg["r7"], w1=arg["w1"], w2=arg["w2"], soh=arg["soh"], alarm=arg["alarm"],
                         critical=arg["critical"], in_fence=arg["in_fence"], last_seen=at - arg["lag"],
                         first_day=None)
        elif kind == "release":
            sig = signal("machine_released", f"M{arg}", (seq := seq + 1), at)
        elif kind == "tick":  # another input moves the watermark (here: buyer factors)
            at += arg
            sig = signal("buyers", "buyers", (seq := seq + 1), at, factors={})
        elif kind == "program":
            sig = signal("program", "program", (seq := seq + 1), at, program_id="P1",
                         program=program(PARAMS[arg]), operator="op", tax_ref=None)
        elif kind == "consent":
            sig = signal("consent", "consent", (seq := seq + 1), at, granted=arg)
        else:  # the store hands out a state read again (a refusal, a rewind, a cache eviction)
            state = orjson.loads(orjson.dumps(state))
            continue
        facility.apply_signal(state, sig)
        params = PolicyParams.for_program(state["program"])
        kept = decide(state, params, fleet.equipment(state, params))
        whole = decide(state, params)
        assert same(kept, whole), (kind, arg, state["watermark"])



(test_the_incremental_fleet_decides_what_the_whole_fleet_decides,
 test_the_incremental_fleet_decides_what_the_whole_fleet_decides_full) = given_twice(
    _incremental_fleet_decides_what_the_whole_fleet_decides, st.lists(action, min_size=1, max_size=60),
    full=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_a_world_replays_byte_identical_with_and_without_the_kept_fleet(monkeypatch) -> None:
    """The load world's log (fleets of many machines reporting every 10 minutes, with
    setup, business events and dealer flows) gives the same bytes either way."""
    from load.world import BusinessSim, Plan, TelemetrySim, World, WorldConfig, to_record

    world = World(WorldConfig(seed=7, tag="Lfleet", contractors=4, machines=120, cadence_s=600))
    log = [value for _t, _k, value in world.setup_records()]
    biz = BusinessSim(world)
    for slot, recs in TelemetrySim(world, Plan("utilisation_drop", drop_round=20)).slots(120 * 50):
        log += [value for _t, _k, value in recs]
        if slot % 40 == 0:
            log.append(to_record(biz.next(world.cfg.start + timedelta(seconds=slot * 5)))[2])

    def run() -> list[bytes]:
        r = Replay()
        return [orjson.dumps(o.value) for raw in log for o in r.feed(raw)]

    kept = run()
    monkeypatch.setattr(fleet, "equipment", lambda state, params: None)  # decide values the whole fleet
    whole = run()
    assert len(kept) == len(whole) and kept == whole
    assert sum(b'"limit.updated"' in o for o in kept) > 50


def test_the_kept_fleets_are_bounded_and_a_dropped_one_is_valued_again(monkeypatch) -> None:
    monkeypatch.setattr(fleet, "MAX_CACHED_MACHINES", 6)
    monkeypatch.setattr(fleet, "_FLEETS", {})
    monkeypatch.setattr(fleet, "_cached", 0)
    states = []
    for b in range(4):
        state = facility.new_state(f"{BID}{b}")
        facility.apply_signal(state, signal("program", "program", 1, T0, program_id="P1", program=program({}),
                                            operator="op", tax_ref=None) | {"borrower_id": f"{BID}{b}"})
        for m in range(4):
            pledge = {"borrower_id": f"{BID}{b}", "program_id": "P1", "kind": "excavator", "price": "450000",
                      "currency": "CNY", "acquired_on": "2024-06-30", "life_years": 10, "life_hours": 20000,
                      "baseline": 8.0, "fence": None, "pledged_at": T0}
            facility.apply_signal(state, signal("machine", f"M{m}", 2 + m, T0 + m, pledge=pledge, hours=100.0 * m,
                                                r7=None, w1=None, w2=None, soh=None, alarm=0, critical=False,
                                                in_fence=True, last_seen=T0 + m, first_day=None)
                                  | {"borrower_id": f"{BID}{b}"})
        states.append(state)
    for _ in range(2):  # the second pass values the fleets dropped in the first again
        for state in states:
            params = PolicyParams.for_program(state["program"])
            assert same(decide(state, params, fleet.equipment(state, params)), decide(state, params))
            assert sum(len(f.entries) for f in fleet._FLEETS.values()) <= 6 + 4
    assert fleet._cached == sum(len(f.entries) for f in fleet._FLEETS.values())
