"""The send schedule, the generator's item order, latency bookkeeping, SLOs and the report."""

from __future__ import annotations

import time
from xml.etree import ElementTree

import pytest
from aiokafka import TopicPartition

from load import report, slo
from load.generator import GenSpec, GenStats, items, merge, send_all
from load.latency import LagSample, LatencyRecorder, caught_up
from load.schedule import Schedule, for_scenario
from load.world import Plan, TelemetrySim, World, WorldConfig, plan_for

CFG = WorldConfig(tag="Lsched", machines=40, contractors=4)


def test_steady_schedule_is_fixed_in_advance() -> None:
    s = Schedule.steady(200, 5)
    times = list(s.times())
    assert s.total == len(times) == 1000
    assert times[0] == 0 and times[-1] == pytest.approx(5 - 1 / 200)
    assert all(b - a == pytest.approx(1 / 200) for a, b in zip(times, times[1:], strict=False))
    assert [s.due(i) for i in range(0, 1000, 97)] == [times[i] for i in range(0, 1000, 97)]
    with pytest.raises(IndexError):
        s.due(1000)


def test_burst_is_ten_times_the_rate_for_its_length() -> None:
    s = for_scenario("burst", 100, 300)
    assert [(seg.start_s, seg.duration_s, seg.rate) for seg in s.segments] == [
        (0, 100, 100), (100, 60, 1000), (160, 140, 100)]
    assert s.total == 100 * 240 + 1000 * 60
    assert s.rate_at(130) == 1000 and s.rate_at(170) == 100
    short = for_scenario("burst", 100, 30)  # a short run gets a burst of a third of it
    assert [seg.duration_s for seg in short.segments] == [10, 10, 10]
    times = list(s.times())
    assert times == sorted(times) and len(times) == s.total
    assert s.scaled(0.5).total == s.total // 2


def test_generator_items_are_in_due_order_and_cover_the_schedule() -> None:
    world = World(CFG)
    tel, biz = Schedule.steady(95, 4), Schedule.steady(5, 4)
    plan = plan_for("core_default", world, tel.total, 4)
    spec = GenSpec("unused:9092", CFG, plan, tel, biz, time_scale=100.0, processes=2)
    per_process = [list(items(spec, p)) for p in range(2)]
    for its in per_process:
        dues = [d for d, _ in its]
        assert dues == sorted(dues)
    topics = [t for its in per_process for _, recs in its for t, _, _ in recs]
    assert topics.count("cs.telemetry") == tel.total
    business = [t for t in topics if t != "cs.telemetry"]
    scripted = 1 + 2 * len([d for d in world.dealers if d.buyer_id == world.cores[0].party_id])
    assert len(business) == biz.total + scripted
    # Business and scripted events come from process 0 only.
    assert all(t == "cs.telemetry" for _, recs in per_process[1] for t, _, _ in recs)


def test_the_onboarding_round_sent_in_the_setup_is_not_sent_again() -> None:
    """load run sends every machine's first reading with the setup (first_slot): the
    generators then send exactly the world's next slots, on the schedule from slot 0."""
    world = World(CFG)
    tel = Schedule.steady(95, 4)
    spec = GenSpec("unused:9092", CFG, Plan(), tel, Schedule.steady(0, 4), time_scale=100.0, processes=2,
                   first_slot=CFG.machines)
    sent = sorted(v for p in range(2) for _due, recs in items(spec, p) for t, _k, v in recs if t == "cs.telemetry")
    world_slots = [v for _j, recs in TelemetrySim(world, Plan()).slots(CFG.machines + tel.total) for _t, _k, v in recs]
    assert sent == sorted(world_slots[CFG.machines:])
    dues = [d for p in range(2) for d, _ in items(spec, p)]
    assert min(dues) == tel.due(0)


@pytest.mark.integration
async def test_sends_are_open_loop_and_lateness_is_recorded(bootstrap: str) -> None:
    """A slow start does not slow the schedule: the late events go at once, counted late."""
    spec = GenSpec(bootstrap, CFG, plan_for("steady", World(CFG), 200, 1), Schedule.steady(200, 1),
                   Schedule.steady(0.0001, 1), time_scale=10.0, behind_ms=50)

    async def late_start() -> float:
        return time.time() - 0.5  # half the schedule is already overdue

    t = time.monotonic()
    stats = await send_all(spec, 0, late_start)
    took = time.monotonic() - t
    summary = merge([stats])
    assert summary["sent"] == summary["acked"] == 200 and summary["errors"] == 0
    assert summary["lateness_ms"]["max"] >= 400
    assert summary["behind"] and summary["behind"][0]["late_ms"] >= 400
    assert took < 1.5  # not paced by anything but the schedule
    assert sum(int(o) + 1 for o in summary["high_offsets"]["cs.telemetry"].values()) > 0


