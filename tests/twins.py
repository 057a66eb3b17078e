"""A property test in two sizes: a few examples in the unit run, the full count in a
``slow`` twin.

``pytest -m "not integration"`` (no stack) is meant to take seconds, and a few of the
property tests took most of it. Each such test is now two test items over the same body
and strategies: ``test_x`` with :data:`UNIT_EXAMPLES` examples, and ``test_x_full`` with
the count the test always had, marked ``slow`` (tests/conftest.py runs it with the
integration tests, so ``make test`` and CI check the full count on every run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis.strategies import SearchStrategy

UNIT_EXAMPLES = 30


def given_twice(body: Callable[..., None], *strategies: SearchStrategy[Any], full: int,
                unit: int = UNIT_EXAMPLES, **options: Any) -> tuple[Callable[..., None], Callable[..., None]]:
    """``(unit test, slow twin)``: ``body`` under ``@given(*strategies)`` with ``unit`` and
    with ``full`` examples; ``options`` are further hypothesis settings of both."""
    unit_test = settings(max_examples=unit, **options)(given(*strategies)(body))
    full_test = settings(max_examples=full, **options)(given(*strategies)(body))
    return unit_test, pytest.mark.slow(full_test)
