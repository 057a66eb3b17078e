"""Issue 10.4: MACHINE_SILENT exactly when more than 72 h passed since the last reading.

A machine reads every hour for 10 h; only its first reading is signalled (nothing
material moves within a day), so before the fix stage 2 measured silence from that first
reading and called the machine silent 10 h early. Another machine of the program, on the
same telemetry partition, reads 36 h later: stage 1's time passes the first machine's
check, and stage 2 is told the exact last reading. Drawdowns then ask for decisions at
exactly 72 h after it (not silent) and one second later (silent). The same log runs
through the replay and a real worker.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas import codec
from schemas.events import Envelope
from schemas.factory import EventFactory
from schemas.topics import BY_NAME, DEADLETTER_TOPIC, LIMITS_TOPIC, SIGNALS_TOPIC, TELEMETRY_TOPIC
from streams.domain.silence import TELL_AFTER_S, partition_of
from streams.replay import Replay
from tests.engine.scenarios import WEEK0

H = 3600.0


def same_partition(first: str, prefix: str) -> str:
    """A machine id on ``first``'s telemetry partition (the clock is per partition)."""
    want = partition_of(first.encode(), BY_NAME[TELEMETRY_TOPIC].partitions)
    return next(m for m in (f"{prefix}{i}" for i in range(1000))
                if partition_of(m.encode(), BY_NAME[TELEMETRY_TOPIC].partitions) == want)


def silence_log(u: str) -> tuple[list[Envelope], dict[str, str]]:
    """(events, {"t": id of the last reading, "at72": drawdown at +72 h, "after": at +72 h 1 s})."""
    f = EventFactory(f"sil-{u}", WEEK0)
    c, p, m1 = f"ctr-{u}", f"prg-{u}", f"exc-{u}"
    m2 = same_partition(m1, f"exb-{u}-")
    evs: list[Envelope] = [f.program(p), f.borrower(c, p, kind="contractor"), f.consent(c),
                           f.pledge(m1, c, p), f.pledge(m2, c, p)]
    f.advance(hours=1)
    for i in range(11):  # t-10h .. t, hourly, 0.5 h of work each
        evs.append(f.equipment(m1, 100.0 + i * 0.5, lat=28.2, lon=112.9))
        if i < 10:
            f.advance(hours=1)
    t = f.now
    evs.append(f.equipment(m2, 50.0, lat=28.2, lon=112.9, at=t + timedelta(hours=36)))
    f.now = t + timedelta(hours=72)
    evs.append(f.drawdown(f"ln-{u}", c, p, "1000"))
    f.now = t + timedelta(hours=72, seconds=1)
    evs.append(f.drawdown(f"ln-{u}", c, p, "1000"))
    return evs, {"m1": m1, "last": evs[15].event_id, "at72": evs[-2].event_id, "after": evs[-1].event_id}


def decisions(events: list[Envelope]) -> dict[str, list[dict]]:
    """Per input event id, the limit updates it caused (replay)."""
    r = Replay()
    return {e.event_id: [o.value["payload"] for o in r.feed(codec.encode(e)) if o.topic == LIMITS_TOPIC]
            for e in events}


def silent(update: dict, machine: str) -> bool:
    return any(r["code"] == "MACHINE_SILENT" and machine in r["text"] for r in update["reasons"])


def test_tail_check_is_after_the_heartbeat() -> None:
    # A machine that keeps reporting is signalled by its heartbeat before its check.
    assert TELL_AFTER_S > 24 * H


def test_silent_exactly_after_72_hours_from_the_last_reading_replay() -> None:
    events, ids = silence_log("r1")
    out = decisions(events)
    at72, after = out[ids["at72"]], out[ids["after"]]
    assert len(at72) == 1 and len(after) == 1
    assert not silent(at72[0], ids["m1"]), "silent at exactly 72 h after the last reading"
    assert silent(after[0], ids["m1"]), "not silent 72 h 1 s after the last reading"
    # No decision before that calls it silent either.
    assert not any(silent(u, ids["m1"]) for eid, us in out.items() if eid != ids["after"] for u in us)


