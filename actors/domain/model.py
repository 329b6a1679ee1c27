"""The trading domain's value types: candles, sides, markets, decisions, order legs.

Frozen, slotted and keyword-only; scalars, enums, Decimals and tuples only, so any actor thread may share
them. No I/O and no clock: the strategy, the fill rules, the backtester and the actors all speak these.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}
"""Binance kline intervals the bot understands, with their length in milliseconds."""


class Direction(StrEnum):
    """Side of a position."""

    LONG = "LONG"
    SHORT = "SHORT"

    @property
    def sign(self) -> int:
        """+1 for LONG, -1 for SHORT: multiply a price move by it to get the position's gain."""
        return 1 if self is Direction.LONG else -1


class ContractType(StrEnum):
    """Binance futures market a symbol trades on."""

    USDT_M = "USDT_M"
    COIN_M = "COIN_M"


class Outcome(StrEnum):
    """What the strategy did with a crossover."""

    TAKEN = "taken"
    SKIPPED = "skipped"


class SkipReason(StrEnum):
    """Why a crossover did not become a trade (first failing rule, in evaluation order)."""

    NOT_CONFIRMED = "not_confirmed"
    POSITION_OPEN = "position_open"
    MIN_INTERVAL = "min_interval"
    INVALID_STOP = "invalid_stop"
    VOLUME_FILTER = "volume_filter"
    VOLATILITY_FILTER = "volatility_filter"
    MAX_CONCURRENT = "max_concurrent"
    GAP_UNREPAIRED = "gap_unrepaired"
    PAUSED = "paused"
    LATE = "late"
    """Live only: decided after a restart from a candle that closed while the bot was down (never traded)."""
    WARMUP = "warmup"
    """V2: ATR or StochRSI not defined yet at the signal candle."""
    TREND_STALE = "trend_stale"
    """V2: a trend timeframe's candle that closed at the last boundary is not known."""
    TREND_FILTER = "trend_filter"
    """V2: a trend timeframe's close is not on the trade's side of its EMA."""
    BTC_STALE = "btc_stale"
    BTC_FILTER = "btc_filter"
    """V2: the same two checks on the BTC reference symbol's trend."""
    STOCH_RSI_FILTER = "stoch_rsi_filter"
    """V2: StochRSI %K overbought for a LONG, oversold for a SHORT."""
    FUNDING_UNKNOWN = "funding_unknown"
    FUNDING_FILTER = "funding_filter"
    """V2: no usable funding rate, or its magnitude above ``max_funding_rate_threshold``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Kline:
    """One candle of one symbol and timeframe."""

    symbol: str
    """API symbol, e.g. ``BTCUSDT`` or ``BTCUSD_PERP``."""
    timeframe: str
    """Binance interval, e.g. ``1m``."""
    open_time_ms: int
    """Candle open time, Unix milliseconds UTC: the candle's identity."""
    open: float
    high: float
    low: float
    close: float
    volume: float
    """Volume in base asset (USDⓈ-M) or contracts (COIN-M), as Binance reports it."""
    closed: bool = True
    """False for the in-progress updates a live stream sends before the candle closes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The strategy's verdict on one crossover. Every crossover produces exactly one."""

    symbol: str
    timeframe: str
    signal_open_time_ms: int
    """Open time of the signal candle: the closed candle on which short−long changed sign."""
    decided_open_time_ms: int
    """Open time of the candle whose close settled the decision (signal + ``buffer_time_candles``)."""
    direction: Direction
    outcome: Outcome
    reason: SkipReason | None = None
    """Set when ``outcome`` is skipped."""
    entry: float | None = None
    """Reference entry: close of the deciding candle (fills add slippage)."""
    stop_loss: float | None = None
    """Pivot low (LONG) / high (SHORT) of the lookback candles before the signal candle."""
    take_profit: float | None = None
    """entry ± risk × tp_sl_ratio, computed in decimals: the float whose repr is that exact value."""

    @property
    def taken(self) -> bool:
        """True when the strategy wants this trade on."""
        return self.outcome is Outcome.TAKEN


class Leg(StrEnum):
    """Which order of a trade a client order id belongs to."""

    ENTRY = "E"
    STOP = "S"
    TAKE_PROFIT = "T"
    CLOSE = "C"
    TRAILING_STOP = "R"
    TIME_EXIT = "X"
    REVERSAL = "V"


def client_order_id(symbol: str, signal_open_time_ms: int, leg: Leg) -> str:
    """Deterministic id of one leg of one signal: a retry can only ever find, never duplicate, the order.

    Binance allows ``^[.A-Z:/a-z0-9_-]{1,36}$``; ``nm-BTCUSDT-1748184420000-E`` fits for every symbol ≤ 16.
    """
    return f"nm-{symbol}-{signal_open_time_ms}-{leg.value}"[:36]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldPosition:
    """One open position as the ledger knows it: what a time or reversal exit needs."""

    symbol: str
    direction: Direction
    quantity: str
    """Decimal string, as the exchange reported the fill."""
    signal_open_time_ms: int | None
    """The signal that opened it (None for a position adopted from the exchange)."""
    opened_at_ms: int
    """When the entry filled (exchange time): at or just after the close of the deciding candle."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PortfolioView:
    """Immutable snapshot of open positions that pair actors read without asking the ledger."""

    open_symbols: frozenset[str] = frozenset()
    held: tuple[HeldPosition, ...] = ()
    """The open positions themselves, for the exits that close at a candle's close."""

    def position(self, symbol: str) -> HeldPosition | None:
        """The open position of ``symbol``, if the ledger holds one."""
        return next((h for h in self.held if h.symbol == symbol), None)

    @property
    def open_positions(self) -> int:
        """How many symbols hold a position."""
        return len(self.open_symbols)
