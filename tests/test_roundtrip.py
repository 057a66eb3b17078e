"""Every event type goes through the real broker to its catalogue topic and back, equal."""

from __future__ import annotations

import pytest

from connectors.kafka_io import TopicReader, produce_events
from schemas import codec
from schemas.examples import example_events
from schemas.topics import TOPICS, route

pytestmark = pytest.mark.integration


async def test_every_event_type_round_trips_through_kafka(bootstrap: str, producer, uid: str) -> None:
    # Unique event ids let this test find its own records among other traffic.
    events = [e.model_copy(update={"event_id": f"{e.event_id}-{uid}"}) for e in example_events()]
    names = sorted({route(e)[0] for e in events})
    ids = {e.event_id for e in events}

    def mine(recs: list) -> dict:
        # A running engine may answer these inputs on the output topics: keep only ours.
        found = {}
        for r in recs:
            if uid.encode() in r.value:
                try:
                    event = codec.decode(r.value)
                except codec.DecodeError:
                    continue
                if event.event_id in ids:
                    found[event.event_id] = r
        return found

    async with TopicReader(bootstrap, *names) as reader:
        await produce_events(producer, events)
        by_id = mine(await reader.read(lambda recs: len(mine(recs)) >= len(events)))
    assert set(by_id) == ids
    for event in events:
        record = by_id[event.event_id]
        topic, key = route(event)
        assert (record.topic, record.key) == (topic, key)
        assert codec.decode(record.value) == event


def test_catalogue_names_each_input_type_once() -> None:
    seen = [c for t in TOPICS for c in t.events]
    assert len(seen) == len(set(seen))
    assert set(codec.EVENT_TYPES) == {c.model_fields["type"].annotation.__args__[0] for c in seen}
