"""Webhooks through the real broker, PostgreSQL and HTTP: signatures checked with the
lenders' helper, retries, strict order per (lender, borrower), dead letters, isolation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiohttp import web

from connectors.kafka_io import produce_events
from connectors.lenders import repo
from connectors.lenders.access import RetryPolicy
from connectors.lenders.verify import HEADER, SignatureError, verify_signature
from tests.lenders.ld_support import DEV_URLS, dispatching, eventually, limit_update, receiving

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    """A lender endpoint that fails on purpose: ``fail[(borrower, version)]`` = how many
    attempts to refuse with 503 before accepting (a large number: always)."""

    secrets: dict[str, str]
    fail: dict[tuple[str, int], int] = field(default_factory=dict)
    seen: list[tuple[str, str, int, int, int]] = field(default_factory=list)  # lender, b, v, attempt, status
    bad_signatures: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        lender = request.match_info["lender"]
        body = await request.read()
        try:
            verify_signature(self.secrets[lender], request.headers.get(HEADER), body)
        except SignatureError as exc:
            self.bad_signatures.append(str(exc))
            return web.Response(status=401)
        borrower = request.headers["X-Creditstream-Borrower"]
        version = int(request.headers["X-Creditstream-Version"])
        attempt = int(request.headers["X-Creditstream-Attempt"])
        left = self.fail.get((borrower, version), 0)
        status = 503 if left > 0 else 204
        if left > 0:
            self.fail[(borrower, version)] = left - 1
        self.seen.append((lender, borrower, version, attempt, status))
        return web.Response(status=status)


async def test_ld_webhooks_retry_in_order_dead_letter_and_stay_within_the_portfolio(
        bootstrap: str, pool: asyncpg.Pool, producer, uid: str) -> None:
    x, y = f"lx-{uid}", f"ly-{uid}"
    bx, by = f"bx-{uid}", f"by-{uid}"
    receiver = Receiver(secrets={})
    async with receiving("/hook/{lender}", receiver.handle) as port:
        for lid in (x, y):
            _, secret = await repo.add_lender(pool, lid, f"Bank {lid}", f"http://127.0.0.1:{port}/hook/{lid}",
                                              url_policy=DEV_URLS)
            receiver.secrets[lid] = secret
            await repo.subscribe(pool, lid, "all")
        # X also asks for Y's borrower by name: a subscription never widens what X may see.
        await repo.subscribe(pool, x, "borrowers", borrower_ids=[by])

        group = f"test-webhooks-{uid}"
        async with dispatching(bootstrap, pool, group, RetryPolicy(max_attempts=3, base_s=0.05, cap_s=0.2)):
            receiver.fail[(bx, 1)] = 2      # accepted on the 3rd attempt
            receiver.fail[(bx, 2)] = 99     # never accepted: dead-lettered, v3 and v4 still go
            await produce_events(producer, [limit_update(bx, v, f"pa-{uid}", [x]) for v in (1, 2, 3, 4)])
            await produce_events(producer, [limit_update(by, v, f"pb-{uid}", [y]) for v in (1, 2)])

            def delivered() -> set[tuple[str, str, int]]:
                return {(lid, b, v) for lid, b, v, _, st in receiver.seen if st == 204}

            await eventually(lambda: _true({(x, bx, 3), (x, bx, 4), (y, by, 2)} <= delivered()), timeout=30)
            await asyncio.sleep(0.5)  # anything wrong would arrive now

        assert not receiver.bad_signatures
        at_x = [(b, v, a, st) for lid, b, v, a, st in receiver.seen if lid == x]
        assert {b for b, *_ in at_x} == {bx}, "X received a borrower it does not fund"
        assert [(v, a, st) for _, v, a, st in at_x] == [
            (1, 1, 503), (1, 2, 503), (1, 3, 204),
            (2, 1, 503), (2, 2, 503), (2, 3, 503),
            (3, 1, 204), (4, 1, 204)]
        assert [(b, v) for lid, b, v, _, st in receiver.seen if lid == y] == [(by, 1), (by, 2)]

        log = await pool.fetch("SELECT version, attempt, status, response_code FROM webhook_deliveries"
                               " WHERE lender_id = $1 ORDER BY id", x)
        assert [(r["version"], r["attempt"], r["status"], r["response_code"]) for r in log] == [
            (1, 1, "failed", 503), (1, 2, "failed", 503), (1, 3, "delivered", 204),
            (2, 1, "failed", 503), (2, 2, "failed", 503), (2, 3, "dead", 503),
            (3, 1, "delivered", 204), (4, 1, "delivered", 204)]
        dead = await pool.fetch("SELECT borrower_id, version, attempts FROM webhook_dead_letters"
                                " WHERE lender_id = $1", x)
        assert [(r["borrower_id"], r["version"], r["attempts"]) for r in dead] == [(bx, 2, 3)]
        assert await repo.progress(pool, x, bx) == 4
        assert await repo.progress(pool, x, by) == 0


async def _true(value: bool) -> bool:
    return value


async def test_ld_webhook_endpoint_down_across_a_dispatcher_restart_resumes_in_order(
        bootstrap: str, pool: asyncpg.Pool, producer, uid: str) -> None:
    """The endpoint refuses everything; the dispatcher is stopped mid-retry and restarted in
    the same group: what was delivered is not sent again, the rest arrives in order."""
    x, b = f"lx-{uid}", f"bx-{uid}"
    receiver = Receiver(secrets={})
    group = f"test-webhooks-{uid}"
    policy = RetryPolicy(max_attempts=50, base_s=0.05, cap_s=0.1)
    async with receiving("/hook/{lender}", receiver.handle) as port:
        _, receiver.secrets[x] = await repo.add_lender(pool, x, "Bank X", f"http://127.0.0.1:{port}/hook/{x}",
                                                               url_policy=DEV_URLS)
        await repo.subscribe(pool, x, "program", program_id=f"pa-{uid}")

        async with dispatching(bootstrap, pool, group, policy):
            await produce_events(producer, [limit_update(b, 1, f"pa-{uid}", [x])])
            await eventually(lambda: _true(any(v == 1 and st == 204 for _, _, v, _, st in receiver.seen)))
            receiver.fail.update({(b, 2): 10_000, (b, 3): 10_000})      # the endpoint goes down
            await produce_events(producer, [limit_update(b, v, f"pa-{uid}", [x]) for v in (2, 3)])
            await eventually(lambda: _true(sum(v == 2 for _, _, v, _, _ in receiver.seen) >= 3))
        assert not any(v == 3 for _, _, v, _, _ in receiver.seen), "v3 went before v2 succeeded"

        receiver.fail.clear()                                       # back up
        async with dispatching(bootstrap, pool, group, policy, at_end=False) as second:
            await eventually(lambda: _true(any(v == 3 and st == 204 for _, _, v, _, st in receiver.seen)))
        ok = [v for _, _, v, _, st in receiver.seen if st == 204]
        assert ok == [1, 2, 3] and not receiver.bad_signatures
        assert second.stats.delivered == 2  # v1 was not sent again
