"""The ledger's SQL: one transaction per batch, idempotent under redelivery."""

from __future__ import annotations

import asyncpg

from connectors.ledger.batch import Batch

# Held for the whole write transaction: decision_log.seq values are then assigned in
# commit order even with several ledger processes, which is what lets the live stream
# resume from a sequence number without ever skipping a row committed late.
SEQ_LOCK_ID = 0x6C656467
NOTIFY_CHANNEL = "cs_decisions"

INSERT_DECISION = """
INSERT INTO decision_log (borrower_id, version, event_id, program_id, limit_amount, available,
    currency, status, policy_version, watermark, reasons, components, trigger_event_ids, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, $13::jsonb, $14::jsonb)
ON CONFLICT (borrower_id, version) DO NOTHING
"""

UPSERT_CURRENT = """
INSERT INTO current_limits (borrower_id, version, program_id, limit_amount, available, currency,
    status, payload, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, now())
ON CONFLICT (borrower_id) DO UPDATE SET
    version = EXCLUDED.version, program_id = EXCLUDED.program_id,
    limit_amount = EXCLUDED.limit_amount, available = EXCLUDED.available,
    currency = EXCLUDED.currency, status = EXCLUDED.status, payload = EXCLUDED.payload,
    updated_at = now()
WHERE current_limits.version < EXCLUDED.version
"""

INSERT_ALERT = """
INSERT INTO alerts (alert_id, code, severity, borrower_id, asset_id, occurred_at, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (alert_id) DO NOTHING
"""


async def write(conn: asyncpg.Connection, batch: Batch) -> None:
    """Write a planned batch in one transaction; returns once it is committed."""
    async with conn.transaction():
        if batch.decisions:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SEQ_LOCK_ID)
            # Sorted so two ledgers writing overlapping batches lock rows in one order.
            await conn.executemany(INSERT_DECISION, sorted(batch.decisions, key=lambda r: (r[0], r[1])))
        if batch.current:
            await conn.executemany(UPSERT_CURRENT, sorted(batch.current, key=lambda r: r[0]))
        if batch.alerts:
            await conn.executemany(INSERT_ALERT, batch.alerts)
        if batch.decisions:
            # Delivered at commit: wakes live-stream readers (they also poll, so a lost
            # notification only delays them).
            await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
