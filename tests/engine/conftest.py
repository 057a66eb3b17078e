"""A real worker process for the broker tests: `creditstream worker` with its own engine id."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from connectors.kafka_io import TopicReader
from load.workers import free_port, is_ready, stop_process
from schemas.config import REPO_ROOT, Settings
from tests.engine.test_broker import OUT, Outputs, limits_of, values


class WorkerProcess:
    """Start, kill and restart one worker; its log is kept for failure messages."""

    def __init__(self, app_id: str, data_dir: Path, worker_id: str = "w1", web_port: int | None = None) -> None:
        self.app_id, self.data_dir, self.worker_id = app_id, data_dir, worker_id
        self.web_port = web_port or free_port()
        self.log = data_dir.parent / f"{data_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "creditstream.cli", "worker", "--app-id", self.app_id,
                 "--id", self.worker_id, "--data-dir", str(self.data_dir), "--loglevel", "info",
                 "--start-at", "latest", "--web-port", str(self.web_port)],
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if is_ready(self.web_port):  # every lane assigned and restored
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"worker did not become ready; log {self.log}:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def kill(self) -> None:
        stop_process(self.proc, signal.SIGKILL, 10)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="module")
def engine(settings: Settings):
    """One worker for the engine broker tests, on a fresh engine id (own group, own tables).

    Module-scoped: it must be gone before the sink fault tests, whose ledger and lender
    read all of cs.limits and would see this worker's updates for their borrowers too."""
    from creditstream.stack.process import free_port

    app_id = f"cs-engine-test-{uuid.uuid4().hex[:8]}"
    w = WorkerProcess(app_id, settings.state_dir / "test-workers" / app_id, web_port=free_port())
    w.start()
    yield w
    w.stop()


@pytest.fixture
async def outputs(bootstrap: str, engine: WorkerProcess):
    """What the engines write to cs.limits, cs.alerts and cs.deadletter from now on
    (the worker is started first, so nothing of the test is missed)."""
    async with TopicReader(bootstrap, *OUT) as reader:
        yield Outputs(reader)


@pytest.fixture
def mine(engine: WorkerProcess):
    """``mine(records, borrower)``: the limit updates of a borrower that this module's
    worker published; other engines sharing the broker (the main engine, other tests'
    workers) decide the same inputs too."""
    def of(records: list, borrower: str) -> list[dict]:
        return limits_of(records, borrower, engine.app_id)
    return of


@pytest.fixture
def my_alerts(engine: WorkerProcess):
    """``my_alerts(records, *borrowers)``: the payloads of the alerts about these
    borrowers that this module's worker published, in the order read."""
    source = f"creditstream.engine.{engine.app_id}"

    def of(records: list, *borrowers: str) -> list[dict]:
        return [a["payload"] for a in values(records, "cs.alerts")
                if a["source"] == source and a["payload"].get("borrower_id") in borrowers]
    return of
