"""A lender's portfolio: every borrower it funds now, with its share, filtered and totalled.

What the console's portfolio page shows, and ``GET /v1/portfolio`` answers. A row is a
borrower whose *current* update names the lender among its funders (the same rule as
``GET /v1/borrowers/{id}/limit``), so a borrower refinanced away from the lender leaves
the portfolio at that version. Totals are summed by PostgreSQL in ``numeric`` per
currency: money is never added as floats, here or in the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from connectors.lenders.repo import _VISIBLE, Conn
from schemas.currencies import in_minor_units

# The sort keys the console offers, as SQL (never interpolated from the request).
SORTS = {
    "borrower": "borrower_id",
    "program": "program_id",
    "limit": "limit_amount",
    "available": "available",
    "status": "status",
    "changed": "(payload ->> 'occurred_at')::timestamptz",
}
STATUSES = ("active", "partially_frozen", "frozen")
# The change reasons the engine puts on every update (streams/domain/facility.py): they
# say in one sentence what moved, which is the "last change" of a portfolio row.
CHANGE_CODES = ("LIMIT_UP", "LIMIT_DOWN", "LIMIT_UNCHANGED")


@dataclass(frozen=True)
class Query:
    """The portfolio filter: ``q`` matches a part of the borrower id, case-insensitively."""

    program: str | None = None
    status: str | None = None
    q: str | None = None
    sort: str = "borrower"
    descending: bool = False
    limit: int = 1000


def _where(query: Query) -> tuple[str, list[Any]]:
    # $1 is the lender (in _VISIBLE); the filters follow.
    clauses, args = [_VISIBLE], []
    if query.program:
        args.append(query.program)
        clauses.append(f"program_id = ${len(args) + 1}")
    if query.status:
        args.append(query.status)
        clauses.append(f"status = ${len(args) + 1}")
    if query.q:
        # LIKE's own wildcards in the search text are literal characters.
        args.append("%" + query.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        clauses.append(f"borrower_id ILIKE ${len(args) + 1}")
    return " AND ".join(clauses), args


def share_of(payload: dict[str, Any], lender_id: str) -> dict[str, Any] | None:
    """The lender's allocation in an update payload: its share and its part of the limit."""
    for a in payload.get("lenders") or ():
        if isinstance(a, dict) and a.get("lender_id") == lender_id:
            return {"share": a.get("share"), "limit": a.get("limit")}
    return None


def last_change(payload: dict[str, Any]) -> dict[str, str] | None:
    """The reason saying what changed in this version (the first reason when none does)."""
    reasons = [r for r in payload.get("reasons") or () if isinstance(r, dict)]
    for r in reasons:
        if r.get("code") in CHANGE_CODES:
            return {"code": r["code"], "text": str(r.get("text", ""))}
    return {"code": str(reasons[0].get("code")), "text": str(reasons[0].get("text", ""))} if reasons else None


def row(envelope: dict[str, Any], lender_id: str) -> dict[str, Any]:
    """One portfolio row from a current ``limit.updated`` envelope."""
    p = envelope["payload"]
    mine = share_of(p, lender_id) or {}
    return {
        "borrower_id": p["borrower_id"], "program_id": p["program_id"], "version": p["version"],
        "status": p["status"], "limit": p["limit"], "available": p["available"],
        "outstanding": p["outstanding"], "share": mine.get("share"), "lender_limit": mine.get("limit"),
        "last_change": last_change(p), "changed_at": envelope.get("occurred_at"),
    }


def total(t: Any) -> dict[str, Any]:
    """One currency's totals, each amount in the currency's minor units (2000 JPY, not
    2000.00; 1.234 KWD): a sum of amounts in minor units is exact, only its scale is set."""
    cur = t["currency"].strip()

    def money(x: str | None) -> str | None:
        return None if x is None else str(in_minor_units(Decimal(x), cur))

    return {"currency": cur, "borrowers": t["borrowers"], "limit": money(t["limit"]),
            "available": money(t["available"]), "lender_limit": money(t["lender_limit"])}


async def portfolio(conn: Conn, lender_id: str, query: Query) -> dict[str, Any]:
    """Rows (sorted, at most ``query.limit``), totals per currency over every matching
    row, how many match, and the programs of the whole portfolio (for the filter)."""
    where, args = _where(query)
    order = f"{SORTS[query.sort]} {'DESC' if query.descending else 'ASC'}, borrower_id"
    rows = await conn.fetch(
        f"SELECT payload FROM current_limits WHERE {where} ORDER BY {order} LIMIT {int(query.limit)}",
        lender_id, *args)
    totals = await conn.fetch(
        "SELECT currency, count(*) AS borrowers, sum(limit_amount)::text AS limit,"
        " sum(available)::text AS available,"
        " sum((SELECT (a -> 'limit' ->> 'amount')::numeric"
        "      FROM jsonb_array_elements(payload -> 'payload' -> 'lenders') a"
        "      WHERE a ->> 'lender_id' = $1 LIMIT 1))::text AS lender_limit"
        f" FROM current_limits WHERE {where} GROUP BY currency ORDER BY currency", lender_id, *args)
    programs = await conn.fetch(
        f"SELECT DISTINCT program_id FROM current_limits WHERE {_VISIBLE} ORDER BY 1", lender_id)
    return {
        "lender_id": lender_id,
        "items": [row(orjson.loads(r["payload"]), lender_id) for r in rows],
        "matching": sum(t["borrowers"] for t in totals),
        "totals": [total(t) for t in totals],
        "programs": [r["program_id"] for r in programs],
        "statuses": list(STATUSES),
    }
