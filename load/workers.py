"""Engine workers a load run starts for itself: `creditstream worker` processes on a
fresh engine id, so the run measures an engine that sees nothing but its own load."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from schemas.config import REPO_ROOT


def process_usage(pid: int) -> tuple[float, float]:
    """(resident memory in MB, CPU seconds used so far) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    return rss, cpu


def _get(url: str) -> tuple[int | None, str]:
    """(HTTP status, body) of a GET to one of our own processes on loopback; (None, the
    reason) when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback, our own worker
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, str(exc)


def is_ready(web_port: int) -> bool:
    """Whether the worker serving ``web_port`` answers /readyz with 200: every lane holds
    its assignment, restored (streams/app.py). The one readiness check of the load tools."""
    return _get(f"http://127.0.0.1:{web_port}/readyz")[0] == 200


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, wait_s: float = 30.0) -> None:
    """Send ``sig`` to a worker's process group (the worker and what it started) and wait
    up to ``wait_s`` for it to end, then SIGKILL it. Nothing if it is not running."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Worker:
    """One worker process; its output goes to ``log``, its /readyz and /metrics are on
    ``web_port`` (a free one unless given)."""

    def __init__(self, app_id: str, worker_id: str, data_dir: Path, web_port: int | None = None) -> None:
        self.app_id, self.worker_id, self.data_dir = app_id, worker_id, data_dir
        self.web_port = web_port or free_port()
        self.log = data_dir.parent / f"{worker_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/metrics"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "creditstream.cli", "worker", "--app-id", self.app_id, "--id",
               self.worker_id, "--data-dir", str(self.data_dir), "--loglevel", "info", "--start-at", "latest",
               "--web-port", str(self.web_port)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                         start_new_session=True)

    def ready(self) -> bool:
        """Whether the worker is ready to process (:func:`is_ready`)."""
        self.check()
        return is_ready(self.web_port)

    def readiness(self) -> str:
        """What the worker's /readyz says (which lanes are not ready), for error messages."""
        status, body = _get(f"http://127.0.0.1:{self.web_port}/readyz")
        return body[:500] if status else f"no answer ({body})"

    def check(self) -> None:
        """Raise when the process has exited (it should run until stopped)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"worker {self.worker_id} exited ({self.proc.returncode}); log {self.log}")

    def stop(self) -> None:
        stop_process(self.proc)

    def kill(self) -> None:
        """SIGKILL the worker's process group, as a crash would, and reap it."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def start_workers(app_id: str, n: int, root: Path, timeout_s: float = 120.0) -> list[Worker]:
    """Start ``n`` workers and wait until each says it is ready; stop them all on failure.

    ``app_id`` must be new: its groups are first positioned at the end of the inputs.
    """
    import asyncio

    from connectors.kafka_io import start_at_end
    from schemas import config
    from streams.fastlane import engine_groups

    asyncio.run(start_at_end(config.load().kafka_bootstrap, engine_groups(app_id)))
    # Table folders per engine id: a folder left by another engine id would not match its changelogs.
    workers = [Worker(app_id, f"w{i + 1}", root / app_id / f"w{i + 1}", free_port()) for i in range(n)]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + timeout_s
        while not all(w.ready() for w in workers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers not ready within {timeout_s:.0f} s; logs in {root}")
            time.sleep(0.3)
    except BaseException:
        for w in workers:
            w.stop()
        raise
    return workers


class Fleet:
    """The workers a run started (possibly none): liveness and resource use, summed."""

    def __init__(self, workers: list[Worker] | None = None) -> None:
        self.workers = workers or []

    def check(self) -> None:
        for w in self.workers:
            w.check()

    def usage(self) -> tuple[float, float] | None:
        """(resident MB, CPU seconds) over all workers; None when the run started none."""
        if not self.workers:
            return None
        total_rss = total_cpu = 0.0
        for w in self.workers:
            if w.proc is None:
                continue
            try:
                rss, cpu = process_usage(w.proc.pid)
            except (OSError, IndexError, ValueError):
                continue  # exited between two samples: check() reports it
            total_rss += rss
            total_cpu += cpu
        return total_rss, total_cpu

    @property
    def metrics_urls(self) -> list[str]:
        return [u for w in self.workers if (u := w.metrics_url)]

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
