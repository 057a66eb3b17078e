"""`creditstream chaos run --fault pg`: PostgreSQL down under the ledger, under load.

The ledger (connectors/ledger/service.py, in this process, on a group of its own that
starts at the end of cs.limits and cs.alerts) consumes the chaos engine's output while
the open-loop producer sends telemetry and business events. When 40% of the stream is
sent, the local stack's private PostgreSQL is stopped for real (``pg_ctl stop -m fast``),
and started again after the outage. Once the engine and the ledger have caught up, the
ledger is checked against what the engine published on cs.limits in this run:

- lost: (borrower, version) published but missing from decision_log, plus borrowers whose
  current_limits row is missing or differs (version, limit, available, status) from the
  last update published;
- duplicates: (borrower, version) whose decision_log row differs from what was published
  (the primary key keeps one row; a differing one is what a lender would see twice), plus
  versions the engine itself published twice with different content;
- recovered: seconds from PostgreSQL accepting connections again until the ledger has
  committed everything (group lag 0); the first write after the restart is noted too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from connectors.ledger.service import TOPICS, Ledger
from connectors.pg.migrate import migrate
from creditstream.stack.postgres import Postgres
from load.chaos import EngineRun, Published, build_traffic, drive, new_tag
from load.chaos_sinks import (
    BUSINESS_EVERY,
    ChaosError,
    GroupLag,
    SinkResult,
    engine_failures,
    group_at_end,
    task_alive,
    until,
)
from schemas import codec, config


async def run(events: int, machines: int, rate: float, seed: int, outage_s: float) -> SinkResult:
    settings = config.load()
    pg = Postgres(settings)
    if pg.external:
        raise ChaosError("the pg fault stops the local stack's private PostgreSQL; "
                         "it cannot stop a server named by CREDITSTREAM_PG_URL")
    if pg.pid() is None:
        raise ChaosError("the local stack's PostgreSQL is not running: `creditstream stack up`")
    url = settings.pg_url
    await migrate(url)
    tag = new_tag()
    traffic = build_traffic(tag, seed, machines, events, BUSINESS_EVERY)
    group = f"cs-chaos-ledger-{tag.lower()}"
    await group_at_end(settings.kafka_bootstrap, group, list(TOPICS))
    ledger = Ledger(settings.kafka_bootstrap, url, group=group)
    stop = asyncio.Event()
    outage: asyncio.Task[tuple[float, float, float, float]] | None = None
    async with GroupLag(settings.kafka_bootstrap, group, list(TOPICS)) as lag, \
            EngineRun(settings, tag) as engine:
        ledger_task = asyncio.create_task(ledger.run(stop), name="ledger")
        alive = task_alive(ledger_task)
        try:
            async def inject() -> None:
                nonlocal outage
                outage = asyncio.create_task(_outage(pg, ledger, lag, outage_s, alive))

            records = await drive(engine, traffic, rate, inject)
            assert outage is not None
            down_at, up_at, first_write_s, recover_s = await outage
            await until(lambda: _zero(lag), 300, "the ledger did not catch up", alive)
        finally:
            if outage is not None and not outage.done():
                outage.cancel()
                with contextlib.suppress(BaseException):
                    await outage
            if pg.pid() is None:  # whatever failed, the stack's PostgreSQL is left running
                await asyncio.to_thread(pg.start)
            stop.set()
            await asyncio.gather(ledger_task, return_exceptions=True)
    pub = Published.of(records, engine.source)
    missing, differing, current_off, unpublished = await _check(url, pub)
    failures = pub.foreign_failure() + engine_failures(pub.gaps(), 0, pub.mismatches(traffic.reference))
    if unpublished:
        failures.append(f"{unpublished} decision_log rows this engine never published")
    if ledger.stats.retries == 0:
        failures.append("no update reached the ledger while PostgreSQL was down")
    return SinkResult(
        "pg", outage_s, traffic.records, len(pub.updates), len(pub.versions()),
        lost=missing + current_off, duplicates=differing + pub.conflicting, order_violations=0,
        recover_s=recover_s,
        notes={"postgresql_down": outage_s, "published_meanwhile": pub.between(down_at, up_at),
               "ledger_retries": ledger.stats.retries,
               "first_write_after": first_write_s, "missing_in_decision_log": missing,
               "current_limits_off": current_off},
        failures=failures)


async def _zero(lag: GroupLag) -> bool:
    return await lag.lag() == 0


async def _outage(pg: Postgres, ledger: Ledger, lag: GroupLag, outage_s: float,
                  alive: Any) -> tuple[float, float, float, float]:
    """Stop PostgreSQL for ``outage_s``, start it; return when it stopped and when it
    accepted connections again (wall clock), and the seconds from then to the ledger's
    first write and to its catching up."""
    port, down_at = pg.port, time.time()
    await asyncio.to_thread(pg.stop)
    if pg.pid() is not None:
        raise ChaosError("PostgreSQL did not stop")
    try:
        await asyncio.sleep(outage_s)
    finally:
        await asyncio.to_thread(pg.start)  # `pg_ctl start -w`: returns once it accepts connections
    if pg.port != port:
        raise ChaosError(f"PostgreSQL came back on port {pg.port}, not {port}: the ledger's URL is stale")
    t0, up_at = time.monotonic(), time.time()
    batches = ledger.stats.batches
    first: float | None = None

    async def caught_up() -> bool:
        nonlocal first
        if first is None and ledger.stats.batches > batches:
            first = time.monotonic() - t0
        return await lag.lag() == 0

    recover_s = await until(caught_up, 300, "the ledger did not catch up after PostgreSQL came back",
                            alive, every=0.1)
    return down_at, up_at, (recover_s if first is None else first), recover_s


async def _check(url: str, pub: Published) -> tuple[int, int, int, int]:
    """(missing in decision_log, rows differing from the publication, borrowers whose
    current_limits row is off, decision_log rows never published) for this run's borrowers."""
    borrowers = sorted(pub.versions())
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT borrower_id, version, payload FROM decision_log"
                                " WHERE borrower_id = ANY($1::text[])", borrowers)
        current = {r["borrower_id"]: r for r in await conn.fetch(
            "SELECT borrower_id, version, limit_amount, available, status FROM current_limits"
            " WHERE borrower_id = ANY($1::text[])", borrowers)}
    finally:
        await conn.close()
    stored = {(r["borrower_id"], r["version"]): orjson.loads(r["payload"]) for r in rows}
    missing = sum(1 for k in pub.updates if k not in stored)
    unpublished = sum(1 for k in stored if k not in pub.updates)
    # The ledger stores the envelope as the schema dumps it; compare like with like.
    differing = sum(1 for k, env in stored.items()
                    if k in pub.raw and env != codec.decode(pub.raw[k]).model_dump(mode="json", exclude_none=True))
    off = 0
    for b, p in pub.last().items():
        row = current.get(b)
        if row is None or (row["version"], row["limit_amount"], row["available"], row["status"]) != (
                p["version"], Decimal(p["limit"]["amount"]), Decimal(p["available"]["amount"]), p["status"]):
            off += 1
    return missing, differing, off, unpublished
