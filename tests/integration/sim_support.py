"""Shared helpers of the local-exchange integration tests (no tests here)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from binance import AsyncClient, Client
from binance.ws.constants import WSListenerState
from binance.ws.reconnecting_websocket import ReconnectingWebsocket
from binance.ws.streams import BinanceSocketManager

from nancemakina.actors.sim import LocalExchange, SimConfig
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
FIRST_OPEN = 1748169180000
START = FIRST_OPEN + 600 * 60_000
"""Replay start leaving 600 candles of history for REST warm-up."""
WAIT_S = 5.0


@contextmanager
def running(data=(BTC,), **overrides) -> Iterator[LocalExchange]:
    settings = {"port": 0, "paused": True, "start_ms": START} | overrides
    exchange = LocalExchange(list(data), SimConfig(**settings)).start()
    try:
        yield exchange
    finally:
        exchange.stop()


def client_class(exchange: LocalExchange, base: type = Client) -> type:
    """A python-binance client class pointed at the exchange by its base-URL attributes only."""
    return type(
        "LocalClient",
        (base,),
        {
            "API_URL": exchange.api_url,
            "FUTURES_URL": exchange.fapi_url,
            "FUTURES_COIN_URL": exchange.dapi_url,
        },
    )


def sync_client(exchange: LocalExchange, key: str | None = None, secret: str | None = None) -> Client:
    cls = client_class(exchange)
    return cls(key or exchange.api_key, secret or exchange.api_secret)


async def async_client(exchange: LocalExchange) -> AsyncClient:
    cls = client_class(exchange, AsyncClient)
    return await cls.create(exchange.api_key, exchange.api_secret)


def socket_manager(client: AsyncClient, exchange: LocalExchange, **kwargs) -> BinanceSocketManager:
    cls = type(
        "LocalBSM", (BinanceSocketManager,), {"FSTREAM_URL": exchange.ws_url, "DSTREAM_URL": exchange.ws_url}
    )
    return cls(client, **kwargs)


async def subscribed(exchange: LocalExchange, *streams: str) -> None:
    """Until the exchange has registered ``streams``: a client's handshake can end before the server's
    handler has subscribed it, so frames sent right after connecting could miss it."""
    await asyncio.to_thread(
        wait_until,
        lambda: set(streams) <= set(exchange.status()["clients"]["streams"]),
        WAIT_S,
        f"the exchange to subscribe {', '.join(streams)}",
    )


async def user_connected(exchange: LocalExchange) -> None:
    """Until the exchange has registered a user-data (listenKey) connection (see ``subscribed``)."""
    await asyncio.to_thread(
        wait_until,
        lambda: exchange.status()["clients"]["user_clients"] >= 1,
        WAIT_S,
        "a user-data connection on the exchange",
    )


def release_sockets(exchange: LocalExchange, sock: ReconnectingWebsocket) -> None:
    """Close the server side as soon as ``sock``'s context has started exiting.

    python-binance's read loop only notices it is exiting when a message arrives or its 10 s receive
    timeout runs out; a server-side close wakes it at once. A close before the exit began would make it
    reconnect instead, so the drop waits for the socket's EXITING state.
    """

    def drop() -> None:
        wait_until(lambda: sock.ws_state is WSListenerState.EXITING, WAIT_S, "the socket context to exit")
        with contextlib.suppress(RuntimeError):  # the test may already have stopped the exchange
            exchange.drop_connections()

    threading.Thread(target=drop, name="release-sockets", daemon=True).start()
