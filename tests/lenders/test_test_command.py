"""`creditstream test` runs the suite on a stack of its own and leaves a running stack
untouched (issue 14, first hour 1: `make test` after `make demo` restarted the demo's
Kafka and PostgreSQL and left test lenders and junk records in it)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest

from creditstream.commands.test import suite_environment
from creditstream.stack import manager
from creditstream.stack.kafka import Kafka
from creditstream.stack.postgres import Postgres
from schemas import config
from tests.lenders.ld_support import CLI

pytestmark = pytest.mark.integration
INNER = "tests/lenders/test_api.py::test_ld_rest_each_lender_reads_only_its_borrowers"


async def _creditstream_test(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        CLI, "test", "--no-lint", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 400)
    return proc.returncode or 0, out.decode(errors="replace")


def _user_stack(settings: config.Settings) -> tuple[int | None, int | None, str]:
    return Kafka(settings).pid(), Postgres(settings).pid(), settings.pg_url


async def test_creditstream_test_uses_its_own_stack_and_leaves_the_running_one_alone(
        settings: config.Settings) -> None:
    before = _user_stack(settings)
    assert before[0] is not None, "this test needs the local stack running (its user's stack)"
    inner = suite_environment(dict(os.environ), settings)
    test_settings = config.Settings(**{**settings.__dict__, "state_dir": Path(inner["CREDITSTREAM_STATE_DIR"]),
                                       "kafka_port": int(inner["CREDITSTREAM_KAFKA_PORT"]),
                                       "kafka_controller_port": int(inner["CREDITSTREAM_KAFKA_PORT"]) + 1,
                                       "kafka_bootstrap": f"127.0.0.1:{inner['CREDITSTREAM_KAFKA_PORT']}",
                                       "kafka_brokers": 1, "pg_url_override": None})
    assert test_settings.kafka_bootstrap != settings.kafka_bootstrap
    try:
        code, out = await _creditstream_test("--keep-stack", "--", "-q", "-p", "no:cacheprovider", INNER)
        assert code == 0 and "1 passed" in out, out[-3000:]
        assert f"Kafka {test_settings.kafka_bootstrap}" in out
        # The inner run wrote its lenders to the test stack's database, not to this one.
        assert test_settings.pg_url != settings.pg_url
        conn = await asyncpg.connect(test_settings.pg_url)
        try:
            mine = await conn.fetchval("SELECT count(*) FROM lenders WHERE lender_id LIKE 'lx-%'")
        finally:
            await conn.close()
        assert mine >= 1
        assert _user_stack(settings) == before                 # not restarted, same database
    finally:
        await asyncio.to_thread(manager.down, test_settings)

    # Without --keep-stack the test stack is stopped afterwards; the user's still runs.
    code, out = await _creditstream_test("--", "-q", "-p", "no:cacheprovider", "tests/lenders/test_openapi.py")
    assert code == 0, out[-3000:]
    assert Kafka(test_settings).pid() is None and Postgres(test_settings).pid() is None
    assert _user_stack(settings) == before


def test_a_suite_run_from_inside_a_test_stack_takes_other_ports(settings: config.Settings) -> None:
    """CI runs the suite on the test stack, and a test of this command runs it again from
    there: the inner stack must not be the outer one (it was, on 19192, in a fresh clone)."""
    outer = config.Settings(**{**settings.__dict__, "kafka_port": 19192, "gateway_port": 18180,
                               "worker_web_port": 16166})
    inner = suite_environment({}, outer)
    assert (inner["CREDITSTREAM_KAFKA_PORT"], inner["CREDITSTREAM_GATEWAY_PORT"],
            inner["CREDITSTREAM_WORKER_WEB_PORT"]) == ("19292", "18280", "16266")
    assert suite_environment({}, config.Settings(**{**settings.__dict__, "kafka_port": 19092}))[
        "CREDITSTREAM_KAFKA_PORT"] == "19192"