def test_the_tail_is_told_once_with_its_last_reading_as_trigger() -> None:
    """Another borrower's machine of the program, on the partition, reads 30 h later:
    the first borrower gets one update, caused by its machine's last reading, and
    nothing more at the next record."""
    f = EventFactory("tail", WEEK0)
    p, c1, c2, m1 = "prg-tail", "ctr-tail1", "ctr-tail2", "exc-tail"
    m2 = same_partition(m1, "exb-tail-")
    events = [f.program(p), f.borrower(c1, p, kind="contractor"), f.consent(c1),
              f.borrower(c2, p, kind="contractor"), f.consent(c2), f.pledge(m1, c1, p), f.pledge(m2, c2, p)]
    for i in range(11):
        f.advance(hours=1)
        events.append(f.equipment(m1, 100.0 + i * 0.5))
    last = events[-1]
    events += [f.equipment(m2, 10.0, at=f.now + timedelta(hours=30)),
               f.equipment(m2, 10.5, at=f.now + timedelta(hours=31))]
    r = Replay()
    outs = [[o for o in r.feed(codec.encode(e))] for e in events]
    assert not [o for os in outs for o in os if o.topic == DEADLETTER_TOPIC]
    told = [o.value["payload"] for o in outs[-2] if o.topic == LIMITS_TOPIC and o.key == c1]
    assert len(told) == 1 and told[0]["trigger_event_ids"] == [last.event_id]
    assert told[0]["watermark"] == last.occurred_at.isoformat().replace("+00:00", "Z")
    assert not [o for o in outs[-1] if o.topic == LIMITS_TOPIC and o.key == c1]


def test_a_machine_that_keeps_reporting_costs_no_extra_signal() -> None:
    """Readings every hour for 3 days with another machine of the program on the
    partition: stage 1 sends the same signals as without the silence checks."""
    f = EventFactory("keep", WEEK0)
    c, p, m1 = "ctr-keep", "prg-keep", "exc-keep"
    m2 = same_partition(m1, "exb-keep-")
    events = [f.program(p), f.borrower(c, p, kind="contractor"), f.consent(c), f.pledge(m1, c, p), f.pledge(m2, c, p)]
    for i in range(72):
        f.advance(hours=1)
        events += [f.equipment(m1, 100.0 + i * 0.3), f.equipment(m2, 10.0 + i * 0.3)]
    r = Replay()
    proc = next(x for x in r.processors if x.name == "machines")
    sigs = [o for e in events if e.type.startswith("telemetry")
            for o in proc.process(r.stores["machines"], TELEMETRY_TOPIC, e.payload.machine_id.encode(),  # type: ignore[attr-defined]
                                  codec.encode(e))
            if o.topic == SIGNALS_TOPIC]
    assert all(s.value["triggers"] for s in sigs), "a signal without a reading: a tail check fired"


@pytest.mark.integration
async def test_silent_exactly_after_72_hours_from_the_last_reading_worker(producer, outputs, mine) -> None:
    from connectors.kafka_io import produce_events
    from tests.engine.test_broker import u

    uid = u()
    events, ids = silence_log(uid)
    c = f"ctr-{uid}"
    replayed = decisions(events)
    await produce_events(producer, events[:3])
    await outputs.wait(lambda rs: bool(mine(rs, c)))
    await produce_events(producer, events[3:5])
    await outputs.wait(lambda rs: len(mine(rs, c)[-1]["components"]) == 2)
    # The readings, then the second machine's: its decision is at +36 h.
    await produce_events(producer, events[5:-2])
    t36 = events[-3].occurred_at.isoformat().replace("+00:00", "Z")
    await outputs.wait(lambda rs: any(x["watermark"] == t36 for x in mine(rs, c)))
    await produce_events(producer, events[-2:-1])
    await outputs.wait(lambda rs: ids["at72"] in mine(rs, c)[-1]["trigger_event_ids"])
    await produce_events(producer, events[-1:])
    await outputs.wait(lambda rs: ids["after"] in mine(rs, c)[-1]["trigger_event_ids"])
    got = mine(outputs.records, c)
    at72 = next(x for x in got if ids["at72"] in x["trigger_event_ids"])
    after = got[-1]
    assert not silent(at72, ids["m1"]) and silent(after, ids["m1"])
    assert not any(silent(x, ids["m1"]) for x in got[:-1])
    # The same decisions as the replay of the same log.
    assert (at72["limit"], after["limit"]) == (replayed[ids["at72"]][0]["limit"], replayed[ids["after"]][0]["limit"])
