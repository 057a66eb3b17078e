"""Subcommands, one module each: every module here has ``register(sub: Subparsers)``.

A module is found by listing this package, so adding a subcommand touches no other file.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import pkgutil
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from connectors.sources.common import Outcome

# What ``ArgumentParser.add_subparsers`` returns: argparse gives it no public name, so it
# is named once here (a string: the class is generic only to type checkers).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def run_service(main: Coroutine[Any, Any, int]) -> int:
    """Run a long-running command's coroutine, with INFO logs (timestamped) on stderr."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return asyncio.run(main)


def stop_on_signals() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets (call it in the running loop): a service stops
    at its next batch boundary, with what it has written committed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def said(prefix: str, run: Callable[[], int],
         errors: tuple[type[Exception], ...] = (OSError, ValueError), interrupt_ok: bool = False) -> int:
    """``run()``, with one of ``errors`` (an unreadable file or map, a bad value, a server
    that does not answer) said in one line, ``prefix: error``, and exit code 2 instead of a
    traceback; with ``interrupt_ok`` Ctrl-C ends a long-running command with 0."""
    try:
        return run()
    except KeyboardInterrupt:
        if interrupt_ok:
            return 0
        raise
    except errors as exc:
        print(f"{prefix}: {exc}", file=sys.stderr)
        return 2


def send_outcome(bootstrap: str, outcome: Outcome, *, tenant: str, stage: str) -> int:
    """Produce a source's events and dead letters (connectors.sources.emit); a Kafka that
    does not answer is said in one line, exit code 2."""
    from connectors.sources import emit

    return said(f"{stage}: could not produce to Kafka at {bootstrap}",
                lambda: asyncio.run(emit.send_outcome(bootstrap, outcome, tenant=tenant, stage=stage)),
                errors=(Exception,))


def register(sub: Subparsers) -> None:
    """Add every module's subcommand to ``sub``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
