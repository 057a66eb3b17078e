"""The declared types of the signal records (streams/domain/signals.py), of a machine's
stage-1 state (machines.MachineState) and of a borrower's stage-2 state
(facility.FacilityState) are what the engine makes: every kind stage 2 applies is
declared, and every signal and state of a simulated month has exactly its declared
fields (pure: the replay's processors, no broker)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import cache
from typing import Any

from load.history import history
from load.world import WorldConfig
from schemas.topics import SIGNALS_TOPIC
from streams.domain import facility
from streams.domain.facility import FacilityState
from streams.domain.machines import MachineState
from streams.domain.signals import BATCH, SIGNAL_TYPES, BatchSignal, Output, SignalHead, read_signal
from streams.replay import Replay

CFG = WorldConfig(seed=5, tag="Lst", machines=30, contractors=4, cadence_s=6 * 3600)


class Recording(Replay):
    """A replay that keeps every signal record, as stage 2 reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.signals: list[dict[str, Any]] = []

    def _run(self, topic: str, key: bytes, raw: bytes) -> Iterator[Output]:
        if topic == SIGNALS_TOPIC:
            self.signals.append(dict(read_signal(raw)))
        yield from super()._run(topic, key, raw)


def test_every_kind_stage_2_applies_is_declared() -> None:
    assert set(SIGNAL_TYPES) >= facility.SIGNAL_KINDS
    assert BATCH not in SIGNAL_TYPES


def _fields(value: dict[str, Any], declared: Any) -> None:
    required, optional = declared.__required_keys__, declared.__optional_keys__
    assert required <= value.keys() <= required | optional, (declared.__name__, sorted(value.keys() ^ required))


def _check(sig: dict[str, Any]) -> str:
    kind = sig["kind"]
    _fields(sig, BatchSignal if kind == BATCH else SIGNAL_TYPES[kind])
    assert SignalHead.__required_keys__ <= sig.keys()
    return kind


@cache
def _month() -> Recording:
    replay = Recording()
    for line in history(CFG, days=30):
        for _ in replay.feed(line):
            pass
    return replay


def test_every_machine_state_of_a_simulated_month_has_the_declared_fields() -> None:
    # The machines' store also holds the silence checks' clocks and buckets (silence.py).
    states = [v for k, v in _month().stores["machines"].items() if not k.startswith("~")]
    assert len(states) >= CFG.machines
    for state in states:
        _fields(state, MachineState)
    assert any("told" in s for s in states) and any("km" in s for s in states)


def test_every_facility_state_of_a_simulated_month_has_the_declared_fields() -> None:
    states = list(_month().stores["facilities"].values())
    assert len(states) >= CFG.contractors
    for state in states:
        _fields(state, FacilityState)
    assert any("prices" in s for s in states) and any("collapse" in s for s in states)


def test_every_signal_of_a_simulated_month_has_its_kind_s_fields() -> None:
    replay = _month()
    seen: Counter[str] = Counter()
    for sig in replay.signals:
        seen[_check(sig)] += 1
        for part in sig.get("signals", ()):
            seen[_check(part)] += 1
    # The world's flows: machines, invoices, orders and deliveries, dealers, warehouse
    # receipts and their prices, freight, registrations, consent and buyers.
    assert {"machine", "receivable", "order", "delivery", "dealer", "receipt", "price", "freight", "program",
            "consent", "buyers", BATCH} <= set(seen), seen
