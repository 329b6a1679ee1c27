"""Fixtures of every suite: no pykka actor outlives the test that started it."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest

STOP_TIMEOUT_S = 10.0
"""How long the actors still running after a test get to stop; a hang fails the test's teardown."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "shared_actors: the tests share actors that a module-scoped fixture starts and stops; "
        "they are not stopped after each test",
    )


@pytest.fixture(autouse=True)
def stop_every_actor(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test (and its own fixtures' teardown), stop every actor still running, last started first."""
    yield
    if request.node.get_closest_marker("shared_actors") is None:
        pykka.ActorRegistry.stop_all(timeout=STOP_TIMEOUT_S)
