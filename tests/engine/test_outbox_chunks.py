"""A partition's outbox is kept in bounded chunks (streams/fastlane.py, record_outbox):
as one changelog record, a backlog's batch of stage-2 decisions outgrew the broker's
message limit and the lane re-read the same batch forever (load bench, 3 workers,
10,000 machines: MessageSizeTooLargeError every second)."""

from __future__ import annotations

from typing import Any

from streams.fastlane import OUTBOX_CHUNK_CHARS, OUTBOX_KEY, read_outbox, record_outbox


def _outputs(n: int, size: int, tag: str = "o") -> list[list[Any]]:
    return [["cs.limits", f"b{i}", f"{tag}{i}:" + "x" * size, [], 1_700_000_000_000 + i] for i in range(n)]


def _chunks(store: dict[str, Any]) -> list[list[list[Any]]]:
    found, i = [], 0
    while (part := store.get(OUTBOX_KEY if i == 0 else f"{OUTBOX_KEY}.{i}")) is not None:
        found.append(part)
        i += 1
    return found


def test_a_large_batch_is_kept_in_bounded_chunks_and_read_back_in_order() -> None:
    store: dict[str, Any] = {}
    outputs = _outputs(400, 30_000)  # 12 MB of decisions: one record would be refused
    record_outbox(store, outputs)
    chunks = [c for c in _chunks(store) if c]
    assert len(chunks) > 1
    assert all(sum(len(r[2]) for r in c) <= OUTBOX_CHUNK_CHARS for c in chunks)
    assert read_outbox(store) == outputs


def test_an_output_larger_than_a_chunk_gets_a_chunk_of_its_own() -> None:
    store: dict[str, Any] = {}
    outputs = _outputs(3, OUTBOX_CHUNK_CHARS + 10)
    record_outbox(store, outputs)
    assert [len(c) for c in _chunks(store)] == [1, 1, 1]
    assert read_outbox(store) == outputs


def test_a_shorter_outbox_ends_before_the_chunks_of_a_longer_one() -> None:
    store: dict[str, Any] = {}
    record_outbox(store, _outputs(400, 30_000, "old"))
    newer = _outputs(2, 100, "new")
    record_outbox(store, newer)
    assert read_outbox(store) == newer
    record_outbox(store, [])  # sent: nothing to send again
    assert read_outbox(store) == []


def test_nothing_is_written_when_there_was_and_is_nothing_to_keep() -> None:
    store: dict[str, Any] = {}
    record_outbox(store, [])
    assert store == {}
