"""The code base's own rules, read from the source (pure: no stack, nothing imported).

docs/architecture.md ("Layers") says which package may import which, and that the topic
catalogue (schemas/topics.py) and the settings (schemas/config.py) are the one place for
topic names and environment variables; these tests fail on a line that breaks them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from schemas import topics

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "streams", "connectors", "load", "creditstream")
TOPIC_NAME = re.compile(r"^cs\.[a-z_]+(\.|$)")


def _sources() -> Iterator[tuple[str, ast.Module]]:
    yield from _parsed()


@cache
def _parsed() -> tuple[tuple[str, ast.Module], ...]:
    return tuple((path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), filename=str(path)))
                 for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py")))


# docs/architecture.md, "Layers": what each layer may import besides itself.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "schemas": frozenset(),
    "kafka_io": frozenset({"schemas"}),
    "connectors": frozenset({"schemas", "kafka_io"}),
    "streams": frozenset({"schemas", "kafka_io"}),
    "stack": frozenset({"schemas", "kafka_io", "connectors"}),
    "load": frozenset({"schemas", "kafka_io", "connectors", "streams", "stack"}),
    "cli": frozenset({"schemas", "kafka_io", "connectors", "streams", "stack", "load"}),
}


def layer(module: str) -> str | None:
    """The layer of a dotted module name of ours, or None for anything else."""
    parts = module.split(".")
    if parts[0] == "connectors":
        return "kafka_io" if parts[1:2] == ["kafka_io"] else "connectors"
    if parts[0] == "creditstream":
        return "stack" if parts[1:2] == ["stack"] else "cli"
    return parts[0] if parts[0] in ("schemas", "streams", "load") else None


def imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every absolute import in a module, function-local ones too: (line, module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def upward_imports(sources: Iterator[tuple[str, ast.Module]]) -> list[str]:
    found = []
    for rel, tree in sources:
        own = layer(rel.removesuffix(".py").replace("/", "."))
        assert own is not None
        for line, module in imports(tree):
            target = layer(module)
            if target is not None and target != own and target not in MAY_IMPORT[own]:
                found.append(f"{rel}:{line} ({own}) imports {module} ({target})")
    return found


def test_every_import_goes_down_the_layers() -> None:
    found = upward_imports(_sources())
    assert not found, "imports against the layers of docs/architecture.md:\n" + "\n".join(found)


def test_the_layer_check_finds_an_upward_import() -> None:
    tree = ast.parse("from creditstream import cli\n\ndef f():\n    from connectors.lenders import api\n")
    assert upward_imports(iter([("streams/x.py", tree)])) == [
        "streams/x.py:1 (streams) imports creditstream (cli)",
        "streams/x.py:4 (streams) imports connectors.lenders (connectors)"]


def test_only_the_settings_read_the_environment() -> None:
    found = [f"{rel}:{node.lineno}" for rel, tree in _sources()
             if rel.split("/")[0] != "creditstream" and rel != "schemas/config.py"
             for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
             and node.attr in ("environ", "getenv", "environb")]
    assert not found, "read settings through schemas.config.load():\n" + "\n".join(found)


def test_topic_names_are_written_only_in_the_catalogue() -> None:
    found = [f"{rel}:{node.lineno} {node.value!r}"
             for rel, tree in _sources() if rel != "schemas/topics.py"
             for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and TOPIC_NAME.match(node.value)]
    assert not found, "topic names belong in schemas/topics.py (import its *_TOPIC names):\n" + "\n".join(found)


def test_every_topic_name_constant_is_a_catalogue_topic() -> None:
    names = {k: v for k, v in vars(topics).items() if k.endswith("_TOPIC") and isinstance(v, str)}
    assert names and set(names.values()) <= set(topics.BY_NAME)


def test_an_engine_id_other_than_production_gets_its_own_signals_topic() -> None:
    assert topics.signals_topic() == topics.SIGNALS_TOPIC == topics.signals_topic(topics.ENGINE_ID)
    assert topics.signals_topic("cs-test-1") == f"{topics.SIGNALS_TOPIC}.cs-test-1"
