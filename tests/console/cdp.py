"""A real headless browser for the console tests: Debian's chromium, driven over the
DevTools protocol with aiohttp's websocket client (no driver package, nothing downloaded).

Records what a test must check beyond the page: every URL the page requested (nothing
may leave the console's origin, no key in a URL) and every console error or uncaught
exception (a Content-Security-Policy violation shows up there).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--window-size=1280,900"]


class BrowserError(AssertionError):
    pass


class Browser:
    """One chromium process with one page; ``async with Browser() as b: await b.goto(...)``."""

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        self.size = (width, height)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}

    async def __aenter__(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="cs-chromium-")
        self.proc = await asyncio.create_subprocess_exec(
            CHROMIUM, *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-port=0",
            "about:blank", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port = await self._devtools_port()
        self.http = aiohttp.ClientSession()
        deadline = time.monotonic() + 20
        page = None
        while page is None and time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with self.http.get(f"http://127.0.0.1:{port}/json/list") as r:
                    page = next((t for t in await r.json() if t["type"] == "page"), None)
            if page is None:
                await asyncio.sleep(0.2)
        if page is None:
            raise BrowserError("chromium opened no page")
        self.ws = await self.http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        for domain in ("Page", "Runtime", "Network", "Log"):
            await self.send(f"{domain}.enable")
        await self.send("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1],
                        deviceScaleFactor=1, mobile=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._reader.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()
        await self.http.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 9)
        await asyncio.wait_for(self.proc.wait(), 10)
        shutil.rmtree(self._profile, ignore_errors=True)

    async def _devtools_port(self) -> int:
        # Chromium writes the port it chose into the profile once it listens.
        marker = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if marker.exists() and (text := marker.read_text().split("\n"))[0].isdigit():
                return int(text[0])
            if self.proc.returncode is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode}")
            await asyncio.sleep(0.1)
        raise BrowserError("chromium did not open its DevTools port within 30 s")

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data:
                fut = self._waiting.pop(data["id"], None)
                if fut and not fut.done():
                    fut.set_result(data)
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
            elif method == "Runtime.exceptionThrown":
                self.errors.append(params["exceptionDetails"].get("exception", {}).get("description")
                                   or params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                self.errors.append(params["entry"]["text"])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        i = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[i] = fut
        await self.ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
        reply = await asyncio.wait_for(fut, 30)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def goto(self, url: str) -> None:
        """Load ``url`` as a new document (about:blank first: a URL that differs only in
        its #fragment would otherwise keep the page, and its memory, as it is)."""
        await self.send("Page.navigate", url="about:blank")
        await self.wait("location.href === 'about:blank'")
        await self.send("Page.navigate", url=url)
        await self.wait(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    async def js(self, expression: str) -> Any:
        """The value of ``expression`` in the page (promises are awaited)."""
        res = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in res:
            raise BrowserError(f"{expression}: {res['exceptionDetails'].get('exception', {}).get('description')}")
        return res["result"].get("value")

    async def wait(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll until ``expression`` is truthy in the page; fail with what the page shows."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(BrowserError):
                value = await self.js(expression)
                if value:
                    return value
            await asyncio.sleep(0.2)
        text = await self.js("document.body ? document.body.innerText.slice(0, 1500) : ''")
        raise BrowserError(f"not true within {timeout}s: {expression}\npage shows:\n{text}\n"
                           f"console errors: {self.errors}")

    async def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type as a keyboard would (Input.insertText)."""
        await self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", text=text)

    async def click(self, selector: str) -> None:
        await self.js(f"document.querySelector({json.dumps(selector)}).click()")

    async def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page (its full height, the window's width)."""
        height = await self.js("Math.ceil(document.documentElement.scrollHeight)")
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                               clip={"x": 0, "y": 0, "width": self.size[0], "height": max(height, 200), "scale": 1})
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path