def test_recorder_percentiles_and_seconds() -> None:
    rec = LatencyRecorder(t0=1000.0)
    base = 1000 * 10**9
    for i in range(1, 101):  # 1..100 ms, all read in second 0
        rec.record("limit", base - i * 10**6 + 5 * 10**8, base + 5 * 10**8)
    rec.record("telemetry_signal", None, base + 15 * 10**8)  # no header: counted, not timed
    rec.dead_letter("unpledged_machine", {"topic": "cs.telemetry"}, base + 16 * 10**8)
    out = rec.summary()
    lim = out["latency_ms"]["limit"]
    assert lim["count"] == 100 and 49 <= lim["p50"] <= 51 and 98 <= lim["p99"] <= 100.1
    assert out["latency_ms"]["all"]["count"] == 100 and out["untraced_outputs"] == 1
    assert out["deadletters"] == {"count": 1, "reasons": {"unpledged_machine": 1},
                                  "samples": [{"topic": "cs.telemetry"}]}
    assert rec.seconds[0].counts["limit"] == 100 and rec.seconds[0].p99_ms >= 98
    assert rec.seconds[1].counts["deadletter"] == 1


def test_caught_up_needs_every_partition_past_the_last_sent_offset() -> None:
    sample = LagSample(0, {}, {TopicPartition("cs.telemetry", 0): 11, TopicPartition("cs.telemetry", 1): 5})
    assert caught_up(sample, {"cs.telemetry": {"0": 10, "1": 4}})
    assert not caught_up(sample, {"cs.telemetry": {"0": 10, "1": 5}})
    assert not caught_up(sample, {"cs.ledger": {"0": 0}})


def test_slo_parse_and_check() -> None:
    clauses = slo.parse("p99<=500ms, limit.max<=2s, p99.9<=1.5s, deadletters<=0")
    assert [(c.series, c.stat, c.limit) for c in clauses] == [
        ("all", "p99", 500), ("limit", "max", 2000), ("all", "p99.9", 1500), ("all", "deadletters", 0)]
    results = {"latency_ms": {"all": {"p99": 120.0, "p99.9": 1600.0}, "limit": {"max": 900.0}},
               "deadletters": {"count": 0}}
    assert [v["ok"] for v in slo.check(clauses, results)] == [True, True, False, True]
    assert not slo.check(slo.parse("signal.p50<=1s"), results)[0]["ok"]  # nothing measured: not met
    for bad in ("p99<500ms", "p99<=500", "latency<=1s", "deadletters<=2ms"):
        with pytest.raises(ValueError):
            slo.parse(bad)


def test_report_is_valid_html_with_svg_plots(tmp_path) -> None:
    results = {
        "run": "Lx", "scenario": "steady", "rate": 100, "duration_s": 3,
        "timeline": [{"t": float(t), "sent_per_s": 100.0, "processed_per_s": 99.0, "outputs_per_s": 20,
                      "p50_ms": 10.0, "p99_ms": 40.0 + t, "max_ms": 50.0, "lag": 5 * t, "gen_late_ms": 0.5}
                     for t in range(4)],
        "percentile_curve": {"all": [(0.0, 1.0), (50.0, 10.0), (99.0, 40.0), (99.9, 45.0), (100.0, 50.0)]},
        "latency_ms": {"all": {"count": 80, "p50": 10.0, "p99": 40.0, "max": 50.0}},
        "generator": {"sent": 300, "acked": 300, "lateness_ms": {"p99": 1, "max": 2}},
        "deadletters": {"count": 0, "reasons": {}}, "alerts": {"GEOFENCE_BREACH": 1},
        "slo": {"spec": "p99<=500ms", "ok": True, "checks": [{"clause": "p99<=500ms", "actual": 40.0,
                                                             "limit": 500.0, "ok": True}]},
    }
    js, page = report.write(results, tmp_path)
    assert js.exists()
    text = page.read_text()
    svgs = [s.split("</svg>")[0] + "</svg>" for s in text.split("<svg")[1:]]
    assert len(svgs) == 5
    for s in svgs:
        root = ElementTree.fromstring("<svg" + s)
        assert root.tag.endswith("svg")
    assert text.count("<polyline") >= 8 and "SLO p99&lt;=500ms: met" in text


def test_cli_refuses_a_bad_slo_before_touching_the_broker(capsys) -> None:
    from creditstream.cli import main

    assert main(["load", "run", "--slo", "p99 under 5"]) == 2
    assert "not understood" in capsys.readouterr().err


def test_generator_stats_merge_across_processes() -> None:
    a = GenStats(0, sent=3, acked=3, high={"cs.telemetry": {0: 7, 1: 2}}, behind=[(4, 120.0)])
    b = GenStats(1, sent=2, acked=2, high={"cs.telemetry": {0: 9}})
    m = merge([a, b])
    assert m["sent"] == 5 and m["high_offsets"] == {"cs.telemetry": {"0": 9, "1": 2}}
    assert m["behind"] == [{"process": 0, "second": 4, "late_ms": 120.0}]

