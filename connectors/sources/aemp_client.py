"""ISO 15143-3 poller on aiohttp: walks a fleet snapshot's pages within the rate limit.

Providers allow one request per URL per interval (15 minutes is typical), so every URL,
each page included, has its own gate; a 429 answer's Retry-After pushes that URL's gate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from connectors.sources import aemp
from connectors.sources.common import Outcome, RejectedItem, SourceError

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 15 * 60.0
MAX_PAGE_BYTES = 20 * 1024 * 1024


class RateGate:
    """At most one request per URL per ``interval`` seconds (waits, never skips)."""

    def __init__(self, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self.next_allowed: dict[str, float] = {}

    def delay(self, url: str) -> float:
        return max(0.0, self.next_allowed.get(url, 0.0) - self.clock())

    async def wait(self, url: str) -> None:
        delay = self.delay(url)
        if delay > 0:
            log.info("aemp: waiting %.0fs before polling %s again", delay, url)
            await self.sleep(delay)
        self.next_allowed[url] = self.clock() + self.interval

    def push(self, url: str, seconds: float) -> None:
        self.next_allowed[url] = max(self.next_allowed.get(url, 0.0), self.clock() + seconds)


@dataclass
class PollResult:
    outcome: Outcome = field(default_factory=Outcome)
    pages: int = 0
    errors: list[str] = field(default_factory=list)


class AempPoller:
    """Fetches every page of a snapshot and feeds the machines to a :class:`CounterTracker`."""

    def __init__(self, session: aiohttp.ClientSession, tracker: aemp.CounterTracker, *,
                 gate: RateGate | None = None, machine_map: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None, max_pages: int = 10000) -> None:
        self.session = session
        self.tracker = tracker
        self.gate = gate or RateGate()
        self.machine_map = machine_map or {}
        self.headers = {"Accept": "application/json, application/xml;q=0.9", **(headers or {})}
        self.max_pages = max_pages

    async def poll(self, url: str) -> PollResult:
        """One pass over the snapshot starting at ``url``, following ``next`` links."""
        result = PollResult()
        seen: set[str] = set()
        next_url: str | None = url
        while next_url and result.pages < self.max_pages:
            if next_url in seen:
                result.errors.append(f"{next_url}: next link loops back: stopped")
                break
            seen.add(next_url)
            page_url, next_url = next_url, None
            await self.gate.wait(page_url)
            try:
                async with self.session.get(page_url, headers=self.headers) as resp:
                    if resp.status == 429:
                        retry = resp.headers.get("Retry-After", "")
                        self.gate.push(page_url, float(retry) if retry.isdigit() else self.gate.interval)
                        result.errors.append(f"{page_url}: 429 rate limited (Retry-After {retry or '-'})")
                        break
                    if resp.status != 200:
                        result.errors.append(f"{page_url}: HTTP {resp.status} {resp.reason}")
                        break
                    body = await resp.content.read(MAX_PAGE_BYTES + 1)
                    content_type = resp.headers.get("Content-Type", "")
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.errors.append(f"{page_url}: {type(exc).__name__}: {exc}")
                break
            result.pages += 1
            try:
                if len(body) > MAX_PAGE_BYTES:
                    raise SourceError("too_large", f"page larger than {MAX_PAGE_BYTES} bytes")
                page = aemp.parse_page(body, content_type, page_url, self.machine_map)
            except SourceError as exc:
                # A broken page is input we refuse; later pages are unreachable without its link.
                result.outcome.rejected.append(RejectedItem(page_url, exc.reason, exc.message, body))
                break
            result.outcome.extend(self.tracker.accept_page(page, page_url))
            next_url = page.next_url
        return result
