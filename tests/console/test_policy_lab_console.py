"""The policy lab's operator pages (issue 18.3): champion and challenger side by side.

A champion engine and a shadow engine (candidate 2027.01-1) decide the same inputs
through the real broker: two contractors whose limits the candidate changes and a
supplier it does not. The lender API's ``/ops/v1/`` (operator key only; a lender's key is refused,
and the operator key is no lender's) lists the divergences exactly as `creditstream
policy divergences` does and shows both decisions of a borrower; the console's lab page
(``/console/lab.html``) shows them in headless chromium. Screenshots go to a temporary
folder, or under ``$CREDITSTREAM_CONSOLE_SCREENSHOTS`` (docs/ holds the committed ones,
in docs/policy-lab/).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import pytest

from connectors.kafka_io import TopicReader, make_producer, produce_events
from connectors.lenders import repo
from connectors.lenders.api import make_app
from connectors.pg.migrate import migrate
from schemas.config import REPO_ROOT, Settings
from schemas.topics import LIMITS_TOPIC, shadow_topics
from streams import shadow as shadow_view
from streams.domain.policy import POLICY_VERSION
from tests.console.cdp import CHROMIUM, Browser
from tests.console.test_console_browser import shots_dir
from tests.engine import scenarios as sc
from tests.engine.test_policy_lab_broker import CANDIDATE, Engine, _final
from tests.lenders.ld_support import start_site

pytestmark = pytest.mark.integration
OPERATOR_KEY = secrets.token_urlsafe(32)


class Lab:
    """The two engines, the inputs they decided and what a replay says they decide."""

    def __init__(self, uid: str, champion: Engine, shadow: Engine, events: list) -> None:
        self.uid, self.champion, self.shadow, self.events = uid, champion, shadow, events
        self.contractor, self.supplier = f"ctr-{uid}", f"sup-{uid}"
        self.expect_champion, self.expect_shadow = _final(events), _final(events, CANDIDATE)
        self.borrowers = sorted(set(self.expect_champion) | set(self.expect_shadow))
        self.expected = shadow_view.compare(self.expect_champion, self.expect_shadow)
        self.diverging = [r["borrower_id"] for r in self.expected]

    def row(self, borrower: str) -> dict:
        return next(r for r in self.expected if r["borrower_id"] == borrower)


@pytest.fixture(scope="module")
async def lab(settings: Settings):  # type: ignore[no-untyped-def]
    uid = uuid.uuid4().hex[:8]
    utl, _ = sc.utilisation_rising(uid)
    out, _ = sc.telemetry_outage(f"o{uid}")   # a second contractor: ctr-o<uid>
    rcv, _ = sc.receivables(uid)
    root = settings.state_dir / "test-workers"
    champion = Engine(f"cs-labc-{uid}", root)
    shadow = Engine(f"cs-labs-{uid}", root, "--shadow", CANDIDATE)
    lab = Lab(uid, champion, shadow, [*utl, *out, *rcv])
    # The candidate changes the contractors' limits and leaves the supplier's alone.
    assert lab.diverging == [lab.contractor, f"ctr-o{uid}"] and lab.supplier in lab.borrowers
    borrowers = set(lab.borrowers)
    source = f"creditstream.engine.{champion.app_id}"
    shadow_limits = shadow_topics(shadow.app_id)[LIMITS_TOPIC]
    for e in (champion, shadow):
        e.start()
    producer = make_producer(settings.kafka_bootstrap)
    try:
        for e in (champion, shadow):
            e.wait_ready()
        await producer.start()
        async with TopicReader(settings.kafka_bootstrap, LIMITS_TOPIC, shadow_limits) as reader:
            last: dict[tuple[str, str], dict] = {}

            def settled(rs: list, want: dict[tuple[str, str], dict]) -> bool:
                for r in rs:
                    v = orjson.loads(r.value)
                    side = "shadow" if r.topic == shadow_limits else "champion" if v["source"] == source else None
                    if side and v["payload"]["borrower_id"] in borrowers:
                        last[(side, v["payload"]["borrower_id"])] = v["payload"]
                return all(k in last and last[k]["limit"] == p["limit"] for k, p in want.items())

            # The registry first, as the broker test does (one partition: the replay's order),
            # and what it decides on both engines before the rest.
            setup = [e for e in lab.events if e.type.startswith("registry.")]
            await produce_events(producer, setup)
            registered = {(side, b): p for side, policy in (("champion", None), ("shadow", CANDIDATE))
                          for b, p in _final(setup, policy).items()}
            assert registered
            await reader.read(lambda rs: settled(rs, registered), timeout=240)
            assert settled([], registered), (last, champion.tail(), shadow.tail())
            await produce_events(producer, [e for e in lab.events if e not in setup])
            want = {(side, b): exp[b] for side, exp in (("champion", lab.expect_champion),
                                                        ("shadow", lab.expect_shadow)) for b in borrowers}
            await reader.read(lambda rs: settled(rs, want), timeout=300)
            assert settled([], want), (last, champion.tail(), shadow.tail())
        yield lab
    finally:
        await producer.stop()
        for e in (champion, shadow):
            e.stop()


@pytest.fixture
async def api(bootstrap: str, pg_url: str):  # type: ignore[no-untyped-def]
    """The lender API with the operator key, a lender of its own, and its base URL."""
    await migrate(pg_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    lender = f"bank-lab-{uuid.uuid4().hex[:8]}"
    lender_key, _ = await repo.add_lender(pool, lender, "Bank Lab")
    runner, port = await start_site(make_app(pool, bootstrap=bootstrap, operator_key=OPERATOR_KEY,
                                             shadow_view=shadow_view))
    try:
        yield f"http://127.0.0.1:{port}", lender_key, pool
    finally:
        await runner.cleanup()
        await pool.close()


async def _get(http: aiohttp.ClientSession, url: str, key: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with http.get(url, headers=headers) as r:
        return r.status, await r.json()


def _cli_divergences(shadow: str, champion: str, day: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "creditstream.cli", "policy", "divergences", "--shadow", shadow,
                           "--champion", champion, "--day", day], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


async def test_ops_api_lists_the_divergences_of_the_cli_and_both_decisions_of_a_borrower(lab: Lab, api) -> None:  # type: ignore[no-untyped-def]
    base, lender_key, _ = api
    shadow, champion = lab.shadow.app_id, lab.champion.app_id
    ops = f"{base}/ops/v1/shadows/{shadow}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        # Who may see the challenger: the operator key only.
        for key in (None, lender_key, "x" * 40, OPERATOR_KEY + "x"):
            status, body = await _get(http, f"{ops}/divergences?champion={champion}&day=all", key)
            assert (status, body["error"]) == (401, "unauthorized"), key
            assert (await _get(http, f"{ops}/borrowers/{lab.contractor}?champion={champion}", key))[0] == 401
        # ... and the operator key is no lender's: the lender API refuses it.
        assert (await _get(http, f"{base}/v1/portfolio", OPERATOR_KEY))[0] == 401
        assert (await _get(http, f"{base}/v1/borrowers/{lab.contractor}/limit", lender_key))[0] == 404

        status, body = await _get(http, f"{base}/ops/v1/shadows", OPERATOR_KEY)
        assert status == 200 and shadow in body["shadows"] and champion not in body["shadows"]

        # The divergences: exactly `creditstream policy divergences`, and what the replay says.
        status, listed = await _get(http, f"{ops}/divergences?champion={champion}&day=all", OPERATOR_KEY)
        assert status == 200
        assert listed == _cli_divergences(shadow, champion, "all")
        assert listed["borrowers_compared"] == len(lab.borrowers)
        assert listed["champion"] == f"creditstream.engine.{champion}"
        assert [d["borrower_id"] for d in listed["divergences"]] == lab.diverging
        for got in listed["divergences"]:
            want = lab.row(got["borrower_id"])
            assert got["change"] == want["change"]
            assert (got["champion"]["limit"], got["shadow"]["limit"]) == (want["champion"]["limit"],
                                                                          want["shadow"]["limit"])
            assert (got["champion"]["codes"], got["shadow"]["codes"]) == (want["champion"]["codes"],
                                                                          want["shadow"]["codes"])
            assert (got["champion"]["policy_version"], got["shadow"]["policy_version"]) == (POLICY_VERSION, CANDIDATE)
        row = next(d for d in listed["divergences"] if d["borrower_id"] == lab.contractor)

        # A day (UTC, event time): the contractor's last decision's, then one without any.
        day = datetime.fromisoformat(row["shadow"]["watermark"]).astimezone(UTC).date().isoformat()
        status, on_day = await _get(http, f"{ops}/divergences?champion={champion}&day={day}", OPERATOR_KEY)
        assert lab.contractor in [d["borrower_id"] for d in on_day["divergences"]] and on_day["day"] == day
        assert on_day == _cli_divergences(shadow, champion, day)
        status, empty = await _get(http, f"{ops}/divergences?champion={champion}&day=2001-01-01", OPERATOR_KEY)
        assert status == 200 and empty["divergences"] == []
        # Today (the default) has none either: the scenario's events are weeks old.
        assert (await _get(http, f"{ops}/divergences?champion={champion}", OPERATOR_KEY))[1]["divergences"] == []

        # One borrower, both decisions whole.
        status, both = await _get(http, f"{ops}/borrowers/{lab.contractor}?champion={champion}", OPERATOR_KEY)
        assert status == 200 and both["divergence"] == row
        assert both["champion"]["limit"] == lab.expect_champion[lab.contractor]["limit"]
        assert both["shadow"]["limit"] == lab.expect_shadow[lab.contractor]["limit"]
        assert both["shadow"]["components"] and both["shadow"]["reasons"]
        assert (both["champion_engine"], both["shadow_engine"]) == (f"creditstream.engine.{champion}", shadow)
        status, same = await _get(http, f"{ops}/borrowers/{lab.supplier}?champion={champion}", OPERATOR_KEY)
        assert status == 200 and same["divergence"] is None
        assert same["champion"]["limit"] == same["shadow"]["limit"] == lab.expect_champion[lab.supplier]["limit"]

        # Bad input: a 4xx with the reason, never a 500.
        for path, code, error in (
                (f"{ops}/borrowers/nobody-{lab.uid}?champion={champion}", 404, "not_found"),
                (f"{base}/ops/v1/shadows/no-such-shadow-{lab.uid}/divergences", 404, "not_found"),
                (f"{ops}/divergences?day=yesterday", 400, "bad_parameter"),
                (f"{ops}/divergences?champion=a%00b", 400, "bad_parameter"),
                (f"{ops}/borrowers/%2e%2e%2fx", 400, "bad_parameter"),
                (f"{base}/ops/v1/nothing", 404, "not_found")):
            status, body = await _get(http, path, OPERATOR_KEY)
            assert (status, body["error"]) == (code, error), (path, body)
            assert body["reason"]


async def test_ops_api_without_an_operator_key_is_closed(pg_url: str, bootstrap: str) -> None:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
    runner, port = await start_site(make_app(pool, bootstrap=bootstrap, shadow_view=shadow_view))
    try:
        async with aiohttp.ClientSession() as http:
            status, body = await _get(http, f"http://127.0.0.1:{port}/ops/v1/shadows", "anything-at-all")
    finally:
        await runner.cleanup()
        await pool.close()
    assert status == 401 and "not configured" in body["reason"]


async def test_lab_page_in_a_real_browser(lab: Lab, api, tmp_path: Path,  # type: ignore[no-untyped-def]
                                          caplog: pytest.LogCaptureFixture) -> None:
    assert os.access(CHROMIUM, os.X_OK), "chromium missing: run scripts/bootstrap.sh (apt-get install chromium)"
    caplog.set_level(logging.INFO)
    base, lender_key, _ = api
    shadow, champion = lab.shadow.app_id, lab.champion.app_id
    shots = shots_dir(tmp_path) / "policy-lab"
    shots.mkdir(parents=True, exist_ok=True)
    row = lab.row(lab.contractor)
    rows_js = "[...document.querySelectorAll('#divergences tbody tr')].map(r => r.dataset.borrower)"
    async with Browser() as b:
        # A lender's key does not open the lab.
        await b.goto(f"{base}/console/lab.html")
        await b.type_into("#key", lender_key)
        await b.click("#signin button")
        await b.wait("document.querySelector('#signin-error').textContent.includes('not the operator key')")
        assert await b.js("document.querySelector('#view-divergences').hidden")

        # The operator: every day's divergences of this shadow against this champion.
        await b.goto(f"{base}/console/lab.html#/?shadow={shadow}&champion={champion}&day=all")
        await b.type_into("#key", OPERATOR_KEY)
        await b.click("#signin button")
        await b.wait(f"!!document.querySelector('tr[data-borrower=\"{lab.contractor}\"]')", 120)
        await b.wait(f"document.querySelectorAll('#divergences tbody tr').length === {len(lab.diverging)}")
        assert await b.js(rows_js) == lab.diverging
        text = await b.js(f"document.querySelector('tr[data-borrower=\"{lab.contractor}\"]').innerText")
        for amount in (row["champion"]["limit"]["amount"], row["shadow"]["limit"]["amount"], row["change"]):
            whole = f"{int(float(amount)):,}"  # as grouped on the page (the sign aside)
            assert whole.lstrip("-") in text, (amount, text)
        summary = f"{len(lab.diverging)} of {len(lab.borrowers)} borrowers differ"
        assert summary in await b.js("document.querySelector('#d-summary').textContent")
        await b.screenshot(shots / "console-divergences.png")

        # Filters: the borrower search and the direction of the change.
        await b.type_into("#q", lab.contractor)
        await b.wait("document.querySelectorAll('#divergences tbody tr').length === 1")
        assert await b.js(rows_js) == [lab.contractor]
        await b.js("document.querySelector('#q').value = ''; document.querySelector('#q')"
                   ".dispatchEvent(new Event('input'))")
        await b.wait(f"document.querySelectorAll('#divergences tbody tr').length === {len(lab.diverging)}")
        other = lab.row(lab.diverging[-1])
        for program, want in ((other["program_id"], [other["borrower_id"]]), ("", lab.diverging)):
            await b.js(f"{{ const p = document.querySelector('#program'); p.value = {json.dumps(program)};"
                       "p.dispatchEvent(new Event('change')) }")
            await b.wait(f"document.querySelectorAll('#divergences tbody tr').length === {len(want)}")
            assert await b.js(rows_js) == want, program
        for direction, pred in (("down", lambda c: c.startswith("-")), ("up", lambda c: not c.startswith("-"))):
            want = [r["borrower_id"] for r in lab.expected if r["change"] is not None and pred(r["change"])
                    and r["change"].strip("-0.") != ""]
            await b.js(f"{{ const d = document.querySelector('#direction'); d.value = '{direction}';"
                       "d.dispatchEvent(new Event('change')) }")
            await b.wait(f"document.querySelectorAll('#divergences tbody tr').length === {len(want)}")
            assert await b.js(rows_js) == want, direction
        await b.js("{ const d = document.querySelector('#direction'); d.value = '';"
                   "d.dispatchEvent(new Event('change')) }")
        # A day without decisions: none.
        await b.js("{ const a = document.querySelector('#all-days'); a.checked = false;"
                   "document.querySelector('#day').value = '2001-01-01'; a.dispatchEvent(new Event('change')) }")
        await b.wait(f"document.querySelector('#d-summary').textContent.includes('0 of {len(lab.borrowers)}')", 120)
        await b.js("{ const a = document.querySelector('#all-days'); a.checked = true; "
                   "a.dispatchEvent(new Event('change')) }")
        await b.wait(f"!!document.querySelector('tr[data-borrower=\"{lab.contractor}\"]')", 120)

        # The side-by-side view, from the row's link.
        await b.click(f"tr[data-borrower=\"{lab.contractor}\"] a")
        await b.wait("document.querySelector('#b-title').dataset.diverges === 'true'", 120)
        champ = await b.js("document.querySelector('#b-champion').innerText")
        chall = await b.js("document.querySelector('#b-shadow').innerText")
        assert POLICY_VERSION in champ and CANDIDATE in chall
        assert f"{int(float(row['champion']['limit']['amount'])):,}" in champ
        assert f"{int(float(row['shadow']['limit']['amount'])):,}" in chall
        assert "never sent to lenders" in chall
        assert await b.js("document.querySelectorAll('#b-components tbody tr').length") >= 1
        await b.screenshot(shots / "console-side-by-side.png")

        # Back to the list, with the same selection.
        await b.click("#back")
        await b.wait(f"!!document.querySelector('tr[data-borrower=\"{lab.contractor}\"]')", 120)

        assert [e for e in b.errors if not e.startswith("Failed to load resource")] == [], b.errors
        assert all(u.startswith(base) or u.startswith("data:") for u in b.requests), b.requests
        assert not any(OPERATOR_KEY in u or lender_key in u for u in b.requests)
    assert OPERATOR_KEY not in caplog.text


def test_the_lab_page_ships_with_the_package() -> None:
    from connectors.lenders.console import _assets

    assets = _assets()
    assert {"lab.html", "lab.js", "console.css"} <= set(assets)
    html = assets["lab.html"][0].decode()
    assert "/console/lab.js" in html and "://" not in html  # nothing from elsewhere


def test_lenders_serve_refuses_a_short_operator_key(tmp_path: Path) -> None:
    """A guessable operator key would open every borrower's challenger decision: refused
    before anything listens (exit 2, the reason said)."""
    env = {**os.environ, "CREDITSTREAM_OPERATOR_KEY": "short-key", "CREDITSTREAM_STATE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "creditstream.cli", "lenders", "serve", "--no-webhooks",
                           "--port", "0"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "operator key must be at least 32 characters" in done.stderr
    assert "ready" not in done.stdout
