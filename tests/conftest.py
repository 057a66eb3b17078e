"""Shared fixtures. Integration tests need the local stack; they fail, never skip, without it.

`creditstream test` (the README's test command) brings the stack up before pytest runs.
"""

from __future__ import annotations

import uuid

import pytest

from schemas import config


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
def _stack_answers(request: pytest.FixtureRequest, settings: config.Settings) -> None:
    """Fail fast, with the fix, when integration tests run without the stack."""
    if not any(item.get_closest_marker("integration") for item in request.session.items):
        return
    from creditstream.stack.process import port_open

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
