"""A platform's side of a GB/T 32960 connection: send frames, read the gateway's answers.

For `creditstream gbt32960 send` (a simulated vehicle), the fuzz campaign's access
attacks and the gateway's tests: one way to talk to the gateway, frame by frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from connectors.sources import gbt32960 as g


async def exchange(host: str, port: int, frames: Iterable[bytes], timeout: float = 5.0) -> list[g.Frame]:
    """Send ``frames`` one at a time on one connection, and after each read until the
    gateway has answered it (or closed the connection, as it does on a refused login);
    the answers in order. A read that waits longer than ``timeout`` raises TimeoutError."""
    reader, writer = await asyncio.open_connection(host, port)
    buf, answers = g.FrameBuffer(), []
    try:
        for frame in frames:
            writer.write(frame)
            await writer.drain()
            got: list[g.Frame] = []
            while not got and (data := await asyncio.wait_for(reader.read(4096), timeout)):
                got = [g.decode_frame(d) for k, d in buf.feed(data) if k == "frame"]
            answers += got
    finally:
        writer.close()
        await writer.wait_closed()
    return answers
