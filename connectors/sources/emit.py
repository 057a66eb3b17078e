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
        log.warning("%s rejected %s: %s: %s", stage, r.origin, r.reason, r.error)
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
