"""Commands run with the stack down say in one line what they cannot reach and what to
run, and exit non-zero, without a traceback (issue 14: `keys list`, `lenders list` and
`gateway` printed 55 lines ending in ConnectionRefusedError)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from creditstream.cli import main
from creditstream.stack.process import free_port
from schemas.config import REPO_ROOT
from tests.lenders.ld_support import CLI


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
                          env={**os.environ, **env})


COMMANDS = [
    ["keys", "list"], ["keys", "create", "--tenant", "t", "--types", "*"], ["lenders", "list"],
    ["lenders", "add", "bank-x", "--name", "X"], ["gateway", "--port", "0"], ["ledger"],
    ["parties", "show", "p-1"], ["lenders", "serve", "--port", "0"]]


@pytest.mark.parametrize("args", COMMANDS)
def test_cli_postgres_down_is_one_line_and_non_zero(
        args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # In process (`main` is what the console script calls; the last test of this module
    # runs the installed script): eight interpreters cost ~6 s of the pure run's CPU.
    port = free_port()  # nothing listens on it
    monkeypatch.setenv("CREDITSTREAM_PG_URL", f"postgresql://cs:s3cret-pw@127.0.0.1:{port}/cs")
    code = main(args)
    out, err = capsys.readouterr()
    assert code != 0
    assert "Traceback" not in err + out, err
    line = f"creditstream {args[0]}: cannot reach PostgreSQL at 127.0.0.1:{port} (Connection refused): " \
           "run `creditstream stack up`"
    assert line in err, err
    assert "s3cret-pw" not in err + out


@pytest.mark.integration  # the ledger reaches the stack's PostgreSQL before it finds Kafka down
def test_cli_kafka_down_is_one_line_and_non_zero() -> None:
    res = run(["ledger"], CREDITSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "creditstream ledger: cannot reach Kafka at 127.0.0.1:" in res.stderr, res.stderr


def test_cli_without_a_stack_says_what_to_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CREDITSTREAM_PG_URL"}
    res = subprocess.run([CLI, "lenders", "list"], capture_output=True, text=True, timeout=60,
                         env={**env, "CREDITSTREAM_STATE_DIR": str(tmp_path)})
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert res.stderr.strip() == ("creditstream lenders: no PostgreSQL configured: set "
                                  "CREDITSTREAM_PG_URL or run `creditstream stack up`")
