"""A few seconds of load through the real broker and a real worker: nothing is lost,
latency is recorded, the report is written. The long runs are benchmarks, not tests."""

from __future__ import annotations

import orjson
import pytest

from creditstream.cli import main
from load import slo

pytestmark = pytest.mark.integration
MACHINES = 120
RATE = 150
SECONDS = 4


def test_load_run_loses_nothing_and_records_latency(tmp_path) -> None:
    code = main(["load", "run", "--start-workers", "1", "--scenario", "steady", "--rate", str(RATE),
                 "--duration", f"{SECONDS}s", "--machines", str(MACHINES), "--contractors", "12",
                 "--cadence", "1800", "--workers", "2", "--slo", "p99<=20s,deadletters<=0", "--out", str(tmp_path), "--quiet"])
    results = orjson.loads((tmp_path / "results.json").read_bytes())
    assert code == 0, results.get("slo")
    gen = results["generator"]
    # Open loop, two generator processes: the whole schedule went out and was acknowledged.
    assert gen["processes"] == 2 and gen["sent"] == gen["acked"] == RATE * SECONDS and gen["errors"] == 0
    # Nothing lost: the engine committed past every event sent, and refused none.
    assert results["drained"] is True and results["final_lag"] == 0
    assert results["deadletters"]["count"] == 0
    # Each machine's first reading (its onboarding, one signal and decision per machine)
    # is sent and processed in the setup; the run's schedule starts at the second round.
    assert results["onboarding"]["readings"] == MACHINES and results["onboarding"]["s"] > 0
    lat = results["latency_ms"]
    assert lat["limit"]["count"] > 0 and results["untraced_outputs"] == 0
    assert 0 < lat["all"]["p50"] <= lat["all"]["p99"] <= lat["all"]["max"] < 20_000
    assert results["timeline"] and any(r.get("sent_per_s") for r in results["timeline"])
    assert results["workers"]["rss_mb_peak"] > 0  # the worker the run started, sampled from /proc
    assert (tmp_path / "report.html").read_text().count("<svg") == 6
    # The same figures fail a stricter objective.
    assert not all(v["ok"] for v in slo.check(slo.parse("max<=0.001ms"), results))


def test_a_burst_run_reports_when_the_lag_was_back(tmp_path) -> None:
    code = main(["load", "run", "--start-workers", "1", "--scenario", "burst", "--rate", "40",
                 "--duration", "9s", "--burst-seconds", "3", "--machines", str(MACHINES), "--contractors", "12",
                 "--cadence", "1800", "--workers", "1", "--slo", "p99<=20s", "--out", str(tmp_path), "--quiet"])
    results = orjson.loads((tmp_path / "results.json").read_bytes())
    burst = results["burst"]
    # 10x for 3 s from a third of the run: 400 events/s between t=3 and t=6.
    assert (burst["start_s"], burst["end_s"], burst["factor"]) == (3.0, 6.0, 10.0)
    assert results["drained"] is True and results["final_lag"] == 0
    assert burst["drained_after_s"] is not None and burst["ok"], burst
    assert any(c["clause"].startswith("lag back to its pre-burst level") and c["ok"] for c in results["slo"]["checks"])
    assert code == 0, results["slo"]
