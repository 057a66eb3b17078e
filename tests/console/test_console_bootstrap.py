"""scripts/bootstrap.sh: installs chromium for the browser test only, and waits (bounded,
with one message) while another apt process holds the package lock (issue 14: the
first `make demo` failed at once with "E: Could not get lock")."""

from __future__ import annotations

import subprocess
from pathlib import Path

from schemas.config import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "bootstrap.sh"
LOCKED = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)"


def fake_apt(tmp_path: Path, locked_calls: int) -> Path:
    """An apt-get that answers "Could not get lock" ``locked_calls`` times, then works."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    calls.write_text("0")
    apt = bin_dir / "apt-get"
    apt.write_text(f"""#!/usr/bin/env bash
n=$(( $(cat {calls}) + 1 )); echo $n > {calls}
if [ $n -le {locked_calls} ]; then echo '{LOCKED}' >&2; exit 100; fi
echo "apt-get $*"
""")
    apt.chmod(0o755)
    return bin_dir


def run_apt_get(bin_dir: Path, wait_s: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'export PATH={bin_dir}:$PATH APT_LOCK_WAIT={wait_s} APT_LOCK_POLL=0.1; '
                       f'source {SCRIPT} --functions; apt_get update -q'],
        capture_output=True, text=True, timeout=60)


def test_bootstrap_waits_for_the_apt_lock_then_installs(tmp_path: Path) -> None:
    res = run_apt_get(fake_apt(tmp_path, locked_calls=3), wait_s=30)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("holds the package lock; waiting up to 30 s") == 1
    assert (tmp_path / "calls").read_text().strip() == "4"


def test_bootstrap_gives_up_on_a_lock_held_too_long_with_one_line(tmp_path: Path) -> None:
    res = run_apt_get(fake_apt(tmp_path, locked_calls=10_000), wait_s=1)
    assert res.returncode == 1
    assert "still holds the package lock after 1 s" in res.stderr
    assert "Traceback" not in res.stderr and LOCKED not in res.stderr


def test_bootstrap_installs_test_tools_for_tests_only_and_never_docker() -> None:
    # chromium (the console's browser test) and docker-compose (tests/test_stack.py
    # validates docker-compose.yml with it) only for `test`; a Docker engine never.
    text = SCRIPT.read_text()
    test_block = text.split('if [ "$purpose" = test ]; then', 1)[1].split("\nfi\n", 1)[0]
    assert "need_apt+=(chromium)" in test_block and "need_apt+=(docker-compose)" in test_block
    assert "docker.io" not in text and "docker-ce" not in text
