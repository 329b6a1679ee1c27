"""Shared helpers of the local-exchange integration tests (no tests here)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from binance import AsyncClient, Client
from binance.ws.streams import BinanceSocketManager

from nancemakina.actors.sim import LocalExchange, SimConfig

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
FIRST_OPEN = 1748169180000
START = FIRST_OPEN + 600 * 60_000
"""Replay start leaving 600 candles of history for REST warm-up."""


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


def release_sockets(exchange: LocalExchange, delay_s: float = 0.2) -> None:
    """Close the server side shortly after a socket context starts exiting.

    python-binance's read loop only notices it is exiting when a message arrives or its 10 s receive
    timeout runs out; a server-side close wakes it at once.
    """

    def drop() -> None:
        with contextlib.suppress(RuntimeError):  # the test may already have stopped the exchange
            exchange.drop_connections()

    timer = threading.Timer(delay_s, drop)
    timer.daemon = True
    timer.start()
