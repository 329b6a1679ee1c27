"""Local Binance Futures–compatible exchange: replays klines, matches orders, injects faults.

``LocalExchange`` runs it in-process (tests, replay mode); ``run_exchange_cli`` is ``nancemakina exchange``.
Defaults: 127.0.0.1:8765, key ``nancemakina-local-key``, secret ``nancemakina-local-secret``.
"""

from actors.sim.cli import run_exchange_cli
from actors.sim.config import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_HOST,
    DEFAULT_PORT,
    MAX_SPEED,
    SimConfig,
)
from actors.sim.server import LocalExchange

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_SPEED",
    "LocalExchange",
    "SimConfig",
    "run_exchange_cli",
]
