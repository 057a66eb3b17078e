"""Subcommands, one module each: every module here has ``register(subparsers)``.

A module is found by listing this package, so adding a subcommand touches no other file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
