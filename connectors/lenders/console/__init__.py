"""The lender console: a browser page served by `creditstream lenders serve` next to the API.

Static files only (``static/``: one HTML page, one script, one style sheet, no build
step, nothing fetched from elsewhere). The page asks for the lender's API key and calls
the lender API with it as ``Authorization: Bearer``, so authentication and isolation are
exactly the API's; the key lives in the page's memory only (never in the URL, a cookie
or storage), so it cannot leak through history, referrers or access logs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

PREFIX = "/console/"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Everything from this origin, nothing inline, no framing: a borrower id or reason text
# that smuggled markup could not run a script, and nothing is loaded from the internet.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _assets() -> dict[str, tuple[bytes, str]]:
    """The shipped files, read once: a request can only name one of them."""
    root = resources.files(__package__) / "static"
    out = {}
    for item in root.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in _TYPES:
            out[item.name] = (item.read_bytes(), _TYPES[suffix])
    return out


ASSETS = web.AppKey("console_assets", dict)


async def index(request: web.Request) -> web.Response:
    return _asset(request, "index.html")


async def asset(request: web.Request) -> web.Response:
    return _asset(request, request.match_info["asset"])


def _asset(request: web.Request, name: str) -> web.Response:
    found = request.app[ASSETS].get(name)
    if found is None:
        raise web.HTTPNotFound()
    body, content_type = found
    return web.Response(body=body, content_type=content_type, charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    if request.path.startswith(PREFIX):
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def add_routes(app: web.Application) -> None:
    app[ASSETS] = _assets()
    app.router.add_get(PREFIX, index)
    app.router.add_get(PREFIX + "{asset}", asset)
