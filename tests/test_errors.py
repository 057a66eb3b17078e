"""One error hierarchy per package (issue 15.4): every exception class streams/ and
connectors/ define derives from the package's base (streams.errors.StreamsError,
connectors.errors.ConnectorError), so ``except <base>`` catches the package's own
refusals and nothing else, and neither raises a bare RuntimeError or Exception. Read from
the source (pure: nothing imported)."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILTIN_EXCEPTIONS = frozenset(n for n, v in vars(builtins).items()
                               if isinstance(v, type) and issubclass(v, BaseException))
# connectors/kafka_io.py is a layer of its own below the connectors (docs/architecture.md).
OUTSIDE = frozenset({"connectors/kafka_io.py"})


def _classes(package: str) -> dict[str, tuple[str, set[str]]]:
    """Every class the package defines: name -> (where, the names of its bases)."""
    found: dict[str, tuple[str, set[str]]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in OUTSIDE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            if isinstance(node, ast.ClassDef):
                bases = {b.attr if isinstance(b, ast.Attribute) else b.id
                         for b in node.bases if isinstance(b, ast.Attribute | ast.Name)}
                found[node.name] = (f"{rel}:{node.lineno}", bases)
    return found


def _reaching(classes: dict[str, tuple[str, set[str]]], roots: set[str]) -> set[str]:
    """The classes that derive, directly or through others of the package, from ``roots``."""
    reached = set(roots)
    while more := {n for n, (_, bases) in classes.items() if n not in reached and bases & reached}:
        reached |= more
    return reached


@pytest.mark.parametrize(("package", "base"), [("streams", "StreamsError"), ("connectors", "ConnectorError")])
def test_every_exception_of_a_package_derives_from_its_base(package: str, base: str) -> None:
    classes = _classes(package)
    assert base in classes
    exceptions = _reaching(classes, set(BUILTIN_EXCEPTIONS)) - BUILTIN_EXCEPTIONS
    under_base = _reaching(classes, {base})
    stray = sorted(f"{classes[n][0]} {n}" for n in exceptions - under_base)
    assert not stray, f"exceptions not derived from {package}'s {base}:\n" + "\n".join(stray)


@pytest.mark.parametrize("package", ["streams", "connectors"])
def test_no_bare_runtime_error_is_raised(package: str) -> None:
    bare = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and exc.id in ("RuntimeError", "Exception"):
                    bare.append(f"{rel}:{node.lineno} raises {exc.id}")
    assert not bare, "name the error (a subclass of the package's base):\n" + "\n".join(bare)
