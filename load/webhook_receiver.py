"""A lender's webhook endpoint for fault runs: verifies and records every delivery, and can
go down (connections refused) and come back on the same loopback port."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from connectors.lenders.verify import HEADER, SignatureError, verify_signature


@dataclass(frozen=True)
class Delivery:
    borrower_id: str
    version: int
    payload: dict[str, Any]
    attempt: int
    at: float  # wall clock (time.time()) when it arrived


@dataclass
class Receiver:
    """Answers 204 to a correctly signed POST and records it; 401 (recorded in ``refused``)
    otherwise. ``secret`` is set once the lender is registered with ``url``."""

    secret: str | None = None
    port: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # bad signatures or bodies
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def up(self) -> None:
        """Listen (again) on ``port``; the first call picks a free port."""
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        # A short shutdown: `down` must not wait on the dispatcher's keep-alive connections.
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        self._runner = runner

    async def down(self) -> None:
        """Close the listening socket and every open connection: new ones are refused."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.secret is None:
            return web.Response(status=503)  # not registered yet: the dispatcher retries
        try:
            verify_signature(self.secret, request.headers.get(HEADER), body)
            payload = orjson.loads(body)["payload"]
            self.deliveries.append(Delivery(str(payload["borrower_id"]), int(payload["version"]), payload,
                                            int(request.headers.get("X-Creditstream-Attempt", "0")),
                                            time.time()))
        except (SignatureError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self.refused.append(f"{type(exc).__name__}: {exc}")
            return web.Response(status=401)
        return web.Response(status=204)
