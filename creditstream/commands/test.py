"""`creditstream test`: bring the stack up, run the suite, bring the stack down."""

from __future__ import annotations

import argparse
import subprocess
import sys

from creditstream import config


def _run(args: argparse.Namespace) -> int:
    from creditstream.stack import manager
    from creditstream.stack.kafka import Kafka

    settings = config.load()
    was_running = Kafka(settings).pid() is not None
    try:
        manager.up(settings)
    except manager.StackError as exc:
        print(f"test: the stack did not come up: {exc}", file=sys.stderr)
        return 1
    try:
        lint = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=config.REPO_ROOT)
        tests = subprocess.run([sys.executable, "-m", "pytest", *args.pytest_args], cwd=config.REPO_ROOT)
        return tests.returncode or lint.returncode
    finally:
        # Leave a developer's running stack alone; stop what this command started.
        if not was_running or args.down:
            manager.down(settings)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("test", help="stack up, ruff, pytest, stack down (the README's test command)")
    p.add_argument("--down", action="store_true", help="stop the stack even if it was running before")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest")
    p.set_defaults(func=_run)
