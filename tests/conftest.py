"""Shared fixtures. Integration tests need the local stack; they fail, never skip, without it.

`creditstream test` (the README's test command) brings the stack up before pytest runs.
A test that uses a fixture of the stack (below: ``settings`` and what derives from it) is
marked ``integration`` here, so ``pytest -m "not integration"`` runs the pure tests
without a stack; a test that reaches the stack otherwise carries the marker itself. A
``slow`` test (a pure test's full count) is marked ``integration`` too: it needs no stack,
but runs with the integration tests so that the unit run stays a run of seconds.
"""

from __future__ import annotations

import uuid

import pytest

from schemas import config

# The fixtures that reach the local stack; every fixture that needs one of them depends on it.
STACK_FIXTURES = frozenset({"settings", "bootstrap", "pg_url", "producer"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # A ``slow`` test needs no stack, but runs where the integration tests run (make
        # test, CI), so that ``-m "not integration"`` stays a run of seconds.
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> config.Settings:
    return config.load()


@pytest.fixture(scope="session")
def bootstrap(settings: config.Settings) -> str:
    return settings.kafka_bootstrap


@pytest.fixture(scope="session")
def pg_url(settings: config.Settings) -> str:
    return settings.pg_url


@pytest.fixture(scope="session", autouse=True)
def _stack_answers(request: pytest.FixtureRequest) -> None:
    """Fail fast, with the fix, when integration tests run without the stack. (It reads
    the settings itself: through the ``settings`` fixture every test would be marked.)"""
    if not any(item.get_closest_marker("integration") and not item.get_closest_marker("slow")
               for item in request.session.items):
        return
    from creditstream.stack.process import port_open

    settings = config.load()
    host, _, port = settings.kafka_bootstrap.rpartition(":")
    if not port_open(host, int(port)):
        pytest.fail(f"Kafka is not answering on {settings.kafka_bootstrap}: run "
                    "`creditstream stack up` (or use `make test`, which does)", pytrace=False)


@pytest.fixture
def uid() -> str:
    """A short unique suffix so tests never see each other's borrowers or machines."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def producer(bootstrap: str):
    from connectors.kafka_io import make_producer

    p = make_producer(bootstrap)
    await p.start()
    yield p
    await p.stop()
