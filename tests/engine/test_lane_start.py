"""A lane started with a new broker waits for its group coordinator, through the real broker.

On a new broker the group coordinator (``__consumer_offsets``) is created on first use and
answers GroupCoordinatorNotAvailable for a few seconds. A lane asks the coordinator for
its group's offsets before it consumes (streams.fastlane: whether to take over a Faust
agent's offsets); on a fresh CI stack that answer failed the first lane test and would
have stopped a worker started with its broker. The test has the real admin client answer
"not available" three times, as the new broker did, then the broker's own answer.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from tests.engine.test_lane_stop import machine_lane

pytestmark = pytest.mark.integration


async def test_a_lane_waits_for_a_new_broker_s_group_coordinator(
        bootstrap: str, uid: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    lane, _, _ = await machine_lane(bootstrap, f"cs-start-{uid}", tmp_path, uid, seed=17, machines=5, events=10)
    asked: list[str] = []
    real = AIOKafkaAdminClient.list_consumer_group_offsets

    async def new_broker(self: AIOKafkaAdminClient, group_id: str, *args, **kwargs):
        asked.append(group_id)
        if len(asked) <= 3:
            raise GroupCoordinatorNotAvailableError(f"Unable to get coordinator id for {group_id}")
        return await real(self, group_id, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaAdminClient, "list_consumer_group_offsets", new_broker)
    run = asyncio.create_task(lane.run())
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not lane.ready and not run.done():
            assert asyncio.get_running_loop().time() < deadline, "the lane never became ready"
            await asyncio.sleep(0.1)
        assert not run.done(), f"the lane stopped: {run.exception()!r}"
        await asyncio.wait_for(lane.stop(), 60)
    finally:
        if not run.done():
            run.cancel()
    assert run.exception() is None
    assert len(asked) > 3
