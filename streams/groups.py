"""Consumer-group offsets read through Kafka's admin API.

On a new broker the group coordinator (the ``__consumer_offsets`` topic) is created on
first use and answers "not available" for a few seconds; a worker or a tool started with
the broker must wait for it, not fail. This is the one place that waits.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka.errors import GroupCoordinatorNotAvailableError, NotCoordinatorForGroupError
from aiokafka.structs import OffsetAndMetadata, TopicPartition


async def group_offsets(admin: Any, group: str, timeout: float = 60.0,
                        pause: float = 0.5) -> dict[TopicPartition, OffsetAndMetadata]:
    """``group``'s committed offsets (empty when it has none), through a started
    ``AIOKafkaAdminClient``, retrying while the coordinator is not available, up to
    ``timeout`` seconds (then the error is raised)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            offsets: dict[TopicPartition, OffsetAndMetadata] = await admin.list_consumer_group_offsets(group)
            return offsets
        except (GroupCoordinatorNotAvailableError, NotCoordinatorForGroupError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(pause)
