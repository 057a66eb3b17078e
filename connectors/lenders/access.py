"""Pure rules of lender delivery: who may see an update, who gets it pushed, retry timing.

Visibility comes from the update itself: a lender sees a borrower's update only when its
lender_id is in ``payload.lenders`` (the funders of the borrower's program). Subscriptions
only narrow what is pushed; they never widen what is visible.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from connectors.errors import ConnectorError
from connectors.sink import backoff_delay

Scope = Literal["all", "program", "borrowers"]


@dataclass(frozen=True)
class Subscription:
    lender_id: str
    scope: Scope
    program_id: str | None = None
    borrower_ids: frozenset[str] = frozenset()

    def matches(self, program_id: str, borrower_id: str) -> bool:
        if self.scope == "all":
            return True
        if self.scope == "program":
            return self.program_id == program_id
        return borrower_id in self.borrower_ids


def funders(payload: dict[str, Any]) -> set[str]:
    """The lender ids an update payload names (``payload.lenders[].lender_id``)."""
    return {str(a.get("lender_id")) for a in payload.get("lenders") or () if isinstance(a, dict)}


def entitled(payload: dict[str, Any], lender_id: str) -> bool:
    """Whether ``lender_id`` may see this update at all."""
    return lender_id in funders(payload)


def targets(payload: dict[str, Any], subscriptions: Iterable[Subscription]) -> list[str]:
    """The lenders an update is pushed to: subscribed to it and entitled to see it."""
    allowed = funders(payload)
    program, borrower = str(payload.get("program_id")), str(payload.get("borrower_id"))
    return sorted({s.lender_id for s in subscriptions
                   if s.lender_id in allowed and s.matches(program, borrower)})


@dataclass(frozen=True)
class RetryPolicy:
    """Webhook retries: exponential backoff with full jitter, then a dead letter.

    Attempt n (1-based) that fails waits uniform(0, min(cap_s, base_s * 2**(n-1))) before
    attempt n+1; after ``max_attempts`` failures the update is dead-lettered.
    """

    max_attempts: int = 10
    base_s: float = 2.0
    cap_s: float = 120.0

    def delay(self, failed_attempt: int, rng: random.Random | None = None) -> float:
        return backoff_delay(failed_attempt - 1, self.base_s, self.cap_s, rng)


class CursorError(ConnectorError, ValueError):
    """A stream cursor that is not a non-negative integer."""


# A ``seq`` is a PostgreSQL bigint: a larger cursor would fail in the query, after the
# stream had already answered 200 (found by fuzzing the lender API).
MAX_CURSOR = 2**63 - 1


def parse_int(value: str) -> int | None:
    """``value`` as a non-negative integer when it is 1 to 19 ASCII digits, else None.

    ``int()`` alone is too lenient for a URL: it takes signs, spaces, underscores and
    non-ASCII digits ("١"), and raises on thousands of digits."""
    if not (0 < len(value) <= 19 and value.isascii() and value.isdigit()):
        return None
    return int(value)


def parse_cursor(value: str | None) -> int | None:
    """Stream cursor from ``Last-Event-ID`` or ``?since=``: the ``seq`` of the last
    decision the client saw; ``None`` means start live, without replay."""
    if value is None or value == "":
        return None
    if value.startswith("-") and parse_int(value[1:]) is not None:
        raise CursorError(f"cursor {value[:40]!r} is negative")
    cursor = parse_int(value)
    if cursor is None and value.isascii() and value.isdigit():
        raise CursorError(f"cursor {value[:40]!r} is beyond the last possible event id ({MAX_CURSOR})")
    if cursor is None:
        raise CursorError(f"cursor {value[:40]!r} is not an integer event id")
    if cursor > MAX_CURSOR:
        raise CursorError(f"cursor {value!r} is beyond the last possible event id ({MAX_CURSOR})")
    return cursor
