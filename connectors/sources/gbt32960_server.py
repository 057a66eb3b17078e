"""GB/T 32960 TCP gateway: frames in, battery telemetry to a sink, protocol answers out.

A frame is answered only after the sink has taken it (for the command: acknowledged by
Kafka), so a vehicle that gets 0x01 knows its data is durable and one that gets 0x02
resends. Bad bytes never end the server: each is logged and handed to the sink as a
refusal (a dead letter), and the connection carries on after the next ``##``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from connectors.sources import gbt32960 as g
from connectors.sources.common import Outcome, Rejected, SourceError

log = logging.getLogger(__name__)
Sink = Callable[[Outcome], Awaitable[None]]


@dataclass
class Stats:
    connections: int = 0
    frames: int = 0
    events: int = 0
    rejected: int = 0


class GbtGateway:
    """An asyncio TCP server speaking GB/T 32960 to vehicles (or their T-Boxes)."""

    def __init__(self, sink: Sink, *, tenant: str, vin_map: dict[str, str] | None = None,
                 idle_timeout: float = 300.0) -> None:
        self.sink = sink
        self.tenant = tenant
        self.vin_map = vin_map or {}
        self.idle_timeout = idle_timeout
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
        self.stats.connections += 1
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
                    reply = await self._handle(origin, kind, data)
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
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _handle(self, origin: str, kind: str, data: bytes) -> bytes | None:
        if kind == "garbage":
            await self._refuse(origin, "garbage", f"{len(data)} bytes outside any frame", data)
            return None
        self.stats.frames += 1
        try:
            frame = g.decode_frame(data)
        except g.GbtDecodeError as exc:
            await self._refuse(origin, exc.reason, exc.message, data)
            return g.answer(None, exc)
        outcome = Outcome()
        try:
            event = g.to_event(frame, tenant=self.tenant, vin_map=self.vin_map)
            if event is not None:
                outcome.events.append(event)
        except SourceError as exc:
            # The frame is valid protocol, so it is acknowledged; its content is dead-lettered.
            outcome.rejected.append(Rejected(f"{origin}/{frame.vin}", exc.reason, exc.message, data))
        try:
            await self.sink(outcome)
        except Exception:  # noqa: BLE001 - not stored: answer an error so the vehicle resends
            log.exception("gbt32960 %s: sink failed for %s", origin, frame.vin)
            return g.answer(None, g.GbtDecodeError("sink_failed", "not stored",
                                                   command=frame.command, vin=frame.vin))
        self.stats.events += len(outcome.events)
        self.stats.rejected += len(outcome.rejected)
        return g.answer(frame)

    async def _refuse(self, origin: str, reason: str, message: str, data: bytes) -> None:
        log.warning("gbt32960 %s: refused %d bytes: %s: %s", origin, len(data), reason, message)
        self.stats.rejected += 1
        try:
            await self.sink(Outcome(rejected=[Rejected(origin, reason, message, data)]))
        except Exception:  # noqa: BLE001 - logged above with its reason; keep serving
            log.exception("gbt32960 %s: could not dead-letter a refusal", origin)
