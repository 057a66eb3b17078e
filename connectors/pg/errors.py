"""Which asyncpg failures mean "this connection is gone or unusable: reconnect and retry"."""

from __future__ import annotations

import asyncio

import asyncpg

# InternalClientError ("cannot switch to state 15; another operation (2) is in progress")
# is what asyncpg raises when PostgreSQL's shutdown message reached an idle connection
# before the socket closed (MagicStack/asyncpg#784, #1069): the protocol is stuck in its
# error-consume state and the connection never recovers, so it is dropped like a dead one.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
