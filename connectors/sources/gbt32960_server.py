"""GB/T 32960 TCP gateway: frames in, battery telemetry to a sink, protocol answers out.

A frame is answered only after the sink has taken it (for the command: acknowledged by
Kafka), so a vehicle that gets 0x01 knows its data is durable and one that gets 0x02
resends. Bad bytes never end the server: each is logged and handed to the sink as a
refusal (a dead letter), and the connection carries on after the next ``##``.

Access (docs/connectors.md): with ``auth`` set, a connection must log in as the platform
(command 0x05, user name and password) before any vehicle frame is taken; with
``pledged`` set, only VINs whose machine that tenant has pledged are taken. Refused
frames are answered 0x02 (the standard's error answer) and dead-lettered. One peer
address may hold at most ``max_per_peer`` connections; an idle one is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass

from connectors.sources import gbt32960 as g
from connectors.sources.common import Outcome, RejectedItem, SourceError
from connectors.sources.gbt32960_access import PlatformAuth

log = logging.getLogger(__name__)
Sink = Callable[[Outcome], Awaitable[None]]


@dataclass
class Stats:
    connections: int = 0
    frames: int = 0
    events: int = 0
    rejected: int = 0
    refused_connections: int = 0


@dataclass
class Session:
    """One TCP connection: where it comes from and whether its platform has logged in."""

    origin: str
    logged_in: bool = False


class GbtGateway:
    """An asyncio TCP server speaking GB/T 32960 to vehicles (or their T-Boxes)."""

    def __init__(self, sink: Sink, *, tenant: str, vin_map: dict[str, str] | None = None,
                 idle_timeout: float = 300.0, auth: PlatformAuth | None = None,
                 pledged: Container[str] | None = None, max_per_peer: int = 8) -> None:
        self.sink = sink
        self.tenant = tenant
        self.vin_map = vin_map or {}
        self.idle_timeout = idle_timeout
        self.auth = auth          # None: no platform login required (tests, simulator)
        self.pledged = pledged    # None: every VIN taken; else machine ids pledged by tenant
        self.max_per_peer = max_per_peer
        self.per_peer: Counter[str] = Counter()
        self.stats = Stats()
        self.server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
        self.server = await asyncio.start_server(self._serve, host, port)
        return self.server

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        origin = f"tcp:{peer[0]}:{peer[1]}" if peer else "tcp:unknown"
        host = peer[0] if peer else "unknown"
        if self.per_peer[host] >= self.max_per_peer:
            # Logged, not dead-lettered: a flood of refused connections must not flood Kafka.
            log.warning("gbt32960 %s: refused, %s already holds %d connections", origin, host,
                        self.max_per_peer)
            self.stats.refused_connections += 1
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            return
        self.per_peer[host] += 1
        self.stats.connections += 1
        session = Session(origin)
        buf = g.FrameBuffer()
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(8192), self.idle_timeout)
                except TimeoutError:
                    log.info("gbt32960 %s idle for %ss: closing", origin, self.idle_timeout)
                    break
                if not chunk:
                    break
                for kind, data in buf.feed(chunk):
                    reply = await self._handle(session, kind, data)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
            if buf.pending:
                await self._refuse(origin, "truncated_frame",
                                   f"connection closed inside a frame ({buf.pending} bytes)", bytes(buf.buf))
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("gbt32960 %s connection lost: %s", origin, exc)
        except Exception:  # noqa: BLE001 - one connection's failure must not reach the server
            log.exception("gbt32960 %s: connection handler failed", origin)
        finally:
            self.per_peer[host] -= 1
            if self.per_peer[host] <= 0:
                del self.per_peer[host]
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _handle(self, session: Session, kind: str, data: bytes) -> bytes | None:
        origin = session.origin
        if kind == "garbage":
            await self._refuse(origin, "garbage", f"{len(data)} bytes outside any frame", data)
            return None
        self.stats.frames += 1
        try:
            frame = g.decode_frame(data)
        except g.GbtDecodeError as exc:
            await self._refuse(origin, exc.reason, exc.message, data)
            return g.answer(None, exc)
        if frame.is_request and frame.is_platform:
            return await self._platform(session, frame, data)
        if frame.is_request and (why := self._access(session, frame)) is not None:
            reason, message = why
            await self._refuse(f"{origin}/{frame.vin}", reason, message, data)
            return g.answer(frame, flag=g.Flag.ERROR)
        outcome = Outcome()
        try:
            event = g.to_event(frame, tenant=self.tenant, vin_map=self.vin_map)
            if event is not None:
                outcome.events.append(event)
        except SourceError as exc:
            # The frame is valid protocol, so it is acknowledged; its content is dead-lettered.
            outcome.rejected.append(RejectedItem(f"{origin}/{frame.vin}", exc.reason, exc.message, data))
        try:
            await self.sink(outcome)
        except Exception:  # noqa: BLE001 - not stored: answer an error so the vehicle resends
            log.exception("gbt32960 %s: sink failed for %s", origin, frame.vin)
            return g.answer(None, g.GbtDecodeError("sink_failed", "not stored",
                                                   command=frame.command, vin=frame.vin))
        self.stats.events += len(outcome.events)
        self.stats.rejected += len(outcome.rejected)
        return g.answer(frame)

    def _access(self, session: Session, frame: g.Frame) -> tuple[str, str] | None:
        """Why a vehicle request may not be taken on this connection, or None."""
        if self.auth is not None and not session.logged_in:
            return "not_logged_in", "no platform login (command 0x05) on this connection yet"
        if self.pledged is not None and g.machine_for(frame.vin, self.vin_map) not in self.pledged:
            return "vin_not_pledged", (f"VIN {frame.vin} (machine {g.machine_for(frame.vin, self.vin_map)}) "
                                       f"is not pledged by tenant {self.tenant}")
        return None

    async def _platform(self, session: Session, frame: g.Frame, data: bytes) -> bytes | None:
        """Platform login (0x05) opens the connection to vehicle frames; logout (0x06) closes it."""
        if frame.command == g.Command.PLATFORM_LOGOUT:
            session.logged_in = False
            return g.answer(frame)
        if self.auth is None or self.auth.check(frame.platform_user, frame.platform_password):
            session.logged_in = True
            log.info("gbt32960 %s: platform %r logged in", session.origin, frame.platform_user)
            return g.answer(frame)
        # The password bytes are masked in the dead letter: a near miss may be the real one.
        at = g.HEADER_LEN + 8 + g.PLATFORM_USER_LEN  # header, time, serial, user name
        masked = data[:at] + b"*" * g.PLATFORM_PASSWORD_LEN + data[at + g.PLATFORM_PASSWORD_LEN:]
        await self._refuse(session.origin, "bad_credentials",
                           f"platform login as {frame.platform_user!r}: wrong user name or password", masked)
        return g.answer(frame, flag=g.Flag.ERROR)

    async def _refuse(self, origin: str, reason: str, message: str, data: bytes) -> None:
        log.warning("gbt32960 %s: refused %d bytes: %s: %s", origin, len(data), reason, message)
        self.stats.rejected += 1
        try:
            await self.sink(Outcome(rejected=[RejectedItem(origin, reason, message, data)]))
        except Exception:  # noqa: BLE001 - logged above with its reason; keep serving
            log.exception("gbt32960 %s: could not dead-letter a refusal", origin)
