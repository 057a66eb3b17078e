"""The ingest gateway: ``POST /v1/events`` (one JSON event, or NDJSON batches).

Per item: decode (the event contract), authorize (the key's scope, then: no program,
borrower or machine registered by another tenant), skip event ids the tenant already
published (idempotency: check, produce and record are one step per (tenant, event id)),
produce with acks=all. The response lists every item with its status; nothing is
buffered without bound: when too many requests are in flight, overall or for the
tenant, the gateway answers 429, when Kafka does not acknowledge in time 503, both with
``Retry-After``; a body that does not arrive within the body timeout gets 408.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from connectors.gateway import httplog
from connectors.gateway.authorize import foreign, refuse, registrations
from connectors.gateway.store import GatewayStore
from connectors.kafka_io import make_producer
from schemas import codec
from schemas.topics import route

log = logging.getLogger(__name__)
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 4 * 1024 * 1024
    max_items: int = 1000
    max_in_flight: int = 32
    # One tenant's requests never hold more than this many of the ``max_in_flight`` slots,
    # so a tenant with slow (or many) connections cannot starve the others.
    max_in_flight_per_tenant: int = 8
    # The whole body must arrive within this: a client sending a byte every 2 s held its
    # slot for as long as it liked (issue 11: sixteen of them made every tenant get 429).
    body_timeout_s: float = 10.0
    produce_timeout_s: float = 5.0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("creditstream_gateway_requests_total", "Requests by status", ["status"],
                                registry=self.registry)
        self.items = Counter("creditstream_gateway_items_total", "Items by outcome and reason",
                             ["outcome", "reason"], registry=self.registry)
        self.produce = Histogram("creditstream_gateway_produce_seconds", "Time for Kafka to acknowledge a request",
                                 registry=self.registry)


class TenantSlots:
    """Requests in flight per tenant, at most ``limit`` each (no lock needed: one loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy: dict[str, int] = {}

    def full(self, tenant: str) -> bool:
        return self.busy.get(tenant, 0) >= self.limit

    @contextmanager
    def slot(self, tenant: str) -> Iterator[None]:
        self.busy[tenant] = self.busy.get(tenant, 0) + 1
        try:
            yield
        finally:
            self.busy[tenant] -= 1
            if not self.busy[tenant]:
                del self.busy[tenant]  # no entry per tenant ever seen: the map stays small


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json",
                        headers=headers)


