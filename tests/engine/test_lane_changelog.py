"""A lane's changelog through the real broker: restoring several partitions at once with
states larger than aiokafka's default fetch size, and adopting the changelog a processor's
Faust table left behind, once, without losing or reordering a state."""

from __future__ import annotations

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from connectors.kafka_io import committed_offsets, end_offsets
from streams.fastlane import Lane
from streams.processors import MachineProcessor, RegistryProcessor

pytestmark = pytest.mark.integration


async def _create(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for partition, key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


async def _records(bootstrap: str, topic: str) -> int:
    return sum((await end_offsets(bootstrap, [topic])).values())


async def _topic_with(bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes]]) -> None:
    """A one-partition topic holding ``records`` (partition, key, value)."""
    await _create(bootstrap, topic, 1)
    await _produce(bootstrap, topic, records)


def _registry_lane(bootstrap: str, uid: str, tmp_path) -> Lane:  # type: ignore[no-untyped-def]
    return Lane(bootstrap, f"cs-test-{uid}", tmp_path, {}, proc=RegistryProcessor())


async def test_all_partitions_restore_at_once_with_states_over_a_megabyte_per_fetch(
        bootstrap: str, uid: str, tmp_path) -> None:
    lane = Lane(bootstrap, f"cs-test-{uid}", tmp_path, {}, proc=MachineProcessor())
    await lane.ensure_changelog(4)
    big = "x" * 40_000  # ~40 KB, like a fleet's facility state: 25 per default 1 MB fetch
    records = [(p, f"m{p}-{i}".encode(), orjson.dumps({"i": i, "v": 1, "pad": big}))
               for p in range(4) for i in range(60)]
    records += [(0, b"m0-0", orjson.dumps({"i": 0, "v": 2}))]  # a later version of one state
    await _produce(bootstrap, lane.changelog, records)
    await lane._restore([0, 1, 2, 3])
    ends = await end_offsets(bootstrap, [lane.changelog])
    for tp, end in ends.items():
        assert lane.stores[tp.partition].changelog_offset == end
    assert lane.stores[0]["m0-0"] == {"i": 0, "v": 2}
    assert all(lane.stores[p][f"m{p}-{i}"]["pad"] == big for p in range(4) for i in range(1, 60))
    for store in lane.stores.values():
        store.close()


async def test_a_faust_table_changelog_is_adopted_once_with_raw_keys(bootstrap: str, uid: str, tmp_path) -> None:
    lane = _registry_lane(bootstrap, uid, tmp_path)
    # Faust's table wrote orjson-encoded keys; the same key twice: the later value wins.
    await _topic_with(bootstrap, lane.faust_changelog, [
        (0, b'"party:a"', orjson.dumps({"status": "healthy"})),
        (0, b'"members:p1"', orjson.dumps(["a"])),
        (0, b'"party:a"', orjson.dumps({"status": "distressed"})),
    ])
    await lane.ensure_changelog(1)
    assert lane.faust_changelog not in await _topics(bootstrap)
    assert await _records(bootstrap, lane.changelog) == 4  # the marker and three states
    await lane._restore([0])
    assert lane.stores[0]["party:a"] == {"status": "distressed"}
    assert lane.stores[0]["members:p1"] == ["a"]

    await lane.ensure_changelog(1)  # a restart: nothing left to adopt, nothing copied again
    assert await _records(bootstrap, lane.changelog) == 4
    lane.stores[0].close()


async def test_an_adoption_cut_short_is_done_again_on_the_next_start(bootstrap: str, uid: str, tmp_path) -> None:
    lane = _registry_lane(bootstrap, uid, tmp_path)
    await _topic_with(bootstrap, lane.faust_changelog, [(0, b'"party:a"', orjson.dumps({"n": 1})),
                                                     (0, b'"party:b"', orjson.dumps({"n": 2}))])
    # The previous start created the changelog, wrote the marker and one copy, then died.
    await _topic_with(bootstrap, lane.changelog, [(0, b"\x00adopting", lane.faust_changelog.encode()),
                                               (0, b"party:a", orjson.dumps({"n": 1}))])
    await lane.ensure_changelog(1)
    assert lane.faust_changelog not in await _topics(bootstrap)
    await lane._restore([0])
    assert lane.stores[0]["party:a"] == {"n": 1} and lane.stores[0]["party:b"] == {"n": 2}
    lane.stores[0].close()


