"""The policy lab's operator endpoints (``/ops/v1/``): a shadow engine beside its champion.

A shadow engine decides every borrower under a candidate policy and publishes to its own
topics, never to lenders (docs/policy-lab.md). Its decisions are therefore not under the
lender API's ``/v1/`` (a lender key is refused here, and the operator key is not a
lender's): only the platform's operators, holding the key configured as
``CREDITSTREAM_OPERATOR_KEY``, read them, in the console's policy-lab page
(``/console/lab.html``).

The data is read the one way the lab reads it (streams/shadow.py, as `creditstream policy
divergences` and the shadow worker's ``/shadow/divergences`` do): the latest update per
borrower on cs.limits (the champion's ``source``) and on the shadow's limits topic, to
their ends at the time of the request. Not the ledger's PostgreSQL projection: that is
the lenders' sink and a candidate's decision must never be written there. The reader is
given to :func:`add_routes` (`lenders serve` passes streams.shadow): connectors do not
import the engine (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, Protocol, TypeVar

import orjson
from aiohttp import web
from aiokafka.errors import KafkaError

from connectors.errors import BadParameter

log = logging.getLogger(__name__)
PREFIX = "/ops/v1/"
OPERATOR_KEY = web.AppKey("operator_key_hash", bytes)
BOOTSTRAP = web.AppKey("lab_bootstrap", str)


class ShadowView(Protocol):
    """The lab's reader of the champion's and a shadow's decisions (streams/shadow.py)."""

    async def shadows(self, bootstrap: str) -> list[str]: ...

    async def divergences_json(self, bootstrap: str, shadow_app_id: str, champion: str | None,
                               day: str | None) -> bytes: ...

    async def side_by_side(self, bootstrap: str, shadow_app_id: str, borrower_id: str,
                           champion_app_id: str | None = None) -> dict[str, Any] | None: ...


VIEW = web.AppKey("lab_view", ShadowView)
# The shortest operator key `lenders serve` accepts: a guessable key would open every
# borrower's decisions under the candidate to whoever guesses it.
MIN_KEY_LENGTH = 32
# An engine id names Kafka topics (cs.limits.<id>): Kafka's topic characters only.
_ENGINE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Borrower ids are contract ids (schemas/common.py ID_PATTERN), as in the lender API.
_BORROWER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
# A read of two topics to their ends; longer means Kafka is not answering.
READ_TIMEOUT_S = 60.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, error: str, reason: str) -> web.Response:
    # The lender API's and the gateway's shape: {"error": code, "reason": sentence}.
    return _json({"error": error, "reason": reason}, status)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def check_key(key: str | None) -> str | None:
    """Why ``key`` cannot be the operator key (None when it can, or when it is unset)."""
    if key is not None and len(key) < MIN_KEY_LENGTH:
        return f"the operator key must be at least {MIN_KEY_LENGTH} characters"
    return None


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only the operator key opens ``/ops/v1/``; a lender's key never does."""
    if not request.path.startswith(PREFIX):
        return await handler(request)
    expected = request.app.get(OPERATOR_KEY)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if expected is None:
        resp = _error(401, "unauthorized", "operator access is not configured on this server "
                                           "(set CREDITSTREAM_OPERATOR_KEY for lenders serve)")
    elif scheme.lower() != "bearer" or not hmac.compare_digest(_digest(token.strip()), expected):
        resp = _error(401, "unauthorized", "send Authorization: Bearer <operator key>")
    else:
        try:
            return await handler(request)
        except BadParameter as exc:
            return _error(400, "bad_parameter", str(exc))
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("policy lab: Kafka unavailable for %s: %r", request.path, exc)
            resp = _error(503, "unavailable", "Kafka is not reachable; retry shortly")
            resp.headers["Retry-After"] = "2"
            return resp
        except web.HTTPClientError as exc:
            return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    resp.headers["WWW-Authenticate"] = 'Bearer realm="creditstream-operators"'
    return resp


def _param(value: str | None, pattern: re.Pattern[str], name: str) -> str | None:
    if value is not None and not pattern.fullmatch(value):
        raise BadParameter(f"{name} must be an id: letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


async def _shadow_of(request: web.Request) -> str | web.Response:
    app_id = _param(request.match_info["shadow"], _ENGINE_ID, "shadow")
    assert app_id is not None
    if app_id not in await _read(request, request.app[VIEW].shadows):
        return _error(404, "not_found", f"no shadow engine {app_id!r} on the broker (no topic cs.limits.{app_id})")
    return app_id


async def _read(request: web.Request, read: Callable[[str], Awaitable[T]]) -> T:
    """``read(bootstrap)``, bounded in time; no Kafka configured is an unreachable one."""
    bootstrap = request.app[BOOTSTRAP]
    if not bootstrap or VIEW not in request.app:
        raise KafkaError("no Kafka or shadow reader configured for this server")
    return await asyncio.wait_for(read(bootstrap), READ_TIMEOUT_S)


def _day(raw: str | None) -> str | None:
    """``day`` as streams.shadow takes it: YYYY-MM-DD, ``all``, or absent (today, UTC)."""
    if raw is not None and raw != "all":
        try:
            date.fromisoformat(raw)
        except ValueError:
            raise BadParameter("day must be YYYY-MM-DD or all") from None
    return raw


async def get_shadows(request: web.Request) -> web.Response:
    return _json({"shadows": await _read(request, request.app[VIEW].shadows)})


async def get_divergences(request: web.Request) -> web.Response:
    """The same answer as `creditstream policy divergences` (streams.shadow.divergences_json)."""
    app_id = await _shadow_of(request)
    if isinstance(app_id, web.Response):
        return app_id
    champion = _param(request.query.get("champion") or None, _ENGINE_ID, "champion")
    day = _day(request.query.get("day") or None)
    view = request.app[VIEW]
    body = await _read(request, lambda bootstrap: view.divergences_json(bootstrap, app_id, champion, day))
    return web.Response(body=body, content_type="application/json")


async def get_borrower(request: web.Request) -> web.Response:
    app_id = await _shadow_of(request)
    if isinstance(app_id, web.Response):
        return app_id
    borrower = _param(request.match_info["borrower_id"], _BORROWER_ID, "borrower_id")
    assert borrower is not None
    champion = _param(request.query.get("champion") or None, _ENGINE_ID, "champion")
    view = request.app[VIEW]
    both = await _read(request, lambda bootstrap: view.side_by_side(bootstrap, app_id, borrower, champion))
    if both is None:
        return _error(404, "not_found", f"neither the champion nor shadow {app_id!r} decided borrower {borrower!r}")
    return _json(both)


def add_routes(app: web.Application, bootstrap: str | None, operator_key: str | None,
               view: ShadowView | None) -> None:
    """The ``/ops/v1/`` endpoints on the lender API's app; without ``operator_key`` they
    answer 401 (and say why), without ``bootstrap`` or ``view`` 503."""
    if operator_key is not None:
        app[OPERATOR_KEY] = _digest(operator_key)
    if view is not None:
        app[VIEW] = view
    app[BOOTSTRAP] = bootstrap or ""
    app.router.add_get(PREFIX + "shadows", get_shadows)
    app.router.add_get(PREFIX + "shadows/{shadow}/divergences", get_divergences)
    app.router.add_get(PREFIX + "shadows/{shadow}/borrowers/{borrower_id}", get_borrower)