def _event_id(raw: bytes) -> str | None:
    """The event id of an item that failed validation, when it has a readable one: the
    client finds which of its events was refused by id, not only by position."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    event_id = value.get("event_id") if isinstance(value, dict) else None
    return event_id[:200] if isinstance(event_id, str) else None


def _items(request_body: bytes, content_type: str) -> list[bytes]:
    if content_type == NDJSON:
        return [line for line in request_body.split(b"\n") if line.strip()]
    return [request_body]


DEFAULT_LIMITS = Limits()
POOL = web.AppKey("pool", asyncpg.Pool)
STORE = web.AppKey("store", GatewayStore)
PRODUCER: web.AppKey[Any] = web.AppKey("producer", object)  # an AIOKafkaProducer (untyped) or None


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Unknown paths and methods answer in the error shape of every other answer here and
    of the lender API, ``{"error", "reason"}``, not aiohttp's plain-text page."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        return _json(exc.status, {"error": exc.reason.lower().replace(" ", "_"),
                                  "reason": f"{request.method} {request.path[:200]}: {exc.reason}"})


def build_app(pg_url: str, bootstrap: str, limits: Limits = DEFAULT_LIMITS) -> web.Application:
    httplog.install()
    app = web.Application(client_max_size=limits.max_body_bytes, middlewares=[json_errors])
    metrics = Metrics()
    gate = asyncio.Semaphore(limits.max_in_flight)
    tenants = TenantSlots(limits.max_in_flight_per_tenant)

    async def startup(app: web.Application) -> None:
        # A request holds a connection while Kafka acknowledges (its event ids stay locked
        # until recorded): one per request in flight, and a few for authentication.
        app[POOL] = await asyncpg.create_pool(pg_url, min_size=1, max_size=limits.max_in_flight + 4)
        app[STORE] = GatewayStore(app[POOL])
        app[PRODUCER] = None
        try:
            await producer()
        except Exception as exc:  # noqa: BLE001 - the gateway serves 503s until Kafka answers
            log.warning("gateway: Kafka not reachable at start (%r); requests get 503 until it is", exc)

    async def producer() -> Any:
        """The producer, started on first use: a gateway that starts while Kafka is down
        answers 503 instead of refusing to start."""
        if app[PRODUCER] is None:
            p = make_producer(bootstrap, request_timeout_ms=int(limits.produce_timeout_s * 1000))
            try:
                await asyncio.wait_for(p.start(), timeout=limits.produce_timeout_s)
            except BaseException:
                await p.stop()
                raise
            app[PRODUCER] = p
        return app[PRODUCER]

    async def cleanup(app: web.Application) -> None:
        if app[PRODUCER] is not None:
            await app[PRODUCER].stop()
        await app[POOL].close()

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)

    def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        metrics.requests.labels(str(status)).inc()
        return _json(status, body, headers)

    async def post_events(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        scope = await app[STORE].authenticate(auth[7:]) if auth.startswith("Bearer ") else None
        if scope is None:
            return answer(401, {"error": "unauthorized", "reason": "missing, unknown or revoked API key"},
                          {"WWW-Authenticate": "Bearer"})
        if tenants.full(scope.tenant):
            return answer(429, {"error": "busy", "reason": f"tenant {scope.tenant!r} has "
                                f"{limits.max_in_flight_per_tenant} requests in flight; retry later"},
                          {"Retry-After": "1"})
        if gate.locked():
            return answer(429, {"error": "busy", "reason": "too many requests in flight; retry later"},
                          {"Retry-After": "1"})
        with tenants.slot(scope.tenant):
            async with gate:
                return await _publish(request, scope)

    def sieve(tenant: str, good: list[tuple[int, Any]], refs: dict[int, tuple[list, list]],
              owners: dict[Any, str], results: list[dict[str, Any]]) -> list[tuple[int, Any]]:
        kept = []
        for i, event in good:
            why = foreign(tenant, [*refs[i][0], *refs[i][1]], owners)
            if why:
                results.append({"index": i, "event_id": event.event_id, "status": "forbidden", "reason": why})
                metrics.items.labels("forbidden", "owner").inc()
            else:
                kept.append((i, event))
        return kept

    async def owned(tenant: str, good: list[tuple[int, Any]],
                    results: list[dict[str, Any]]) -> list[tuple[int, Any]]:
        """The items that register or name no program, borrower or machine of another
        tenant; the others are answered forbidden. What the kept items register becomes
        the tenant's now, before producing, so two tenants racing cannot both win."""
        refs = {i: registrations(e) for i, e in good}
        touched = {r for regs, names in refs.values() for r in (*regs, *names)}
        if not touched:
            return good
        owners = await app[STORE].owners(touched)
        good = sieve(tenant, good, refs, owners, results)
        new = {r for i, _ in good for r in refs[i][0] if r not in owners}
        if new:
            owners.update(await app[STORE].claim(tenant, new))
            good = sieve(tenant, good, refs, owners, results)  # another tenant claimed first
        return good

    def duplicate(i: int, event: Any, results: list[dict[str, Any]]) -> None:
        results.append({"index": i, "event_id": event.event_id, "status": "duplicate"})
        metrics.items.labels("duplicate", "").inc()

    async def deliver(tenant: str, good: list[tuple[int, Any]],
                      results: list[dict[str, Any]]) -> web.Response | None:
        """Produce the items whose event id the tenant has not published yet, and record
        them, holding their ids (store.exclusive) so parallel copies of a request cannot
        both find an id new; None, or the 503 when Kafka did not acknowledge."""
        async with app[STORE].exclusive(tenant, [e.event_id for _, e in good]) as accepted:
            known = await accepted.known([e.event_id for _, e in good])
            to_send = []
            for i, event in good:
                if event.event_id in known:
                    duplicate(i, event, results)
                else:
                    known.add(event.event_id)  # the same id twice in one body: sent once
                    to_send.append((i, event))
            if not to_send:
                return None
            t0 = time.perf_counter()
            try:
                kafka = await producer()
                sent = [(i, e, *route(e)) for i, e in to_send]
                futures = [await kafka.send(topic, codec.encode(e), key=key) for _, e, topic, key in sent]
                await asyncio.wait_for(asyncio.gather(*futures), timeout=limits.produce_timeout_s)
            except (TimeoutError, Exception) as exc:  # noqa: BLE001 - any broker failure is a 503
                log.warning("gateway: produce failed for tenant %s: %r", tenant, exc)
                return answer(503, {"error": "unavailable", "reason": "the event log did not acknowledge in time; "
                                    "retry with the same event ids"}, {"Retry-After": "5"})
            metrics.produce.observe(time.perf_counter() - t0)
            await accepted.record([(e.event_id, e.type, topic) for _, e, topic, _ in sent])
        for i, e, topic, _ in sent:
            results.append({"index": i, "event_id": e.event_id, "status": "accepted", "topic": topic})
            metrics.items.labels("accepted", "").inc()
        return None

    async def _publish(request: web.Request, scope: Any) -> web.Response:
        try:
            body = await asyncio.wait_for(request.read(), timeout=limits.body_timeout_s)
        except web.HTTPRequestEntityTooLarge:
            return answer(413, {"error": "too_large", "reason": f"body over {limits.max_body_bytes} bytes"})
        except TimeoutError:
            log.warning("gateway: tenant %s sent its body too slowly; closing", scope.tenant)
            slow = answer(408, {"error": "too_slow", "reason": f"the body did not arrive within "
                                f"{limits.body_timeout_s:g} s"})
            slow.force_close()  # the rest of the body is not waited for (nor drained)
            return slow
        raw_items = _items(body, request.content_type)
        if not raw_items:
            return answer(400, {"error": "empty", "reason": "no event in the body"})
        if len(raw_items) > limits.max_items:
            return answer(413, {"error": "too_many_items",
                                "reason": f"{len(raw_items)} items; at most {limits.max_items} per request"})
        results: list[dict[str, Any]] = []
        good: list[tuple[int, Any]] = []
        for i, raw in enumerate(raw_items):
            try:
                event = codec.decode(raw)
            except codec.DecodeError as exc:
                results.append({"index": i, "event_id": _event_id(raw), "status": "rejected",
                                "reason": exc.reason, "errors": exc.errors})
                metrics.items.labels("rejected", exc.reason).inc()
                continue
            why = refuse(scope, event)
            if why:
                results.append({"index": i, "event_id": event.event_id, "status": "forbidden", "reason": why})
                metrics.items.labels("forbidden", "scope").inc()
                continue
            good.append((i, event))
        good = await owned(scope.tenant, good, results)
        if good:
            failed = await deliver(scope.tenant, good, results)
            if failed is not None:
                return failed
        results.sort(key=lambda r: r["index"])
        ok = sum(1 for r in results if r["status"] in ("accepted", "duplicate"))
        refused = [r["status"] for r in results if r["status"] not in ("accepted", "duplicate")]
        # 207 only when this request put something on the log and refused something:
        # duplicates and refusals alone (nothing new accepted) answer like the refusals.
        if not refused:
            status = 200
        elif any(r["status"] == "accepted" for r in results):
            status = 207
        elif all(s == "forbidden" for s in refused):
            status = 403
        else:
            status = 422
        return answer(status, {"accepted": sum(1 for r in results if r["status"] == "accepted"),
                               "duplicates": sum(1 for r in results if r["status"] == "duplicate"),
                               "refused": len(results) - ok, "results": results})

    async def healthz(request: web.Request) -> web.Response:
        try:
            await app[POOL].fetchval("SELECT 1")
            await (await producer()).client.fetch_all_metadata()
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return _json(503, {"status": "failing", "reason": repr(exc)})
        return _json(200, {"status": "ok"})

    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), content_type="text/plain")

    app.router.add_post("/v1/events", post_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    return app
