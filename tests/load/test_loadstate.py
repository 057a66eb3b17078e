"""`creditstream load state` at a small size through the real broker and a real worker:
every machine ends up in stage 1's table with its reading, and after each of the three
restarts (SIGTERM, SIGKILL, empty data folder) the worker processes a new reading.
Timings are the benchmark's business (docs/performance.md), not asserted here."""

from __future__ import annotations

import orjson
import pytest

from creditstream.cli import main

pytestmark = pytest.mark.integration
MACHINES = 2000


def test_load_state_counts_every_machine_and_recovers(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["load", "state", "--machines", str(MACHINES), "--fleet", "50", "--timeout", "180", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    res = orjson.loads(out.strip().splitlines()[-1])
    # Exactly this run's machines in the stage-1 databases, each with its reading applied:
    # a pledge processed (its signal sent) whose state is not kept is lost collateral.
    assert res["states"] == MACHINES, f"{res['lost_states']} machine states lost"
    assert res["states_with_reading"] == MACHINES
    assert res["heap"]["machines"]["keys"] >= MACHINES
    # The worker itself reported its caches: every machine and facility is cached at this size.
    assert res["worker_heap"]["lanes"]["machines"]["cached_states"] >= MACHINES - res["lost_states"]
    assert res["worker_heap"]["lanes"]["facilities"]["cached_states"] >= MACHINES // 50
    assert res["rss_mb"] > 0 and res["hwm_mb"] >= res["rss_mb"]
    # The probe after each restart was committed by stage 1 (the run raises otherwise) and
    # is in machine 0's state at the end: processed, not only skipped past.
    assert [r["mode"] for r in res["recoveries"]] == ["sigterm", "sigkill", "empty-dir"]
    assert all(r["probe_s"] > 0 for r in res["recoveries"])
    assert [r["applied"] for r in res["recoveries"]] == [True, True, True], res["recoveries"]
    # A new host has nothing on disk: it restored at least every machine from the changelog.
    assert res["recoveries"][2]["restored"].get("machines", 0) >= MACHINES
