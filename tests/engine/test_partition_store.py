"""The lane's state store (streams/fastlane.py PartitionStore): RocksDB, the batch's
writes and a bounded cache of decoded states that never outlives what was stored."""

from __future__ import annotations

import orjson

from streams.fastlane import PartitionStore


def _commit(store: PartitionStore, offset: int) -> None:
    store.commit([(k.encode(), orjson.dumps(v)) for k, v in store.dirty.items()], offset)


def test_committed_states_are_read_back_and_the_position_kept(tmp_path) -> None:
    store = PartitionStore(tmp_path / "p0.db")
    store["m1"] = {"hours": 1.0}
    assert store["m1"] == {"hours": 1.0}  # this batch's write
    _commit(store, 7)
    assert not store.dirty and store.changelog_offset == 7
    store.discard()
    assert store["m1"] == {"hours": 1.0}  # from RocksDB after the cache is gone
    store.close()
    reopened = PartitionStore(tmp_path / "p0.db")
    assert reopened["m1"] == {"hours": 1.0} and reopened.changelog_offset == 7
    reopened.close()


def test_a_state_changed_in_place_then_refused_is_read_again_from_the_store(tmp_path) -> None:
    store = PartitionStore(tmp_path / "p0.db")
    store["m1"] = {"seen": ["e1"]}
    _commit(store, 1)
    state = store["m1"]
    state["seen"].append("e2")  # a domain function changed the object, then refused the event
    store.forget("m1")
    assert store["m1"] == {"seen": ["e1"]}
    store.close()


def test_a_rewind_forgets_the_batch_and_the_cache(tmp_path) -> None:
    store = PartitionStore(tmp_path / "p0.db")
    store["m1"] = {"n": 1}
    _commit(store, 1)
    store["m1"]["n"] = 2  # the cached object, changed by a batch that then failed to write
    store["m2"] = {"n": 1}
    store.discard()
    assert store["m1"] == {"n": 1} and store.get("m2") is None and not store.dirty
    store.close()


def test_the_cache_stays_within_its_bound_in_bytes(tmp_path) -> None:
    store = PartitionStore(tmp_path / "p0.db", cache_bytes=1000)
    for i in range(50):
        store[f"m{i}"] = {"i": i, "pad": "x" * 80}  # ~100 bytes of JSON each
    _commit(store, 50)
    assert 0 < store.cached_bytes <= 1000 and len(store.cache) <= 10
    assert store.cached_bytes == sum(store.sizes.values())
    assert all(store[f"m{i}"]["i"] == i for i in range(50))  # evicted ones come from RocksDB
    assert store.cached_bytes <= 1000
    store["big"] = {"pad": "y" * 5000}  # one state larger than the whole budget
    _commit(store, 51)
    assert store.cached_bytes <= 1000 and store["big"]["pad"] == "y" * 5000
    store.forget("m49")
    assert store.cached_bytes == sum(store.sizes.values())
    store.close()
