"""Webhook signatures: how creditstream signs, and how a lender verifies (stdlib only).

Header ``X-Creditstream-Signature: t=<unix seconds>,v1=<hex>`` where
``hex = HMAC-SHA256(secret, f"{t}.{body}")`` over the exact raw request body. Lenders can
copy this file as is; ``verify_signature`` is all they need.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from connectors.errors import ConnectorError

HEADER = "X-Creditstream-Signature"


class SignatureError(ConnectorError, ValueError):
    """A webhook that must be refused: ``reason`` is malformed, mismatch or expired."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def signature(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    msg = str(timestamp).encode() + b"." + _as_bytes(body)
    return hmac.new(_as_bytes(secret), msg, hashlib.sha256).hexdigest()


def sign_header(secret: str | bytes, body: str | bytes, now: float | None = None) -> str:
    """The header value creditstream sends with ``body``."""
    t = int(time.time() if now is None else now)
    return f"t={t},v1={signature(secret, t, body)}"


def verify_signature(secret: str | bytes, header: str | None, body: str | bytes,
                     tolerance_s: float = 300, now: float | None = None) -> int:
    """Check a webhook; return its timestamp, or raise :class:`SignatureError`.

    Refuses a header that does not parse, a signature that does not match the raw
    ``body`` (no ``v1`` matches: several are allowed while a secret is rotated), and a
    timestamp more than ``tolerance_s`` seconds from ``now`` (a replayed request).
    """
    if not header:
        raise SignatureError("malformed", f"missing {HEADER} header")
    t: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed", f"expected name=value, got {part.strip()!r}")
        if name == "t":
            try:
                t = int(value)
            except ValueError:
                raise SignatureError("malformed", f"timestamp {value!r} is not an integer") from None
        elif name == "v1":
            candidates.append(value)
    if t is None or not candidates:
        raise SignatureError("malformed", "need t=<unix seconds> and v1=<hex signature>")
    expected = signature(secret, t, body)
    # compare_digest on every candidate: timing reveals nothing about the expected value.
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("mismatch", "signature does not match the body")
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        raise SignatureError("expired", f"timestamp {t} is {abs(current - t):.0f}s from now, "
                                        f"beyond the {tolerance_s:.0f}s window (replay?)")
    return t
