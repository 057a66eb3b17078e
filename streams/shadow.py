"""The operator's view of a shadow engine: borrowers whose champion and shadow decisions differ.

The champion's latest limit update per borrower is on cs.limits (compacted; its envelope
``source`` names the engine: ``creditstream.engine`` for the production engine,
``creditstream.engine.<app_id>`` for another); the shadow's is on its own topic
(schemas.topics.shadow_topics). ``compare`` is pure; ``latest`` reads a topic once, to
its end at the time of the call.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from schemas.topics import LIMITS_TOPIC, shadow_topics

CHANGE = frozenset({"LIMIT_UP", "LIMIT_DOWN", "LIMIT_UNCHANGED", "POLICY_CHANGED"})


def _codes(p: dict[str, Any]) -> list[str]:
    return sorted({r["code"] for r in p["reasons"]} - CHANGE)


def compare(champion: dict[str, dict[str, Any]], shadow: dict[str, dict[str, Any]],
            day: date | None = None) -> list[dict[str, Any]]:
    """Borrowers whose latest decisions differ in limit, status or reason codes; with
    ``day``, only those with a decision on that UTC day (event time) on either side."""
    rows = []
    for bid in sorted(set(champion) | set(shadow)):
        a, b = champion.get(bid), shadow.get(bid)
        if day is not None and not any(p and datetime.fromisoformat(p["watermark"]).astimezone(UTC).date() == day
                                       for p in (a, b)):
            continue
        if a and b and a["limit"] == b["limit"] and a["status"] == b["status"] and _codes(a) == _codes(b):
            continue
        la = Decimal(a["limit"]["amount"]) if a else None
        lb = Decimal(b["limit"]["amount"]) if b else None
        rows.append({
            "borrower_id": bid, "program_id": (b or a or {}).get("program_id"),
            "champion": {"policy_version": a["policy_version"], "limit": a["limit"], "status": a["status"],
                         "codes": _codes(a), "watermark": a["watermark"]} if a else None,
            "shadow": {"policy_version": b["policy_version"], "limit": b["limit"], "status": b["status"],
                       "codes": _codes(b), "watermark": b["watermark"]} if b else None,
            "change": str(lb - la) if la is not None and lb is not None else None,
            "codes_appeared": sorted(set(_codes(b)) - set(_codes(a))) if a and b else [],
            "codes_disappeared": sorted(set(_codes(a)) - set(_codes(b))) if a and b else [],
        })
    return rows


async def latest(bootstrap: str, topic: str, source: str | None = None,
                 borrower: str | None = None) -> dict[str, dict[str, Any]]:
    """The latest limit update per borrower on ``topic`` (only ``source``'s, if given; only
    ``borrower``'s, if given: the record key, so other records are not even parsed)."""
    from connectors.kafka_io import TopicReader

    key = borrower.encode() if borrower is not None else None
    out: dict[str, dict[str, Any]] = {}
    reader = TopicReader(bootstrap, topic, from_beginning=True)
    try:
        await reader.open()
    except LookupError:  # no such topic (a shadow that never ran): no updates
        return out
    try:
        async for rec in reader.records_to_end():
            if rec.value is None or (key is not None and rec.key != key):
                continue
            try:
                value = orjson.loads(rec.value)
            except orjson.JSONDecodeError:
                continue
            if source is None or value.get("source") == source:
                p = value["payload"]
                old = out.get(p["borrower_id"])
                if old is None or p["version"] >= old["version"]:
                    out[p["borrower_id"]] = p
    finally:
        await reader.close()
    return out


def champion_source(champion_app_id: str | None = None) -> str:
    """The envelope ``source`` of a champion's updates on cs.limits: the production
    engine's, or the engine ``champion_app_id``'s."""
    return "creditstream.engine" if champion_app_id is None else f"creditstream.engine.{champion_app_id}"


async def shadows(bootstrap: str) -> list[str]:
    """The ids of the shadow engines on the broker: each has its limits topic
    ``cs.limits.<app_id>`` (schemas.topics.shadow_topics), created when it starts."""
    from aiokafka import AIOKafkaConsumer

    prefix = shadow_topics("")[LIMITS_TOPIC]
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        return sorted(t[len(prefix):] for t in await c.topics() if t.startswith(prefix) and len(t) > len(prefix))
    finally:
        await c.stop()


async def side_by_side(bootstrap: str, shadow_app_id: str, borrower_id: str,
                       champion_app_id: str | None = None) -> dict[str, Any] | None:
    """One borrower's latest champion and shadow decisions (whole limit updates) and their
    divergence (a row of :func:`compare`, or None when they agree); None if neither engine
    decided the borrower."""
    source = champion_source(champion_app_id)
    champion, shadow = await asyncio.gather(
        latest(bootstrap, LIMITS_TOPIC, source, borrower_id),
        latest(bootstrap, shadow_topics(shadow_app_id)[LIMITS_TOPIC], borrower=borrower_id))
    if not champion and not shadow:
        return None
    rows = compare(champion, shadow)
    return {"borrower_id": borrower_id, "shadow_engine": shadow_app_id, "champion_engine": source,
            "champion": champion.get(borrower_id), "shadow": shadow.get(borrower_id),
            "divergence": rows[0] if rows else None}


async def divergences(bootstrap: str, shadow_app_id: str, champion_app_id: str | None = None,
                      day: date | None = None) -> dict[str, Any]:
    """Today's (or ``day``'s) divergences between a shadow engine and its champion (the
    production engine unless ``champion_app_id`` names another)."""
    source = champion_source(champion_app_id)
    champion, shadow = await asyncio.gather(latest(bootstrap, LIMITS_TOPIC, source),
                                            latest(bootstrap, shadow_topics(shadow_app_id)[LIMITS_TOPIC]))
    rows = compare(champion, shadow, day)
    return {"shadow": shadow_app_id, "champion": source, "day": day.isoformat() if day else None,
            "borrowers_compared": len(set(champion) | set(shadow)), "divergences": rows}


async def divergences_json(bootstrap: str, shadow_app_id: str, champion: str | None, day: str | None) -> bytes:
    """The REST answer: ``day`` is YYYY-MM-DD, ``all``, or today (UTC) when absent."""
    when = None if day == "all" else date.fromisoformat(day) if day else datetime.now(UTC).date()
    return orjson.dumps(await divergences(bootstrap, shadow_app_id, champion, when), option=orjson.OPT_INDENT_2)
