"""Webhook URLs (issue 11, item 7): HTTPS to public addresses only, loopback under the
development flag, checked at registration and again at send time, redirects not followed.
Real PostgreSQL, Kafka and HTTP receivers on loopback."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp import web

from connectors.kafka_io import produce_events
from connectors.lenders import repo
from connectors.lenders.access import RetryPolicy
from connectors.lenders.urls import GuardedResolver, UrlPolicy, WebhookUrlError, check
from tests.lenders.ld_support import DEV_URLS, dispatching, eventually, limit_update, receiving

STRICT = UrlPolicy()
REFUSED = [
    "file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL", "ftp://lender.example/x",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://169.254.169.254/latest/meta-data/", "http://lender.example/hook",  # plain http
    "https://127.0.0.1:6066/", "https://localhost/hook", "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook", "https://10.0.0.5/hook", "https://192.168.1.1/hook",
    "https://172.16.0.1/hook", "https://100.64.0.1/hook", "https://[fd00::1]/hook",
    "https://[fe80::1]/hook", "https://0.0.0.0/hook", "https://224.0.0.1/hook",
    "https://bank:pw@93.184.216.34/hook", "https://93.184.216.34/ho ok", "https:///hook",
    "https://93.184.216.34:99999/hook", "javascript:alert(1)", "", "https://b\u00e4nk.example/hook",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_ld_refused_webhook_urls(url: str) -> None:
    with pytest.raises(WebhookUrlError):
        await check(url, STRICT)


async def test_ld_flags_allow_exactly_what_they_name() -> None:
    await check("https://93.184.216.34/hook", STRICT)                 # a public address
    await check("http://127.0.0.1:9/hook", DEV_URLS)                  # development: loopback, http too
    await check("https://[::1]:9/hook", DEV_URLS)
    for url in ("http://10.0.0.5/hook", "https://10.0.0.5/hook", "http://169.254.169.254/"):
        with pytest.raises(WebhookUrlError):
            await check(url, DEV_URLS)
    private = UrlPolicy(allow_private=True)
    await check("https://10.0.0.5/hook", private)
    for url in ("http://10.0.0.5/hook", "https://169.254.169.254/", "https://127.0.0.1/"):
        with pytest.raises(WebhookUrlError):
            await check(url, private)


async def test_ld_the_connector_refuses_what_a_name_resolves_to() -> None:
    """A name checked once could resolve elsewhere later (DNS rebinding): the dispatcher's
    resolver refuses every answer holding an address the policy refuses."""
    with pytest.raises(OSError, match="loopback"):
        await GuardedResolver(STRICT).resolve("localhost", 443)
    assert await GuardedResolver(DEV_URLS).resolve("localhost", 443)


class Receiver:
    def __init__(self) -> None:
        self.hits: list[str] = []

    async def hook(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        if request.path.startswith("/moved"):
            raise web.HTTPFound(f"http://127.0.0.1:{request.url.port}/internal")
        return web.Response(status=204)


@pytest.mark.integration
async def test_ld_registration_refuses_and_send_time_rechecks(bootstrap: str, pool: asyncpg.Pool,
                                                              producer, uid: str) -> None:
    """Before: ``lenders add`` stored any URL and the dispatcher posted signed bodies to the
    worker's own loopback port. Now the registration raises, and a row that holds such a
    URL anyway (written before validation existed) is refused at every attempt, unsent."""
    receiver = Receiver()
    inside, moved = f"li-{uid}", f"lm-{uid}"
    async with receiving("/{tail:.*}", receiver.hook) as port:
        for url in (f"http://127.0.0.1:{port}/hook", "http://169.254.169.254/latest/meta-data/",
                    "file:///etc/passwd"):
            with pytest.raises(WebhookUrlError):
                await repo.add_lender(pool, f"bad-{uid}", "Bad", url)
        assert not await pool.fetchval("SELECT 1 FROM lenders WHERE lender_id = $1", f"bad-{uid}")

        # A URL stored before validation (or whose name now resolves inside): strict dispatcher.
        await repo.add_lender(pool, inside, "Inside", f"http://127.0.0.1:{port}/hook", url_policy=DEV_URLS)
        await repo.subscribe(pool, inside, "all")
        group = f"test-webhook-urls-{uid}"
        async with dispatching(bootstrap, pool, group, RetryPolicy(max_attempts=2, base_s=0.05, cap_s=0.1),
                               url_policy=STRICT):
            await produce_events(producer, [limit_update(f"bi-{uid}", 1, f"pi-{uid}", [inside])])

            async def dead() -> str | None:
                return await pool.fetchval("SELECT last_error FROM webhook_dead_letters WHERE lender_id = $1",
                                           inside)

            error = await eventually(dead, timeout=30)
        assert "refused webhook URL" in error and "loopback" in error
        assert receiver.hits == []  # nothing was sent to this machine

        # Redirects: a 302 to an internal address is a failed attempt, never followed.
        await repo.add_lender(pool, moved, "Moved", f"http://127.0.0.1:{port}/moved", url_policy=DEV_URLS)
        await repo.subscribe(pool, moved, "all")
        async with dispatching(bootstrap, pool, f"{group}-2", RetryPolicy(max_attempts=1, base_s=0.05, cap_s=0.1)):
            await produce_events(producer, [limit_update(f"bm-{uid}", 1, f"pm-{uid}", [moved])])

            async def moved_dead() -> str | None:
                return await pool.fetchval("SELECT last_error FROM webhook_dead_letters WHERE lender_id = $1",
                                           moved)

            assert await eventually(moved_dead, timeout=30) == "HTTP 302"
        assert receiver.hits == ["/moved"]
