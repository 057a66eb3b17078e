"""Who may speak to the GB/T 32960 gateway: the platform's login and the tenant's pledged VINs.

Before this, anyone who could open the port published telemetry for any VIN as the
configured tenant. Now a connection must first send the standard's platform login
(command 0x05) with the configured user name and password, and a vehicle frame is taken
only when its VIN's machine is pledged (``registry.pledge`` on ``cs.pledges``, not
released since) by that same tenant. Pure rules here; the follower that reads
``cs.pledges`` is :func:`follow_pledges`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass, field

import orjson

from schemas.topics import PLEDGES_TOPIC

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlatformAuth:
    """The one platform account this gateway accepts (GB/T 32960.3 platform login)."""

    user: str
    password: str

    def check(self, user: str | None, password: str | None) -> bool:
        # compare_digest on both fields: a wrong user name must not answer faster.
        ok_user = hmac.compare_digest((user or "").encode(), self.user.encode())
        ok_password = hmac.compare_digest((password or "").encode(), self.password.encode())
        return ok_user and ok_password


@dataclass
class PledgeBook:
    """The machines currently pledged by one tenant, fed with ``cs.pledges`` records."""

    tenant: str
    machines: set[str] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def apply(self, value: bytes) -> None:
        """Fold one ``cs.pledges`` record in; records of other tenants are ignored."""
        try:
            event = orjson.loads(value)
            if not isinstance(event, dict) or event.get("tenant") != self.tenant:
                return
            machine = event["payload"]["machine_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return  # the engine dead-letters bad records; here they pledge nothing
        if event.get("type") == "registry.pledge":
            self.machines.add(machine)
        elif event.get("type") == "registry.pledge_released":
            self.machines.discard(machine)

    def __contains__(self, machine_id: object) -> bool:
        return machine_id in self.machines


async def follow_pledges(bootstrap: str, book: PledgeBook, topic: str = PLEDGES_TOPIC) -> None:
    """Read ``topic`` from the beginning into ``book`` forever; ``book.ready`` once caught up.

    No consumer group: every gateway process needs the whole topic, not a share of it.
    """
    from connectors.kafka_io import TopicReader

    async with TopicReader(bootstrap, topic, from_beginning=True) as reader:
        consumer = reader.consumer
        assert consumer is not None
        tps = list(consumer.assignment())
        ends = await consumer.end_offsets(tps)
        while True:
            if not book.ready.is_set() and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                log.info("gbt32960: %d machines pledged by %s", len(book.machines), book.tenant)
                book.ready.set()
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    if r.value is not None:
                        book.apply(r.value)
