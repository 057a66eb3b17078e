"""Short chaos runs: each engine fault while telemetry and business events flow; nothing
lost, nothing conflicting, every final limit equal to the offline replay (issue 19).

Business events (an invoice, order, shipment, drawdown or repayment after every 10
readings) are what make a fault visible: with telemetry alone no limit moves. A pause of
the only worker is enough to build a backlog of every topic: before the order lifecycle
was kept as facts, borrowers ended on a higher limit than the replay. The broker fault
runs on the three-broker cluster in tests/test_stack_cluster.py.
"""

from __future__ import annotations

import pytest

from load import chaos

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fault", ["kill", "rebalance", "pause", "churn", "late"])
async def test_engine_fault_with_business_events_loses_nothing_and_matches_the_replay(fault: str) -> None:
    res = await chaos.run(fault, events=4000, machines=120, rate=800, seed=3, business_every=10)
    assert res.events_in > 4000 and res.updates_out >= res.borrowers > 0
    assert (res.lost, res.duplicates, res.final_mismatches) == (0, 0, 0), res.line()
    assert res.recover_s < 30


async def test_a_rolling_restart_of_three_workers_publishes_nothing_twice() -> None:
    """Each worker stopped (SIGTERM) and started again in turn, as a deployment does: a
    worker's stop ends its lanes between batches with their offsets committed
    (Lane.stop), so no batch is decided twice and no version published again."""
    res = await chaos.run("roll", events=3000, machines=100, rate=600, seed=5, business_every=10, workers=3)
    assert res.events_in > 3000 and res.updates_out >= res.borrowers > 0
    assert (res.lost, res.duplicates, res.final_mismatches) == (0, 0, 0), res.line()
    assert res.identical_repeats == 0, res.line()
