"""Settings of the local exchange, with the documented defaults.

Defaults a client needs to know:

* ``DEFAULT_HOST`` ``127.0.0.1`` — the exchange binds to loopback only.
* ``DEFAULT_PORT`` ``8765`` (``0`` picks an ephemeral port).
* ``DEFAULT_API_KEY`` ``nancemakina-local-key`` / ``DEFAULT_API_SECRET`` ``nancemakina-local-secret``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_API_KEY = "nancemakina-local-key"
DEFAULT_API_SECRET = "nancemakina-local-secret"  # noqa: S105 - the documented local default
MAX_SPEED = math.inf
"""``speed`` value meaning "as fast as the clients allow" (``--speed max``)."""

_DEFAULT_BALANCES: Mapping[str, Decimal] = MappingProxyType(
    {"USDT": Decimal(10_000), "BTC": Decimal(1), "ETH": Decimal(10)}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """Everything the local exchange can be told; each field has a Binance-like default."""

    host: str = DEFAULT_HOST
    """Interface to bind; anything but loopback is refused."""
    port: int = DEFAULT_PORT
    """TCP port; 0 = ephemeral (read ``LocalExchange.port`` after ``start()``)."""
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    speed: float = MAX_SPEED
    """Replay speed as a multiple of real time; ``MAX_SPEED`` runs lock-step with pacers or flat out."""
    start_ms: int | None = None
    """Open time of the first replayed candle; earlier candles are history. None = first candle."""
    paused: bool = False
    """Start with the clock paused (``resume()`` or ``step()`` to move it)."""
    hold_until_client: bool = False
    """Do not replay the first candle before a market-stream client or a pacer is connected."""
    updates_per_candle: int = 3
    """Unclosed kline updates sent before each closed one (0–3: open, first extreme, second extreme)."""
    update_interval_ms: int | None = None
    """When set (Binance: 250), an unclosed update every this many ms of market time instead, walking the
    candle's path (``sim/frames.py``): the real venue's frame rate. Overrides ``updates_per_candle``."""
    slippage_pct: float = 0.0
    fee_pct: float = 0.05
    """Taker fee in percent of the notional."""
    balances: Mapping[str, Decimal] = field(default_factory=lambda: _DEFAULT_BALANCES)
    """Starting wallet balance per margin asset."""
    default_leverage: int = 20
    weight_limit: int = 2400
    """REQUEST_WEIGHT per minute (wall clock) before HTTP 429."""
    order_limit_10s: int = 300
    """New orders per 10 s (wall clock) before HTTP 429 -1015; they cost no request weight."""
    order_limit_1m: int = 1200
    """New orders per minute (wall clock) before HTTP 429 -1015."""
    stream_cap: int = 1024
    """Streams per WebSocket connection (Binance's hard cap)."""
    max_frames_per_s: int = 10
    """Incoming WebSocket frames per second before the connection is dropped."""
    pacer_timeout_s: float = 30.0
    """How long a lock-step candle waits for all pacers' acks before moving on anyway."""
    listen_key_ttl_s: float = 3600.0
    recv_window_max_ms: int = 60_000
    exchange_info: tuple[str, ...] = ()
    """Saved exchangeInfo answers whose filters come before the bundled ones (``--exchange-info``)."""
    maker_fee_pct: float = 0.02
    """Maker fee in percent of the notional (resting LIMIT fills)."""
    funding_rates: tuple[str, ...] = ()
    """Binance funding-rate archive files (``[SYMBOL=]FILE``): ``premiumIndex``, ``markPrice`` and
    ``fundingRate`` serve their settled rates as of the replay clock (``--funding``)."""

    def __post_init__(self) -> None:
        if self.host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError(f"the local exchange binds to loopback only, not {self.host!r}")
        if not 0 <= self.updates_per_candle <= 3:
            raise ValueError("updates_per_candle must be within 0..3")
        if self.update_interval_ms is not None and (
            self.update_interval_ms <= 0 or 60_000 % self.update_interval_ms
        ):
            raise ValueError("update_interval_ms must divide 60000 (Binance: 250)")
        if self.speed <= 0:
            raise ValueError("speed must be positive")
