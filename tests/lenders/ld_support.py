"""Shared helpers of the lender-delivery tests: updates, groups, a PostgreSQL proxy, SSE."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiokafka import TopicPartition

from connectors.kafka_io import commit_group_offsets, end_offsets
from connectors.lenders.access import RetryPolicy
from connectors.lenders.urls import UrlPolicy
from connectors.lenders.webhooks import TOPIC, Dispatcher
from schemas import outputs as out
from schemas.common import cny
from schemas.examples import T0

# The receivers of these tests listen on loopback: the development flag, explicitly.
DEV_URLS = UrlPolicy(allow_loopback=True)
CLI = str(Path(sys.executable).parent / "creditstream")  # this environment's command


async def exit_of(proc: asyncio.subprocess.Process, timeout: float, hung: str) -> tuple[int, str]:
    """The return code and stderr of a process that must exit by itself within ``timeout``
    seconds; one still running then is killed and fails the test with ``hung``."""
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(hung)
    return proc.returncode or 0, err.decode()


async def start_site(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on a free loopback port with AppRunner's defaults (aiohttp's access
    log with its default format, as the `gateway` and `lenders serve` commands run it);
    returns the runner (``cleanup()`` it) and the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001


@contextlib.asynccontextmanager
async def receiving(path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> AsyncIterator[int]:
    """A webhook receiver for the block: POSTs to ``path`` (an aiohttp route, such as
    ``/hook/{lender}``) answered by ``handler`` on a free loopback port, which it yields."""
    app = web.Application()
    app.router.add_post(path, handler)
    runner, port = await start_site(app)
    try:
        yield port
    finally:
        await runner.cleanup()


def limit_update(borrower: str, version: int, program: str, lenders: list[str],
                 amount: str = "100000.00") -> out.LimitUpdated:
    """A LimitUpdated built like schemas/examples.py, funded by ``lenders`` in equal shares."""
    lim, zero = cny(amount), cny("0.00")
    share = (Decimal(1) / len(lenders)).quantize(Decimal("0.0001"))
    return out.LimitUpdated(
        event_id=f"lu-{borrower}-{version}", type="limit.updated", tenant="creditstream",
        source="creditstream.engine", occurred_at=T0 + timedelta(minutes=version),
        recorded_at=T0 + timedelta(minutes=version, seconds=1),
        payload=out.LimitUpdatePayload(
            borrower_id=borrower, program_id=program, limit=lim, previous_limit=zero,
            outstanding=zero, available=lim, status=out.FacilityStatus.active,
            lenders=[out.LenderAllocation(lender_id=lid, share=share, limit=lim) for lid in lenders],
            components=[out.Component(kind="order", asset_id=f"po-{borrower}", contribution=lim)],
            reasons=[out.Reason(code="ORDER_CONFIRMED", text=f"Order confirmed (v{version}).")],
            policy_version="2026.1", version=version, watermark=T0 + timedelta(minutes=version),
            trigger_event_ids=[f"ev-{borrower}-{version}"]))


def alert(borrower: str, alert_id: str) -> out.AlertRaised:
    return out.AlertRaised(
        event_id=f"ev-{alert_id}", type="alert.raised", tenant="creditstream",
        source="creditstream.engine", occurred_at=T0, recorded_at=T0,
        payload=out.AlertPayload(alert_id=alert_id, code="ORDERS_FALLING",
                                 severity=out.AlertSeverity.warning, borrower_id=borrower,
                                 text="Purchase orders fell 40% week on week."))


@contextlib.asynccontextmanager
async def running(service: Any) -> AsyncIterator[Any]:
    """Run ``service.run(stop)`` (a dispatcher, a ledger, a party sync) as a task for the
    block; on leaving it, set ``stop`` and wait for the service. A service that ended
    before it was told to fails the test (with its exception, if it raised one)."""
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
        ended_early = task.done()
    finally:
        stop.set()
        await task
    assert not ended_early, f"{type(service).__name__} stopped before it was told to"


@contextlib.asynccontextmanager
async def dispatching(bootstrap: str, pool: asyncpg.Pool, group: str, policy: RetryPolicy, *,
                      url_policy: UrlPolicy = DEV_URLS, at_end: bool = True) -> AsyncIterator[Dispatcher]:
    """A webhook dispatcher of these tests (lenders re-read every 0.2 s) running for the
    block, in ``group``: from the current end of its topic (shared with other tests), or
    with ``at_end=False`` from where the group left off (a restart)."""
    if at_end:
        await group_at_end(bootstrap, group, [TOPIC])
    async with running(Dispatcher(bootstrap, pool, group=group, refresh_s=0.2, policy=policy,
                                  url_policy=url_policy)) as dispatcher:
        yield dispatcher


async def group_at_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Make ``group`` start at the current end of ``topics`` (shared with other tests)."""
    offsets = await end_offsets(bootstrap, topics)
    await commit_group_offsets(bootstrap, group, offsets)


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    from connectors.kafka_io import committed_offsets

    return await committed_offsets(bootstrap, group)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0,
                     every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")


class TcpProxy:
    """A loopback TCP proxy that can be cut (listener and live connections) and restored
    on the same port: PostgreSQL going away and coming back, as a client sees it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._clients: set[asyncio.StreamWriter] = set()

    def announce_shutdown(self) -> None:
        """Send every client what PostgreSQL sends an idle session when it shuts down
        (FATAL 57P01), keeping the sockets open: the moment before the close arrives."""
        fields = b"SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0"
        for w in self._clients:
            w.write(b"E" + struct.pack("!i", 4 + len(fields)) + fields)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._conns):
            w.transport.abort()
        self._conns.clear()
        self._clients.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._conns |= {writer, up_w}
        self._clients.add(writer)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.transport.abort()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self._conns -= {writer, up_w}
        self._clients.discard(writer)


async def read_sse(resp: Any, count: int, timeout: float = 15.0) -> list[dict[str, str]]:
    """Read ``count`` SSE events (id, event, data) from an aiohttp response."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}

    async def loop() -> None:
        nonlocal current
        while len(events) < count:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line == "":
                if "data" in current:
                    events.append(current)
                current = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                current[name] = value.removeprefix(" ")

    await asyncio.wait_for(loop(), timeout)
    return events