async def test_a_faust_changelog_older_than_the_lanes_own_is_left_alone(bootstrap: str, uid: str, tmp_path) -> None:
    lane = _registry_lane(bootstrap, uid, tmp_path)
    await _topic_with(bootstrap, lane.faust_changelog, [(0, b'"party:a"', orjson.dumps({"n": "old"}))])
    # The lane already ran: its changelog holds newer states than the Faust leftover.
    await _topic_with(bootstrap, lane.changelog, [(0, b"party:a", orjson.dumps({"n": "new"}))])
    await _keeps_its_own_state(bootstrap, lane, records=1)


async def _keeps_its_own_state(bootstrap: str, lane: Lane, records: int) -> None:
    """The start leaves the Faust changelog alone and copies nothing from it (the lane's
    changelog still holds ``records``): the lane restores its own newer state of party:a."""
    await lane.ensure_changelog(1)
    assert lane.faust_changelog in await _topics(bootstrap)
    assert await _records(bootstrap, lane.changelog) == records
    await lane._restore([0])
    assert lane.stores[0]["party:a"] == {"n": "new"}
    lane.stores[0].close()


async def test_an_adoption_is_not_redone_once_the_lane_has_committed(bootstrap: str, uid: str, tmp_path) -> None:
    from aiokafka import TopicPartition

    from connectors.kafka_io import commit_group_offsets

    lane = _registry_lane(bootstrap, uid, tmp_path)
    await _topic_with(bootstrap, lane.faust_changelog, [(0, b'"party:a"', orjson.dumps({"n": "old"}))])
    # The marker is there, but the lane has processed since (its group committed): a copy
    # now would put the old state after the newer one.
    await _topic_with(bootstrap, lane.changelog, [(0, b"\x00adopting", lane.faust_changelog.encode()),
                                               (0, b"party:a", orjson.dumps({"n": "new"}))])
    await commit_group_offsets(bootstrap, lane.group, {TopicPartition("cs.registry", 0): 0})
    await _keeps_its_own_state(bootstrap, lane, records=2)


async def test_a_new_lane_group_starts_where_the_faust_agent_left_off(bootstrap: str, uid: str, tmp_path) -> None:
    """Invoices and orders ran on Faust agents (group ``app_id``) until 2026-12-01: their
    lanes take over the agents' committed offsets instead of re-reading all history."""
    from connectors.kafka_io import commit_group_offsets
    from streams.processors import InvoiceProcessor

    app_id = f"cs-inherit-{uid}"
    ends = await end_offsets(bootstrap, ["cs.invoices"])
    await commit_group_offsets(bootstrap, app_id, ends)
    lane = Lane(bootstrap, app_id, tmp_path, {}, proc=InvoiceProcessor())
    await lane._inherit_faust_offsets()
    assert await committed_offsets(bootstrap, f"{app_id}-invoices") == ends
    # Once the lane's group has offsets, they are its own: nothing is taken again.
    await commit_group_offsets(bootstrap, app_id, {tp: 0 for tp in ends})
    await lane._inherit_faust_offsets()
    assert await committed_offsets(bootstrap, f"{app_id}-invoices") == ends


async def test_a_member_with_no_partition_of_a_lane_is_ready_at_once(bootstrap: str, uid: str, tmp_path) -> None:
    """With more workers than a lane's partitions (the registry has one) a member is
    assigned nothing; the restore's reader then never stopped, the rebalance callback
    never returned and the worker never became ready (chaos churn with 3 workers)."""
    import asyncio

    lane = Lane(bootstrap, f"cs-empty-{uid}", tmp_path, {}, proc=RegistryProcessor())
    await lane.ensure_changelog(1)
    for _ in range(2):
        await asyncio.wait_for(lane._restore([]), 10)
