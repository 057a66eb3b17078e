"""Subcommands, one module each: every module here has ``register(sub: Subparsers)``.

A module is found by listing this package, so adding a subcommand touches no other file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from typing import TypeAlias

# What ``ArgumentParser.add_subparsers`` returns: argparse gives it no public name, so it
# is named once here (a string: the class is generic only to type checkers).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(sub: Subparsers) -> None:
    """Add every module's subcommand to ``sub``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
