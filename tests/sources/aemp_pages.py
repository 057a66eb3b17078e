"""Builders of ISO 15143-3 snapshot pages (JSON and XML) for tests and a local provider."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from xml.sax.saxutils import escape

import orjson
from aiohttp import web

from tests.lenders.ld_support import start_site


def machine(pin: str, hours: float, at: str, *, idle: float | None = None, fuel: float | None = None,
            lat: float = 28.2, lon: float = 112.9, running: bool = True, oem: str = "SANY") -> dict:
    m: dict = {
        "EquipmentHeader": {"OEMName": oem, "Model": "SY215C", "EquipmentID": f"EQ-{pin[-4:]}",
                            "SerialNumber": f"SN{pin[-6:]}", "PIN": pin},
        "Location": {"datetime": at, "Latitude": lat, "Longitude": lon},
        "CumulativeOperatingHours": {"datetime": at, "Hour": hours},
        "EngineStatus": {"datetime": at, "Running": running},
    }
    if idle is not None:
        m["CumulativeIdleHours"] = {"datetime": at, "Hour": idle}
    if fuel is not None:
        m["FuelUsed"] = {"datetime": at, "FuelUnits": "litre", "FuelConsumed": fuel}
    return m


def json_page(machines: list[dict], next_href: str | None) -> bytes:
    links = [{"rel": "self", "href": "self"}] + ([{"rel": "next", "href": next_href}] if next_href else [])
    return orjson.dumps({"Version": "1", "Links": links, "Equipment": machines})


def _xml(name: str, value: object) -> str:
    if isinstance(value, dict):
        attrs = f' datetime="{escape(value["datetime"])}"' if "datetime" in value else ""
        inner = "".join(_xml(k, v) for k, v in value.items() if k != "datetime")
        return f"<{name}{attrs}>{inner}</{name}>"
    if isinstance(value, list):
        return "".join(_xml(name, v) for v in value)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"<{name}>{escape(text)}</{name}>"


def xml_page(machines: list[dict], next_href: str | None) -> bytes:
    links = "<Links><rel>self</rel><href>self</href></Links>"
    if next_href:
        links += f"<Links><rel>next</rel><href>{escape(next_href)}</href></Links>"
    body = "".join(_xml("Equipment", m) for m in machines)
    return (f'<?xml version="1.0" encoding="UTF-8"?><Fleet xmlns="http://standards.iso.org/iso/15143/-3" '
            f'version="1">{links}{body}</Fleet>').encode()


class Provider:
    """A local telematics provider: serves pages by number, counts requests per path."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[bytes, str]] = {}
        self.hits: dict[str, int] = {}
        self.port = 0

    def set_snapshot(self, prefix: str, machines: list[dict], per_page: int, fmt: str) -> None:
        chunks = [machines[i:i + per_page] for i in range(0, len(machines), per_page)] or [[]]
        build: Callable[[list[dict], str | None], bytes] = json_page if fmt == "json" else xml_page
        ctype = "application/json" if fmt == "json" else "application/xml"
        for n, chunk in enumerate(chunks, start=1):
            nxt = f"/{prefix}/Fleet/{n + 1}" if n < len(chunks) else None
            self.pages[f"/{prefix}/Fleet/{n}"] = (build(chunk, nxt), ctype)

    async def handle(self, request: web.Request) -> web.Response:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        if request.path not in self.pages:
            return web.Response(status=404)
        body, ctype = self.pages[request.path]
        return web.Response(body=body, content_type=ctype)

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.port}/{prefix}/Fleet/1"


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[Provider]:
    provider = Provider()
    app = web.Application()
    app.router.add_get("/{tail:.*}", provider.handle)
    runner, provider.port = await start_site(app)
    try:
        yield provider
    finally:
        await runner.cleanup()
