"""The code base's own rules, read from the source (pure: no stack, nothing imported).

docs/architecture.md ("Layers") says which package may import which, and that the topic
catalogue (schemas/topics.py) and the settings (schemas/config.py) are the one place for
topic names and environment variables; these tests fail on a line that breaks them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from schemas import topics

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "streams", "connectors", "load", "creditstream")
TOPIC_NAME = re.compile(r"^cs\.[a-z_]+(\.|$)")


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            yield rel, ast.parse(path.read_text(), filename=rel)


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
