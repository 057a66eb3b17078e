"""`creditstream test`: ruff, then the suite on a stack of its own.

The suite runs against its own Kafka and PostgreSQL: its own ports and state folder
(``<state>/test-stack``), brought up for the run and stopped after it, whatever else is
running. A developer's stack (the demo's) is neither restarted nor written to: before,
`make test` after `make demo` restarted Kafka and PostgreSQL under the demo and left test
lenders, junk records on ``cs.limits`` and webhook retries to dead test ports in it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from creditstream.commands import Subparsers
from schemas import config

# Ports of the test stack, away from the local stack's (19092/19093, gateway 18080,
# worker web 16066) and from the 3-broker fault cluster's (29092-29097).
TEST_KAFKA_PORT = "19192"
TEST_GATEWAY_PORT = "18180"
TEST_WORKER_WEB_PORT = "16166"
# Settings that would point the suite back at another stack.
FOREIGN = ("CREDITSTREAM_KAFKA_BOOTSTRAP", "CREDITSTREAM_PG_URL", "CREDITSTREAM_KAFKA_BROKERS",
           "CREDITSTREAM_KAFKA_CONTROLLER_PORT")


def suite_environment(base: dict[str, str], settings: config.Settings) -> dict[str, str]:
    """The environment of a suite run: ``base`` pointed at the test stack.

    Run from inside a suite (a test of this command runs it), the current stack is
    already a test stack: the inner one takes the ports 100 above it, never the same."""
    env = {k: v for k, v in base.items() if k not in FOREIGN}
    kafka, gateway, web = (int(base.get("CREDITSTREAM_TEST_KAFKA_PORT", TEST_KAFKA_PORT)),
                           int(TEST_GATEWAY_PORT), int(TEST_WORKER_WEB_PORT))
    if settings.kafka_port == kafka:
        kafka, gateway, web = kafka + 100, settings.gateway_port + 100, settings.worker_web_port + 100
    env.update(
        CREDITSTREAM_STATE_DIR=str(settings.state_dir / "test-stack"),
        CREDITSTREAM_KAFKA_PORT=str(kafka),
        CREDITSTREAM_GATEWAY_PORT=str(gateway),
        CREDITSTREAM_WORKER_WEB_PORT=str(web),
    )
    return env


def _run(args: argparse.Namespace) -> int:
    from creditstream.stack import manager

    env = dict(os.environ) if args.shared_stack else suite_environment(dict(os.environ), config.load())
    # config.load() reads the environment: this process uses the test stack's settings too.
    os.environ.clear()
    os.environ.update(env)
    settings = config.load()
    print(f"test: stack in {settings.state_dir}, Kafka {settings.kafka_bootstrap}", flush=True)
    try:
        manager.up(settings)
    except manager.StackError as exc:
        print(f"test: the stack did not come up: {exc}", file=sys.stderr)
        manager.down(settings)
        return 1
    try:
        lint = 0
        if not args.no_lint:
            # ruff, then the type checker (its scope and strictness: [tool.mypy] in pyproject.toml).
            for check in (["ruff", "check", "."], ["mypy"]):
                lint = subprocess.run([sys.executable, "-m", *check], cwd=config.REPO_ROOT,
                                      env=env).returncode or lint
        # argparse keeps the "--" that ends this command's options; pytest would take the
        # options after it for file names.
        pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
        tests = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=config.REPO_ROOT,
                               env=env)
        return tests.returncode or lint
    finally:
        # The test stack is this command's own: stopped after the run (its folder stays,
        # so the next run starts in seconds); a shared stack is left as it was.
        if not args.keep_stack and not args.shared_stack:
            manager.down(settings)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("test", help="ruff and pytest on a Kafka + PostgreSQL of their own (the README's "
                                    "test command); a running stack is left untouched")
    p.add_argument("--keep-stack", action="store_true",
                   help="leave the test stack running afterwards (state in .state/test-stack)")
    p.add_argument("--shared-stack", action="store_true",
                   help="run on the configured stack (CREDITSTREAM_* settings) instead of a stack of "
                        "its own, and leave it running")
    p.add_argument("--no-lint", action="store_true", help="skip ruff and mypy")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest (after --)")
    p.set_defaults(func=_run)
