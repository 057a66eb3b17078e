"""Short chaos run: SIGKILL a worker mid-stream; nothing lost, nothing conflicting."""

from __future__ import annotations

import pytest

from load import chaos

pytestmark = pytest.mark.integration


async def test_killed_worker_loses_nothing_and_matches_the_replay() -> None:
    res = await chaos.run("kill", events=3000, machines=120, rate=1000, seed=3)
    assert res.events_in > 3000 and res.updates_out >= res.borrowers > 0
    assert (res.lost, res.duplicates, res.final_mismatches) == (0, 0, 0), res.line()
    assert res.recover_s < 30
