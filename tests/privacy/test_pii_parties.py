"""Names and tax ids in PostgreSQL: ciphertext at rest, opened only with the key from the
environment, a clear error with a wrong key, lookups by keyed hash, key rotation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import orjson
import pytest

from connectors.kafka_io import commit_group_offsets, end_offsets, make_producer, produce_events
from connectors.parties import store
from connectors.parties.sync import PartySync
from connectors.pg import crypto
from schemas import codec
from schemas.config import REPO_ROOT
from schemas.factory import EventFactory
from tests.pg_schema import fresh_schema
from tests.privacy.test_pii_crypto import new_key

pytestmark = pytest.mark.integration
MIGRATION = (Path(REPO_ROOT) / "connectors/pg/migrations/0004_parties.sql").read_text()


@pytest.fixture
async def schema_url(pg_url: str):
    """A PostgreSQL URL whose search path is a fresh schema holding its own parties table,
    so rotating keys here never touches rows other runs sealed."""
    async with fresh_schema(pg_url, "pii", MIGRATION) as url:
        yield url


@pytest.fixture
def env_key(monkeypatch: pytest.MonkeyPatch):
    """This test's data key, set in the environment as production sets it."""
    key = new_key()
    monkeypatch.setenv(crypto.ENV, key)
    monkeypatch.delenv(crypto.PREVIOUS_ENV, raising=False)
    crypto.reload()
    yield key
    monkeypatch.undo()
    crypto.reload()


def registration(uid: str, n: int):
    from datetime import UTC, datetime

    f = EventFactory(f"pii-{uid}-{n}", datetime(2026, 3, 2, tzinfo=UTC), tenant="sany-heavy")
    tax_id = f"91{uid.upper()}{n:06d}"[:18]
    e = f.borrower(f"sup-{uid}-{n}", f"prg-{uid}", tax_id=tax_id)
    raw = orjson.loads(codec.encode(e))
    raw["payload"]["name"] = f"Zhang Wei {uid} 张伟 Hydraulics No.{n}"
    return codec.decode(orjson.dumps(raw))


async def test_registrations_are_stored_encrypted_and_open_only_with_the_key(
        bootstrap: str, schema_url: str, env_key: str, uid: str) -> None:
    group = f"parties-test-{uid}"
    await commit_group_offsets(bootstrap, group, await end_offsets(bootstrap, ["cs.registry"]))
    events = [registration(uid, n) for n in (1, 2)]
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("cs.registry", b"\xff not an event", key=b"x")  # passed over
        await produce_events(producer, events)
    finally:
        await producer.stop()
    sync, stop = PartySync(bootstrap, schema_url, group=group), asyncio.Event()
    task = asyncio.create_task(sync.run(stop))
    conn = await asyncpg.connect(schema_url)
    try:
        for _ in range(150):
            if await conn.fetchval("SELECT count(*) FROM parties") == 2:
                break
            await asyncio.sleep(0.2)
        stop.set()
        await task
        rows = await conn.fetch("SELECT p.*, p::text AS whole FROM parties p ORDER BY party_id")
        assert [r["party_id"] for r in rows] == [e.payload.party_id for e in events]
        for r, e in zip(rows, events, strict=True):
            # At rest: no byte of the name or the tax id, only sealed values and a keyed hash.
            for secret in (e.payload.name, e.payload.tax_id, "Zhang", "张伟"):
                assert secret not in r["whole"]
            # Each sealed value names its key (v2:<key id>:...), so a missing key is reported by id.
            assert r["name_enc"].startswith(f"v2:{crypto.key_id()}:") and r["tax_id_enc"].startswith("v2:")
            assert r["key_id"] == crypto.key_id() and len(r["tax_id_hmac"]) == 64
            party = await store.get(conn, e.payload.party_id)
            assert party is not None and (party.name, party.tax_id, party.kind) == (
                e.payload.name, e.payload.tax_id, "supplier")
        spaced = " ".join(events[1].payload.tax_id.lower()[i:i + 4] for i in range(0, 18, 4))
        assert [p.party_id for p in await store.find_by_tax_id(conn, spaced)] == [events[1].payload.party_id]
        assert sync.stats.parties == 2 and sync.stats.skipped_invalid >= 1
    finally:
        await conn.close()

    # Another process, the key from its environment: it reads the party; a wrong key fails clearly.
    def show(key: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, crypto.ENV: key}
        env.pop(crypto.PREVIOUS_ENV, None)
        return subprocess.run([sys.executable, "-m", "creditstream.cli", "parties", "--pg-url", schema_url,
                               "show", events[0].payload.party_id], capture_output=True, text=True,
                              env=env, cwd=REPO_ROOT, timeout=60)

    ok = show(env_key)
    assert ok.returncode == 0 and events[0].payload.name in ok.stdout and events[0].payload.tax_id in ok.stdout
    wrong = show(new_key())
    assert wrong.returncode == 2 and events[0].payload.name not in wrong.stdout + wrong.stderr
    assert f"cannot decrypt parties.name|{events[0].payload.party_id}: it was sealed with a key other than " \
           f"{crypto.ENV}" in wrong.stderr


async def test_rotation_reseals_every_row_with_the_new_key(
        schema_url: str, monkeypatch: pytest.MonkeyPatch, uid: str) -> None:
    old, new = new_key(), new_key()
    events = [registration(uid, n) for n in range(3)]
    conn = await asyncpg.connect(schema_url)
    try:
        monkeypatch.setenv(crypto.ENV, old)
        crypto.reload()
        await store.write(conn, events)
        monkeypatch.setenv(crypto.ENV, new)
        monkeypatch.setenv(crypto.PREVIOUS_ENV, old)
        crypto.reload()
        # Mid-rotation: old rows open with the previous key and are found by their old hash.
        assert (await store.find_by_tax_id(conn, events[0].payload.tax_id))[0].name == events[0].payload.name
        assert await store.rekey(conn, batch=2) == 3
        assert await store.rekey(conn) == 0
        assert {r["key_id"] for r in await conn.fetch("SELECT key_id FROM parties")} == {crypto.key_id()}
        monkeypatch.delenv(crypto.PREVIOUS_ENV)
        crypto.reload()  # the old key retired: everything still opens and is found
        for e in events:
            assert [p.name for p in await store.find_by_tax_id(conn, e.payload.tax_id)] == [e.payload.name]
        monkeypatch.setenv(crypto.ENV, old)
        crypto.reload()
        with pytest.raises(crypto.DataKeyError):
            await store.get(conn, events[0].payload.party_id)
    finally:
        monkeypatch.undo()
        crypto.reload()
        await conn.close()
