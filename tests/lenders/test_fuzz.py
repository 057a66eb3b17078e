"""The lender API under malformed paths and parameters: a clear 4xx, never a 500 or a
traceback (issue 11, item 8). In-process server on the real PostgreSQL, real HTTP."""

from __future__ import annotations

import logging

import aiohttp
import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings

from connectors.lenders import repo
from connectors.lenders.api import make_app
from connectors.pg.migrate import migrate
from load.fuzz.lender_api import NASTY_IDS, NASTY_NUMBERS, ROUTES, Probe, probes, problem, send
from tests.lenders.ld_support import start_site

pytestmark = pytest.mark.integration


class Errors(logging.Handler):
    """Every ERROR record (aiohttp logs a handler's exception there with its traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
async def api(pg_url: str):
    await migrate(pg_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    key, _ = await repo.add_lender(pool, f"fuzz-{id(pool):x}", "Fuzz Bank")
    runner, port = await start_site(make_app(pool, poll_s=0.2))
    errors = Errors()
    logging.getLogger().addHandler(errors)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        yield http, f"http://127.0.0.1:{port}", key, errors
    logging.getLogger().removeHandler(errors)
    await runner.cleanup()
    await pool.close()


# Cursors that are valid (the stream opens): "" is no cursor, 2**63 - 1 the largest seq.
VALID_CURSORS = ("", "0", "9223372036854775807")


def fixed_probes() -> list[Probe]:
    out = [Probe(route.format(b)) for route in ROUTES for b in NASTY_IDS if len(b) < 1000]
    out += [Probe(f"/v1/borrowers/bx/history?{p}={n}") for p in ("limit", "before_version") for n in NASTY_NUMBERS]
    cursors = [n for n in NASTY_NUMBERS if n not in VALID_CURSORS]
    out += [Probe(f"/v1/stream/limits?since={n}") for n in cursors]
    out += [Probe("/v1/stream/limits", (("Last-Event-ID", n),)) for n in cursors if "%" not in n]
    return out


async def test_ld_malformed_paths_and_parameters_get_a_clear_4xx(api) -> None:
    """``/v1/borrowers/x%00/limit`` answered 500 and logged a traceback (asyncpg refused the
    NUL); a cursor past 64 bits opened the stream (200) and then failed in PostgreSQL."""
    http, base, key, errors = api
    bad = []
    for probe in fixed_probes():
        status, ctype, body = await send(http, base, key, probe)
        why = problem(status, ctype, body) or (None if 400 <= status < 500 else f"HTTP {status}")
        if why:
            bad.append((probe.path[:80], dict(probe.headers), why))
    assert not bad, bad
    assert not errors.records, [r.getMessage() for r in errors.records]
    status, _, body = await send(http, base, key, Probe("/v1/borrowers/x%00/limit"))
    assert status == 400 and b"bad_parameter" in body and b"borrower_id" in body


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(probe=probes())
async def test_ld_fuzzed_requests_get_clear_answers(api, probe: Probe) -> None:
    http, base, key, errors = api
    status, ctype, body = await send(http, base, key, probe)
    assert problem(status, ctype, body) is None, (probe.path[:200], status, body[:200])
    assert not errors.records, [r.getMessage() for r in errors.records]
