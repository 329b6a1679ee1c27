"""Local Binance Futures–compatible exchange: replays klines, matches orders, injects faults.

``LocalExchange`` runs it in-process (tests, replay mode); ``nancemakina exchange`` runs it in the foreground.
Defaults: 127.0.0.1:8765, key ``nancemakina-local-key``, secret ``nancemakina-local-secret``.
"""

from .config import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_HOST,
    DEFAULT_PORT,
    MAX_SPEED,
    SimConfig,
)
from .server import LocalExchange

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_SPEED",
    "LocalExchange",
    "SimConfig",
]
