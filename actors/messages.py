"""Immutable domain types and the messages actors exchange.

Every type here is frozen, slotted and keyword-only; fields hold scalars, enums, Decimals or tuples,
never dicts or lists, so a message can be shared between actor threads without copying. The one reference
to something mutable is ``KlineClosed.turn``, a one-shot hand-off token (like a reply-to).
Commands are imperative (``SubmitEntry``); events are past tense (``KlineClosed``, ``EntryRejected``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runtime.scheduling import CandleTurn

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
    """entry ± risk × tp_sl_ratio."""

    @property
    def taken(self) -> bool:
        """True when the strategy wants this trade on."""
        return self.outcome is Outcome.TAKEN


@dataclass(frozen=True, slots=True, kw_only=True)
class KlineClosed:
    """Event: a closed candle arrived (from the stream or from a REST backfill)."""

    kline: Kline
    received_ns: int = 0
    """``time.perf_counter_ns()`` when the frame was read; 0 when not measured."""
    backfilled: bool = False
    """True when fetched over REST to repair a gap rather than pushed by the stream."""
    turn: CandleTurn | None = field(default=None, compare=False, repr=False)
    """Streamed candles: the reader waits for ``turn.done()`` before reading on (``actors/priority.py``)."""


class Leg(StrEnum):
    """Which order of a trade a client order id belongs to."""

    ENTRY = "E"
    STOP = "S"
    TAKE_PROFIT = "T"
    CLOSE = "C"


def client_order_id(symbol: str, signal_open_time_ms: int, leg: Leg) -> str:
    """Deterministic id of one leg of one signal: a retry can only ever find, never duplicate, the order.

    Binance allows ``^[.A-Z:/a-z0-9_-]{1,36}$``; ``nm-BTCUSDT-1748184420000-E`` fits for every symbol ≤ 16.
    """
    return f"nm-{symbol}-{signal_open_time_ms}-{leg.value}"[:36]


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitEntry:
    """Command to the executor: open the position a taken decision asks for."""

    decision: Decision
    received_ns: int = 0
    """``perf_counter_ns`` when the deciding candle's frame was read (latency measurement; 0 if unknown)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryRejected:
    """Event: the executor did not open a taken decision (a business failure, not an exception)."""

    symbol: str
    signal_open_time_ms: int
    reason: str
    """``max_concurrent``, ``position_open``, ``below_min_notional``, an exchange error code, …"""


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionOpened:
    """Event: an entry filled and its protective orders are on the exchange."""

    symbol: str
    direction: Direction
    quantity: str
    """Decimal string as the exchange reported it."""
    entry_price: float
    stop_loss: float
    take_profit: float
    signal_open_time_ms: int
    opened_at_ms: int
    contract_type: ContractType | None = None
    """Market the position is on (None only from callers that cannot know; the ledger then infers it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosed:
    """Event: a position is flat again (stop, take-profit, flatten, or found flat on reconciliation)."""

    symbol: str
    reason: str
    exit_price: float | None
    realized_pnl: float | None
    closed_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """Event for operators: something needs a human (naked position, pair parked, ...)."""

    kind: str
    symbol: str | None
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PortfolioView:
    """Immutable snapshot of open positions that pair actors read without asking the ledger."""

    open_symbols: frozenset[str] = frozenset()

    @property
    def open_positions(self) -> int:
        """How many symbols hold a position."""
        return len(self.open_symbols)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderStateChanged:
    """Event from the executor to the ledger: one of our orders was sent, acknowledged, filled or failed.

    The executor tells ``submitted`` *before* the request leaves, so a crash mid-request still leaves a
    row the reconciliation can resolve by client id.
    """

    symbol: str
    client_id: str
    leg: Leg
    status: str
    """``submitted``, ``new``, ``filled``, ``canceled``, ``rejected``, ``unknown``."""
    side: str
    quantity: str | None = None
    price: float | None = None
    """Average fill price (entry/close) or trigger price (stop/take-profit)."""
    exchange_id: int | None = None
    detail: str = ""
    at_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconcile:
    """Command to the ledger: compare positions and open orders with the exchange now."""

    reason: str = "periodic"


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseEntries:
    """Command to the executor: no new entries for ``symbol`` (or for every symbol when None)."""

    symbol: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeEntries:
    """Command to the executor: allow entries again for ``symbol`` (or every symbol when None)."""

    symbol: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StopAcceptingEntries:
    """Command to the executor at shutdown: refuse every new entry from now on; positions stay protected."""

    reason: str = "shutdown"
