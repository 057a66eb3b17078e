"""The lender console in a real headless browser (Debian's chromium), end to end.

Events go in through the ingest gateway; a real worker computes the limits; the ledger
writes them to PostgreSQL; the lender API serves the console and its stream. The browser
signs in with lender A's key, sees A's portfolio, opens a borrower, sees a new version
arrive live after an event is posted through the gateway, and resumes after the server
went away; it never shows lender B's borrower. Screenshots go to a temporary folder, or
to ``$CREDITSTREAM_CONSOLE_SCREENSHOTS`` (docs/ holds the committed ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from connectors.gateway.app import NDJSON, build_app
from connectors.gateway.store import create_key
from connectors.ledger.service import TOPICS, Ledger
from connectors.lenders import repo
from connectors.lenders.api import make_app
from connectors.pg.migrate import migrate
from creditstream.stack.process import free_port
from schemas import codec
from schemas.factory import EventFactory
from tests.console.cdp import CHROMIUM, Browser
from tests.engine.conftest import WorkerProcess
from tests.lenders.ld_support import group_at_end

pytestmark = pytest.mark.integration


class Site:
    """An aiohttp app on a fixed loopback port that can be stopped and started again (the
    lender API going away under an open console, and coming back at the same address)."""

    def __init__(self, make) -> None:  # type: ignore[no-untyped-def]
        self.make, self.port, self.runner = make, free_port(), None

    async def start(self) -> None:
        self.runner = web.AppRunner(self.make())
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Story:
    """Two programs: A's (lenders A and C) with two suppliers, B's with one supplier."""

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.tenant = f"oem-{uid}"
        self.f = EventFactory(f"con-{uid}", datetime.now(UTC).replace(microsecond=0) - timedelta(days=6),
                              tenant=self.tenant)
        self.lender_a, self.lender_b, self.lender_c = f"bank-a-{uid}", f"bank-b-{uid}", f"mfi-c-{uid}"
        self.core = f"core-{uid}"
        self.a1, self.a2, self.b1 = f"hydraulics-{uid}", f"castings-{uid}", f"bolts-{uid}"
        self.prg_a, self.prg_b = f"chain-a-{uid}", f"chain-b-{uid}"
        self.tax = {self.a1: "91430100MA4L1A2B3C", self.a2: "91430100MA4L9Z8Y7X", self.b1: "91430100MA4LBOLT01"}
        self.n = 0

    def setup(self) -> list:
        f = self.f
        return [f.program(self.prg_a, cap="3000000", lenders=((self.lender_a, "0.6"), (self.lender_c, "0.4"))),
                f.program(self.prg_b, cap="2000000", lenders=((self.lender_b, "1.0"),)),
                f.borrower(self.a1, self.prg_a, tax_id=self.tax[self.a1]), f.consent(self.a1),
                f.borrower(self.a2, self.prg_a, tax_id=self.tax[self.a2]), f.consent(self.a2),
                f.borrower(self.b1, self.prg_b, tax_id=self.tax[self.b1]), f.consent(self.b1),
                *[f.supplies(b, self.core) for b in (self.a1, self.a2, self.b1)]]

    def invoice(self, borrower: str, amount: str) -> list:
        """An invoice issued to the core enterprise and confirmed by it two hours later."""
        self.n += 1
        ref = self.f.invoice_ref(self.tax[borrower], f"{self.uid[:6]}{self.n:04d}", amount)
        issued = self.f.invoice_issued(ref, borrower, self.core)
        self.f.advance(hours=2)
        self.last = (ref, borrower)
        return [issued, self.f.invoice_action("confirmed", ref, borrower, self.core)]

    def duplicate(self) -> list:
        """The last invoice issued again: a duplicate financing attempt (an alert)."""
        ref, borrower = self.last
        self.f.advance(hours=1)
        return [self.f.invoice_issued(ref, borrower, self.core)]


async def post(http: aiohttp.ClientSession, gateway: str, key: str, events: list) -> None:
    body = b"\n".join(codec.encode(e) for e in events)
    async with http.post(f"{gateway}/v1/events", data=body, headers={
            "Authorization": f"Bearer {key}", "Content-Type": NDJSON}) as r:
        answer = await r.json()
        assert r.status == 200, answer


@pytest.fixture(scope="module")
def engine(settings):  # type: ignore[no-untyped-def]
    """A worker of its own engine id, with /metrics for the operators page."""
    app_id = f"cs-console-{uuid.uuid4().hex[:8]}"
    w = WorkerProcess(app_id, settings.state_dir / "test-workers" / app_id, web_port=free_port())
    w.start()
    yield w
    w.stop()


def shots_dir(tmp_path: Path) -> Path:
    target = os.environ.get("CREDITSTREAM_CONSOLE_SCREENSHOTS")
    return Path(target) if target else tmp_path


async def test_console_in_a_real_browser(engine, bootstrap: str, pg_url: str, uid: str,
                                         tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert os.access(CHROMIUM, os.X_OK), "chromium missing: run scripts/bootstrap.sh (apt-get install chromium)"
    caplog.set_level(logging.INFO)
    story = Story(uid)
    await migrate(pg_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=8)
    stop = asyncio.Event()
    group = f"test-console-ledger-{uid}"
    await group_at_end(bootstrap, group, list(TOPICS))
    ledger = Ledger(bootstrap, pg_url, group=group)
    ledger_task = asyncio.create_task(ledger.run(stop))
    gateway = Site(lambda: build_app(pg_url, bootstrap))
    api = Site(lambda: make_app(pool, poll_s=0.3, bootstrap=bootstrap,
                                engine_metrics=[f"http://127.0.0.1:{engine.web_port}/metrics"],
                                lag_groups=(engine.app_id, group)))
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    try:
        await gateway.start()
        await api.start()
        key_a, _ = await repo.add_lender(pool, story.lender_a, "Bank A")
        await repo.add_lender(pool, story.lender_b, "Bank B")
        await repo.add_lender(pool, story.lender_c, "MFI C")
        await repo.subscribe(pool, story.lender_a, "borrowers", borrower_ids=[story.a2])  # the console shows all
        _, gw_key = await create_key(pool, story.tenant, ["*"], ["*"], ["*"])

        # The supply chain so far: both programs, three invoices a day apart.
        await post(http, gateway.url, gw_key, story.setup())
        for borrower, amount in ((story.a1, "600000"), (story.a2, "450000"), (story.b1, "300000"),
                                 (story.a1, "250000")):
            story.f.advance(hours=20)
            await post(http, gateway.url, gw_key, story.invoice(borrower, amount))
        await post(http, gateway.url, gw_key, story.duplicate())
        await _until(lambda: pool.fetchval(
            "SELECT count(DISTINCT borrower_id) FROM current_limits WHERE borrower_id = ANY($1)",
            [story.a1, story.a2, story.b1]), 3, engine)
        await _until(lambda: pool.fetchval("SELECT count(*) FROM alerts WHERE borrower_id = $1", story.a1),
                     1, engine)

        async with Browser() as b:
            await b.goto(f"{api.url}/console/")
            assert await b.js("!document.querySelector('#signin').hidden")
            await b.type_into("#key", key_a)
            await b.click("#signin button")

            # Portfolio: A's two borrowers with A's share; B's borrower nowhere.
            await b.wait(f"!!document.querySelector('tr[data-borrower=\"{story.a1}\"]')")
            await b.wait("document.querySelector('#live').dataset.state === 'live'")
            rows = await b.js("[...document.querySelectorAll('#portfolio tbody tr')].map(r => r.dataset.borrower)")
            assert sorted(rows) == sorted([story.a1, story.a2])
            row = await b.js(f"document.querySelector('tr[data-borrower=\"{story.a1}\"]').innerText")
            assert "60%" in row and "CNY" in row, row
            assert "Bank A" in await b.js("document.querySelector('#who').textContent")
            assert await b.js("document.querySelector('#totals').innerText") != ""
            await b.type_into("#q", "castings")
            await b.wait("document.querySelectorAll('#portfolio tbody tr').length === 1")
            await b.js("document.querySelector('#q').value = ''; document.querySelector('#q')"
                       ".dispatchEvent(new Event('input'))")
            await b.wait("document.querySelectorAll('#portfolio tbody tr').length === 2")
            await b.screenshot(shots_dir(tmp_path) / "console-portfolio.png")

            # A borrower: chart, components, reasons, versions with their trigger events.
            await b.click(f"tr[data-borrower=\"{story.a1}\"] a")
            await b.wait("!document.querySelector('#view-borrower').hidden && "
                         "document.querySelectorAll('#b-versions tbody tr').length >= 2")
            assert await b.js("document.querySelectorAll('#b-chart svg path').length") == 2
            assert await b.js("document.querySelectorAll('#b-components tbody tr').length") >= 1
            assert await b.js("document.querySelector('#b-reasons').innerText.length") > 10
            assert await b.js("document.querySelector('#b-alerts').innerText.includes('DUPLICATE_FINANCING')")
            assert await b.js("document.querySelector('#b-versions tbody').innerText.includes('con-')")
            before = int(await b.js("document.querySelector('#b-title').dataset.version"))

            # Live: an invoice confirmed through the gateway shows up as a new version (B's
            # borrower moves in the same request, and must not reach this page).
            b1_max = "SELECT max(version) FROM decision_log WHERE borrower_id = $1"
            b1_before = await pool.fetchval(b1_max, story.b1)
            story.f.advance(hours=20)
            await post(http, gateway.url, gw_key, [*story.invoice(story.a1, "180000"),
                                                   *story.invoice(story.b1, "70000")])
            await b.wait(f"Number(document.querySelector('#b-title').dataset.version) > {before}", 60)
            await _until(lambda: pool.fetchval(b1_max, story.b1), b1_before + 1, engine)
            await asyncio.sleep(1.0)  # B's decisions are in the ledger: time to (not) arrive
            arrived = await b.js("document.body.dataset.live")            # what came live
            assert story.a1 in arrived and story.b1 not in arrived, arrived
            live = int(await b.js("document.querySelector('#b-title').dataset.version"))
            assert await b.js(f"!!document.querySelector('#b-versions tr[data-version=\"{live}\"]')")
            await b.screenshot(shots_dir(tmp_path) / "console-borrower.png")

            # The server goes away: the page says so, then resumes and catches up.
            await api.stop()
            await b.wait("document.querySelector('#live').dataset.state === 'reconnecting'", 15)
            story.f.advance(hours=20)
            await post(http, gateway.url, gw_key, story.invoice(story.a1, "90000"))
            await _until(lambda: pool.fetchval("SELECT max(version) FROM decision_log WHERE borrower_id = $1",
                                               story.a1), live + 1, engine, at_least=True)
            await api.start()
            await b.wait(f"Number(document.querySelector('#b-title').dataset.version) > {live}", 30)
            await b.wait("document.querySelector('#live').dataset.state === 'live'")

            # B's borrower: not in the portfolio, and its page is "not in your portfolio".
            await b.goto(f"{api.url}/console/#/borrower/{story.b1}")  # a reload: sign in again
            await b.wait("!document.querySelector('#signin').hidden")
            await b.type_into("#key", key_a)
            await b.click("#signin button")
            await b.wait("document.querySelector('#b-title').textContent.includes('No borrower')")

            await b.goto(f"{api.url}/console/#/operators")
            await b.type_into("#key", key_a)
            await b.click("#signin button")
            await b.wait("document.querySelector('#ops-cards').innerText.includes('up')")
            await b.wait("document.querySelector('#ops-cards').innerText.includes('/s')", 15)  # 2nd scrape
            await b.wait(f"document.querySelector('#ops-lag').innerText.includes({json.dumps(engine.app_id)})")
            await b.wait("document.querySelector('#ops-topics').innerText.includes('cs.invoices')")
            await b.screenshot(shots_dir(tmp_path) / "console-operators.png")

            seen = await b.js("document.body.innerText")
            assert story.b1 not in seen and story.lender_b not in seen
            # Script errors and Content-Security-Policy violations; failed requests are
            # expected here (the 404 of B's borrower, the stream cut by the restart).
            assert [e for e in b.errors if not e.startswith("Failed to load resource")] == [], b.errors
            assert all(u.startswith(api.url) or u.startswith("data:") for u in b.requests), b.requests
            assert not any(key_a in u for u in b.requests)                    # never in a URL
        assert key_a not in caplog.text                                       # nor in a log
    finally:
        await http.close()
        await api.stop()
        await gateway.stop()
        stop.set()
        with contextlib.suppress(Exception):
            await ledger_task
        await pool.close()


async def _until(query, want: int, engine, at_least: bool = True, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for the engine's results in PostgreSQL; fail with the worker's log."""
    deadline = asyncio.get_running_loop().time() + timeout
    got = None
    while asyncio.get_running_loop().time() < deadline:
        got = await query()
        if got is not None and (got >= want if at_least else got == want):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"got {got!r}, wanted {want}; worker log:\n{engine.tail()}")
