"""Send what a source adapter decoded: events to their topics, refusals to cs.deadletter."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from connectors.kafka_io import produce_events
from connectors.sources.common import Outcome, dead_letter

log = logging.getLogger(__name__)


@dataclass
class Sent:
    events: int = 0
    rejected: int = 0

    def add(self, other: Sent) -> None:
        self.events += other.events
        self.rejected += other.rejected


async def deliver(producer: AIOKafkaProducer, outcome: Outcome, *, tenant: str, stage: str) -> Sent:
    """Produce the events and one dead letter per refusal; return when all are acknowledged."""
    letters = [dead_letter(r, tenant=tenant, stage=stage) for r in outcome.rejected]
    for r in outcome.rejected:
        log.info("%s rejected %s: %s: %s", stage, r.origin, r.reason, r.error)
    await produce_events(producer, [*outcome.events, *letters])
    return Sent(len(outcome.events), len(letters))


def report(stage: str, sent: Sent, outcome: Outcome | None = None) -> int:
    """Print a one-line summary (and each refusal) to stderr; exit code 1 if anything was refused."""
    if outcome is not None:
        for r in outcome.rejected:
            print(f"{stage}: rejected {r.origin}: {r.reason}: {r.error}", file=sys.stderr)
        for note in outcome.notes:
            print(f"{stage}: {note}", file=sys.stderr)
    print(f"{stage}: {sent.events} events produced, {sent.rejected} rejected "
          f"(dead-lettered to cs.deadletter)", file=sys.stderr)
    return 1 if sent.rejected else 0


def load_map(path: str | None) -> dict[str, str]:
    """A JSON object file mapping source identifiers (VIN, PIN, tax id) to creditstream ids."""
    if not path:
        return {}
    import orjson

    with open(path, "rb") as f:
        data = orjson.loads(f.read())
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{path}: a map file is a JSON object of strings to strings")
    return data


async def send_outcome(bootstrap: str, outcome: Outcome, *, tenant: str, stage: str) -> int:
    """Open a producer, deliver ``outcome``, print the summary; the command's exit code."""
    from connectors.kafka_io import make_producer

    producer = make_producer(bootstrap)
    await producer.start()
    try:
        sent = await deliver(producer, outcome, tenant=tenant, stage=stage)
    finally:
        await producer.stop()
    return report(stage, sent, outcome)
