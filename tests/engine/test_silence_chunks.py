"""Stage 1's silence checks keep every stored value small, however many machines are
told within one slot (silence.py): a fleet onboarded together is told at once, and one
key per slot made a 1.8 MB value for 75,000 machines of a program on a partition,
rewritten with every batch and over the broker's message size from ~170,000."""

from __future__ import annotations

from typing import Any

import orjson

from streams.domain import silence
from streams.domain.signals import Output

AT = 1_772_409_600.0  # 2026-03-02T00:00Z
N = 3 * silence.CHUNK + 5


def machine(i: int) -> dict[str, Any]:
    return {"mid": f"m-{i}", "pledge": {"program_id": "prg"}, "told": AT + i % 60, "ts": AT + 3600}


def tell(state: Any) -> list[Output]:
    state["told"] = state["ts"]  # what a machine signal does (machines._maybe_signal)
    told_of.append(state["mid"])
    return []


told_of: list[str] = []


def test_one_slot_of_many_machines_is_kept_in_bounded_values_and_told_in_order() -> None:
    store: dict[str, Any] = {}
    for i in range(N):
        store[f"m-{i}"] = machine(i)
        silence.told(store, 0, store[f"m-{i}"])
    sizes = {k: len(orjson.dumps(v)) for k, v in store.items() if k.startswith("~")}
    assert max(sizes.values()) < 100_000, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    told_of.clear()
    now = AT + silence.TELL_AFTER_S + 2 * silence.SLOT_S
    assert silence.advance(store, 0, "prg", now, tell) == []
    assert told_of == [f"m-{i}" for i in range(N)]  # every machine once, in the order told
    told_of.clear()
    assert silence.advance(store, 0, "prg", now, tell) == [] and told_of == []  # nothing twice
    slot = int((AT + silence.TELL_AFTER_S) // silence.SLOT_S)  # every machine's first check
    clock = store[silence._clock_key(0, "prg")]  # noqa: SLF001
    assert slot not in clock["due"] and str(slot) not in clock.get("chunks", {})
    assert len(clock["due"]) == 1  # the checks of the signals just sent, due a day later


def test_a_store_written_before_chunks_is_still_checked() -> None:
    """One key per slot, no chunk count in the clock: chunk 0 is that key."""
    slot = int((AT + silence.TELL_AFTER_S) // silence.SLOT_S)
    store: dict[str, Any] = {f"m-{i}": machine(0) | {"mid": f"m-{i}"} for i in range(3)}
    store[f"~due:0:prg:{slot % silence.RING}"] = {str(slot): [[f"m-{i}", AT] for i in range(3)]}
    store["~clock:0:prg"] = {"due": [slot]}
    told_of.clear()
    silence.advance(store, 0, "prg", (slot + 1) * silence.SLOT_S, tell)
    assert told_of == ["m-0", "m-1", "m-2"]
