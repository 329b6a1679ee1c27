"""Fixtures shared by the integration tests; each stops what it started.

``exchange`` and ``gateway`` serve the gateway tests (``test_gateway_*.py``); modules that need another
exchange (other data, other settings) define their own ``exchange`` fixture, which takes precedence here.
``slices`` and ``cleanup`` serve the whole-system tests (``test_system_*.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nancemakina.actors.exchange.gateway import BinanceGateway
from nancemakina.actors.sim.server import LocalExchange
from tests.integration.gateway_support import make_gateway, start_exchange
from tests.integration.system_support import Cleanup, SliceMaker


@pytest.fixture
def exchange() -> Iterator[LocalExchange]:
    """A paused LocalExchange with the synthetic series of ``gateway_support``."""
    ex = start_exchange()
    try:
        yield ex
    finally:
        ex.stop()


@pytest.fixture
def gateway(exchange: LocalExchange) -> BinanceGateway:
    return make_gateway(exchange, timeout_s=5.0)


@pytest.fixture(scope="session")
def slices(tmp_path_factory: pytest.TempPathFactory) -> SliceMaker:
    return SliceMaker(tmp_path_factory.mktemp("slices"))


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    """Everything the test started through it, stopped afterwards whatever happened."""
    done = Cleanup()
    try:
        yield done
    finally:
        done.close()
