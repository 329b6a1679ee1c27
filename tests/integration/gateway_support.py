"""Helpers of the gateway tests (no tests here): a LocalExchange on an ephemeral loopback port, paused, with
synthetic 1m series, and a gateway pointed at it (the ``exchange`` and ``gateway`` fixtures in conftest.py).

The replay clock stands at candle ``HISTORY`` (open time ``NOW_MS``): candles ``[0, HISTORY)`` are closed
history, nothing moves unless a test steps the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nancemakina.actors.exchange.endpoints import Endpoints
from nancemakina.actors.exchange.gateway import BinanceGateway
from nancemakina.actors.exchange.ratelimit import WeightBudget
from nancemakina.actors.sim.config import SimConfig
from nancemakina.actors.sim.server import LocalExchange

M = 60_000
T0 = 1_748_131_200_000
COUNT = 3000
HISTORY = 2000
NOW_MS = T0 + HISTORY * M
PRICE0 = 100_000.0
"""Close of candle i is PRICE0 + i + 1; the replay clock's last closed close is PRICE0 + HISTORY."""


@dataclass
class Series:
    symbol: str
    open_time: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]


def series(symbol: str, base: float = PRICE0) -> Series:
    t = T0 + np.arange(COUNT, dtype=np.int64) * M
    c = base + np.arange(COUNT, dtype=np.float64)
    return Series(symbol, t, c, c + 5, c - 5, c + 1, np.ones(COUNT))


def start_exchange(**config: object) -> LocalExchange:
    settings = {"port": 0, "paused": True, "start_ms": NOW_MS} | config
    ex = LocalExchange([series("BTCUSDT"), series("BTCUSD_PERP")], SimConfig(**settings))  # type: ignore[arg-type]
    return ex.start()


def make_gateway(ex: LocalExchange, *, budget: WeightBudget | None = None, **kw: object) -> BinanceGateway:
    return BinanceGateway(
        Endpoints.local(ex.rest_url, ex.ws_url),
        api_key=kw.pop("api_key", ex.api_key),  # type: ignore[arg-type]
        api_secret=kw.pop("api_secret", ex.api_secret),  # type: ignore[arg-type]
        budget=budget or WeightBudget(),
        **kw,  # type: ignore[arg-type]
    )
