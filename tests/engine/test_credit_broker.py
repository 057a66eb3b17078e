"""Issue 10 (credit integrity) and issue 11 items 1-2 through the real broker and a worker.

The same logs as test_credit_integrity.py. Where a class of case depends on what the
worker had applied before an input, that input is sent only once the engine has
answered the ones before it (as in test_eng_broker.py).
"""

from __future__ import annotations

import pytest

from connectors.kafka_io import TopicReader, produce_events
from tests.engine import scenarios as sc
from tests.engine.test_eng_broker import OUT, Outputs, limits_of, send_phased, u

pytestmark = pytest.mark.integration


@pytest.fixture
async def outputs(bootstrap: str, engine):
    async with TopicReader(bootstrap, *OUT) as reader:
        yield Outputs(reader)


def amounts(outputs: Outputs, borrower: str) -> list[str]:
    return [x["limit"]["amount"] for x in outputs.limits(borrower)]


async def test_delivering_a_counted_order_publishes_one_version(producer, outputs: Outputs) -> None:
    uid = u()
    events, expected = sc.delivery_of_a_counted_order(uid)
    s = f"sup-{uid}"
    last_delivery = events[-1]
    await send_phased(producer, outputs, events[:-1], [s])
    await outputs.wait(lambda rs: any(x["limit"]["amount"] == "264000.00" for x in limits_of(rs, s)))
    before = len(outputs.limits(s))
    await produce_events(producer, [last_delivery])
    await outputs.wait(lambda rs: limits_of(rs, s)[-1]["limit"]["amount"] == expected[s])
    caused = outputs.limits(s)[before:]
    assert [x["limit"]["amount"] for x in caused] == ["300000.00"]
    assert caused[0]["trigger_event_ids"] == [last_delivery.event_id]
    assert "330000.00" not in amounts(outputs, s)
