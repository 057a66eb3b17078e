"""Stage 1 for machines keys a reading by its event time, not by its id.

A repeat of an applied reading is at or before the machine's latest reading, so it is
late and changes nothing (docs/credit-policy.md section 8). Keeping every reading's id
as well grew each machine's state, and its changelog record, by ~40% in a world of
machines reporting once a minute, and cost a list copy per reading.
"""

from __future__ import annotations

import copy
from datetime import timedelta

import orjson

from schemas.factory import EventFactory
from streams.domain import machines
from tests.engine import scenarios as sc

VIN = "LFV2A21K8M4000007"


def pledged(kind: str = "excavator") -> tuple[EventFactory, machines.State]:
    f = EventFactory("rep", sc.WEEK0)
    state = machines.new_state("m-rep")
    machines.on_pledge(state, f.pledge("m-rep", "ctr-rep", "prg-rep", kind=kind))
    return f, state


def test_in_order_readings_keep_no_ids_and_the_state_does_not_grow() -> None:
    f, state = pledged()
    sizes = []
    for i in range(40):
        f.advance(minutes=1)
        machines.on_telemetry(state, f.equipment("m-rep", 100 + i / 64))  # short floats
        sizes.append(len(orjson.dumps(state)))
    assert len(state["seen"]) == 1  # the pledge's id only
    # The same figures re-written, nothing accumulated: with an id per
    # reading the state grew by ~25 bytes a reading up to the window of 16.
    assert max(sizes[1:]) - min(sizes[1:]) < 24


def test_a_repeated_reading_changes_nothing() -> None:
    f, state = pledged()
    f.advance(hours=1)
    first = f.equipment("m-rep", 100)
    machines.on_telemetry(state, first)
    f.advance(hours=1)
    second = f.equipment("m-rep", 101)
    machines.on_telemetry(state, second)
    before = copy.deepcopy(state)
    for repeat in (second, first):
        assert machines.on_telemetry(state, repeat) == []
    assert state == before


def alerts(out: list) -> list[str]:
    return [o.value["payload"]["code"] for o in out if o.value.get("type") == "alert.raised"]


def test_a_repeated_alarm_alerts_once_in_order_or_late() -> None:
    f, state = pledged(kind="electric_truck")
    f.advance(hours=1)
    alarm = f.battery("m-rep", VIN, alarm=3)
    assert alerts(machines.on_telemetry(state, alarm)) == ["BATTERY_ALARM_L3"]
    assert machines.on_telemetry(state, alarm) == []  # the same reading again
    f.advance(hours=1)
    machines.on_telemetry(state, f.battery("m-rep", VIN, alarm=0))
    late = f.battery("m-rep", VIN, alarm=3, at=alarm.occurred_at + timedelta(minutes=1))
    assert alerts(machines.on_telemetry(state, late)) == ["BATTERY_ALARM_L3"]  # a new late alarm alerts
    assert machines.on_telemetry(state, late) == []  # its repeat does not
    assert machines.on_telemetry(state, alarm) == []  # nor the first one's
