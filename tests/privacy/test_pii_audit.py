"""Where names and tax ids go: the engine keeps none, the ledger writes none, the parties
table holds them sealed. Every table of the database is searched for them."""

from __future__ import annotations

import asyncpg
import orjson
import pytest

from connectors.ledger import batch as ledger_batch
from connectors.ledger import store as ledger_store
from connectors.parties import store as parties_store
from connectors.pg.migrate import migrate
from schemas import codec
from schemas.events import BorrowerRegistered
from streams.replay import Replay
from tests.engine import scenarios as sc

pytestmark = pytest.mark.integration
STORIES = (sc.receivables, sc.duplicate_invoice, sc.utilisation_rising, sc.battery_alarm,
           sc.geofence_breach, sc.drawdown_repayment, sc.tier2_distress)


def personal_log(uid: str) -> tuple[list[bytes], dict[str, str]]:
    """The scenarios' events, with a distinctive name and tax id per registered party and
    the invoices' seller tax ids made unique: the strings to look for afterwards."""
    tax = {sc.TAX_S: f"91{uid.upper()}AA"[:18].ljust(18, "7"), sc.TAX_S2: f"92{uid.upper()}BB"[:18].ljust(18, "8")}
    lines: list[bytes] = []
    names: dict[str, str] = {}
    for n, story in enumerate(STORIES):
        events, _ = story(f"{uid}{n}")
        for e in events:
            raw = codec.encode(e)
            for old, new in tax.items():
                raw = raw.replace(old.encode(), new.encode())
            if e.type == "registry.borrower":
                doc = orjson.loads(raw)
                doc["payload"]["name"] = names[doc["payload"]["party_id"]] = f"Li Na {uid}{n} 李娜 Trading"
                raw = orjson.dumps(doc)
            lines.append(raw)
    return lines, {**{f"tax:{k}": v for k, v in tax.items()}, **names}


async def test_no_name_or_tax_id_is_stored_in_clear(pg_url: str, uid: str) -> None:
    lines, secrets = personal_log(uid)
    replay = Replay()
    outputs = [o for line in lines for o in replay.feed(line)]
    limits = [o for o in outputs if o.topic == "cs.limits"]
    assert limits and any(o.topic == "cs.alerts" for o in outputs)

    # The engine: neither its state (RocksDB and changelogs in a worker) nor its outputs.
    engine_bytes = orjson.dumps(replay.stores) + b"".join(orjson.dumps(o.value) for o in outputs)
    for label, secret in secrets.items():
        assert secret.encode() not in engine_bytes, f"{label} left the registry topic"

    # The ledger's rows for these updates and alerts, and the parties table, in PostgreSQL.
    records = [ledger_batch.RawRecord(o.topic, 0, n, o.key.encode(), orjson.dumps(o.value))
               for n, o in enumerate(o for o in outputs if o.topic in ("cs.limits", "cs.alerts"))]
    planned = ledger_batch.plan(records)
    assert not planned.dead_letters and planned.decisions
    registrations = [e for e in map(codec.decode, lines) if isinstance(e, BorrowerRegistered)]
    await migrate(pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        await ledger_store.write(conn, planned)
        await parties_store.write(conn, registrations)
        stored = await conn.fetchval("SELECT count(*) FROM decision_log WHERE borrower_id = ANY($1::text[])",
                                     [r[0] for r in planned.decisions])
        assert stored >= len({(r[0], r[1]) for r in planned.decisions})
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name")]
        assert {"decision_log", "current_limits", "alerts", "parties", "lenders", "webhook_dead_letters"} <= set(tables)
        found = {}
        for table in tables:
            for label, secret in secrets.items():
                hits = await conn.fetchval(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE $1',
                                           f"%{secret}%")
                if hits:
                    found[f"{table}: {label}"] = hits
        assert not found, f"personal data in clear: {found}"
        # ...and the parties table does hold them, sealed: the key opens every one.
        for e in registrations:
            party = await parties_store.get(conn, e.payload.party_id)
            assert party is not None and (party.name, party.tax_id) == (e.payload.name, e.payload.tax_id)
    finally:
        await conn.close()
