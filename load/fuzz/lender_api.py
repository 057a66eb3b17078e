"""Fuzzing the lender API over HTTP: malformed paths, parameters and cursors.

Every request carries a valid lender key, so it reaches the handlers. Paths are the
API's routes with the borrower id and the query broken (NUL and control characters,
invalid UTF-8 and lone surrogates percent-encoded, slashes, very long ids, signs,
exponents, non-ASCII digits, numbers past 64 bits, repeated parameters), plus unknown
paths and cursors in ``Last-Event-ID``. The contract: a JSON answer below 500; every 4xx
carries ``error`` and ``reason`` (the gateway's error shape). A stream that opens (200) is closed at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from hypothesis import strategies as st

ROUTES = ("/v1/borrowers/{}/limit", "/v1/borrowers/{}/history", "/v1/borrowers/{}/alerts")
# Byte strings that broke, or could break, a handler or PostgreSQL, percent-encoded as sent.
NASTY_IDS = ("x%00", "%00", "%ff%fe", "%ed%a0%80", "%c0%af", "x%0a", "x%0d%0ay", "%2F", "..%2F..",
             "%25", "%20", "a" * 65, "a" * 4000, "%E2%80%AE", "%EF%BC%91", "-x", ".", "x%09",
             "%F0%9F%92%A9", "%u0000", "%", "%zz", "%C3%A9", "x;y", "x'--", "x%22")
NASTY_NUMBERS = ("", "0", "-1", "+5", "%205", "5%20", "1_0", "1e3", "0x10", "5.0", "NaN", "inf",
                 "%D9%A3", "%EF%BC%91", "9" * 19, "9" * 20, "9" * 5000, "9223372036854775807",
                 "9223372036854775808", "18446744073709551616", "%00", "%ed%a0%80", "1%00")
PARAMS = ("limit", "before_version", "since")


@dataclass(frozen=True)
class Probe:
    """One request: the raw path and query as sent (already percent-encoded), headers."""

    path: str
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def stream(self) -> bool:
        return self.path.startswith("/v1/stream/")


# surrogatepass: lone surrogates go out as their (invalid) UTF-8 bytes, as an attacker sends them.
ids = st.sampled_from(NASTY_IDS) | st.text(min_size=1, max_size=80).map(
    lambda t: quote(t.encode("utf-8", "surrogatepass"), safe=""))
numbers = st.sampled_from(NASTY_NUMBERS) | st.integers(-(2**70), 2**70).map(str)


@st.composite
def probes(draw: st.DrawFn) -> Probe:
    kind = draw(st.sampled_from(("borrower", "borrower", "query", "stream", "unknown")))
    if kind == "unknown":
        return Probe("/v1/" + draw(st.sampled_from(("borrowers", "borrowers/x", "stream", "x%00", "borrowers/x/limit/y",
                                                    "borrowers/x/LIMIT", "%2e%2e/healthz"))))
    if kind == "stream":
        query = "&".join(f"since={draw(numbers)}" for _ in range(draw(st.integers(0, 2))))
        headers = (("Last-Event-ID", draw(numbers).replace("%", "")),) if draw(st.booleans()) else ()
        return Probe(f"/v1/stream/limits{'?' + query if query else ''}", headers)
    route = draw(st.sampled_from(ROUTES))
    borrower = draw(ids) if kind == "borrower" else "bx-fuzz"
    pairs = draw(st.lists(st.tuples(st.sampled_from(PARAMS), numbers), max_size=3))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    return Probe(route.format(borrower) + (f"?{query}" if query else ""))


async def send(http: Any, base: str, key: str, probe: Probe) -> tuple[int, str, bytes]:
    """Send ``probe`` byte for byte (no re-encoding of the path); a stream is cut at once."""
    from yarl import URL

    headers = {"Authorization": f"Bearer {key}", **dict(probe.headers)}
    async with http.get(URL(base + probe.path, encoded=True), headers=headers) as r:
        body = await r.content.read(4096) if r.content_type == "text/event-stream" else await r.read()
        return r.status, r.content_type, body


def problem(status: int, content_type: str, body: bytes) -> str | None:
    """None when the answer keeps the contract, else what is wrong with it."""
    if status >= 500:
        return f"HTTP {status}: {body[:200]!r}"
    if status == 200 and content_type == "text/event-stream":
        return None
    if status == 400 and content_type == "text/plain":
        return None  # aiohttp's HTTP parser (a request line over 8 KB...): its own plain 400
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"HTTP {status} answer is not JSON: {body[:200]!r}"
    if status >= 400 and not (isinstance(answer, dict) and answer.get("error") and answer.get("reason")):
        return f"HTTP {status} without error and reason: {body[:200]!r}"
    return None


def reason(status: int, body: bytes) -> str:
    """What the campaign counts a refusal as: the status and the API's error code."""
    if status == 400 and not body.startswith(b"{"):
        return "http_400_parser"
    try:
        return f"http_{status}_{orjson.loads(body).get('error')}"
    except (orjson.JSONDecodeError, AttributeError):
        return f"http_{status}"
