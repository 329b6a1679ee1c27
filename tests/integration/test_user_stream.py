"""UserStream against the local exchange: events after a market order, recovery after listenKey expiry."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.endpoints import Endpoints
from nancemakina.actors.exchange.gateway import BinanceGateway
from nancemakina.actors.exchange.ratelimit import WeightBudget
from nancemakina.actors.exchange.types import ListenKeyExpired, OrderUpdate, UserEvent, UserStreamStatus
from nancemakina.actors.exchange.user_stream import UserStream, UserStreamConfig
from tests.integration.sim_support import running, sync_client


class Inbox:
    """Collects events; ``wait_for`` blocks on an Event until a matching one arrives."""

    def __init__(self) -> None:
        self.events: list[UserEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: UserEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate, start: int = 0, timeout: float = 10.0) -> UserEvent:
        with self._cond:
            found: list[UserEvent] = []

            def match() -> bool:
                found[:] = [e for e in self.events[start:] if predicate(e)]
                return bool(found)

            assert self._cond.wait_for(match, timeout), f"no matching event in {self.events[start:]}"
            return found[0]


@pytest.fixture
def rig() -> Iterator[tuple[object, UserStream, Inbox]]:
    with running(paused=True) as exchange:
        venue = Endpoints.local(exchange.rest_url, exchange.ws_url)
        gateway = BinanceGateway(
            venue, api_key=exchange.api_key, api_secret=exchange.api_secret, budget=WeightBudget()
        )
        gateway.sync_time()
        inbox = Inbox()
        stream = UserStream(
            contract=ContractType.USDT_M,
            gateway=gateway,
            roots=venue,
            on_event=inbox,
            config=UserStreamConfig(backoff_base_s=0.05, backoff_cap_s=0.2),
        )
        stream.start()
        try:
            yield exchange, stream, inbox
        finally:
            stream.stop(timeout=5)


def connected(e: UserEvent) -> bool:
    return isinstance(e, UserStreamStatus) and e.connected


def test_order_trade_update_after_a_market_order(rig):
    exchange, stream, inbox = rig
    inbox.wait_for(connected)
    client = sync_client(exchange)
    client.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010", newClientOrderId="us-1"
    )
    update = inbox.wait_for(lambda e: isinstance(e, OrderUpdate) and e.client_order_id == "us-1")
    assert update.symbol == "BTCUSDT"
    assert update.contract_type is ContractType.USDT_M
    assert stream.state().events >= 1
    assert stream.state().malformed == 0


def test_recovers_after_listen_key_expiry_with_a_new_key(rig):
    exchange, stream, inbox = rig
    inbox.wait_for(connected)
    assert exchange.expire_listen_key()
    inbox.wait_for(lambda e: isinstance(e, ListenKeyExpired))
    mark = len(inbox.events)
    inbox.wait_for(lambda e: isinstance(e, UserStreamStatus) and not e.connected)
    inbox.wait_for(connected, start=mark)
    assert stream.state().listen_keys_created == 2
    client = sync_client(exchange)
    client.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010", newClientOrderId="us-2"
    )
    inbox.wait_for(lambda e: isinstance(e, OrderUpdate) and e.client_order_id == "us-2", start=mark)
