"""Every message actors exchange, and which actor accepts which.

Frozen, slotted and keyword-only; fields hold scalars, enums, Decimals, tuples or frozen mappings, never
lists or dicts, so a message is shared between actor threads without copying. The one reference to
something mutable is ``KlineClosed.turn``, a one-shot hand-off token (like a reply-to). Commands are
imperative (``SubmitEntry``), events past tense (``KlineClosed``, ``EntryRejected``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from .domain.fills import ExitReason
from .domain.model import ContractType, Decision, Direction, Kline, Leg
from .domain.trend import TrendReading
from .exchange.types import UserEvent
from .runtime.actor import Barrier, ChildExited
from .runtime.protocol import ParkGroup, Ping, RestartChild, RestartGroup, SupervisorInbox
from .runtime.tree import ReloadTree, StartTree, StopTree, TreeRootInbox

if TYPE_CHECKING:
    from .domain.kline_sequencer import Key, OpenRange
    from .exchange.shard_connection import ConnectionEvent
    from .runtime.scheduling import CandleTurn


@dataclass(frozen=True, slots=True, kw_only=True)
class KlineClosed:
    """Event: a closed candle arrived (from the stream or from a REST backfill)."""

    kline: Kline
    received_ns: int = 0
    """``time.perf_counter_ns()`` when the frame was read; 0 when not measured."""
    backfilled: bool = False
    """True when fetched over REST to repair a gap rather than pushed by the stream."""
    turn: CandleTurn | None = field(default=None, compare=False, repr=False)
    """Streamed candles: the reader waits for ``turn.done()`` before reading on (``CandleTurn``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryFetched:
    """Event to a pair actor, from its own warm-up read: the recent closed candles, oldest first."""

    klines: tuple[Kline, ...]
    error: str | None = None
    """Why the history could not be read (``Type: message``); the actor fails and is restarted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendUpdated:
    """Event between pair actors: a candle of a trend timeframe closed, with its trend (``domain.trend``).

    Told by the actor of that (symbol, timeframe) to each deciding actor that follows it — its own pair's
    signal timeframe, and with the BTC correlation filter every other pair's — before it reports the candle
    done, so in a replay it is in their mailbox before the next step's candles.
    """

    reading: TrendReading


@dataclass(frozen=True, slots=True, kw_only=True)
class SendTrend:
    """Command to a trend timeframe's actor: tell your latest readings to this deciding actor (it just
    started, and a reading comes only once per candle of that timeframe)."""

    to_symbol: str
    to_timeframe: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosePosition:
    """Command to the executor: close this position at market now, for a time or reversal exit.

    The executor sends a reduce-only MARKET order with the leg of ``reason`` (``X`` time, ``V`` reversal),
    then cancels the position's stop, take-profit and trailing stop.
    """

    symbol: str
    direction: Direction
    quantity: str
    """Decimal string, the ledger's quantity of the position."""
    signal_open_time_ms: int | None
    """The position's signal (its orders' ids derive from it); None for an adopted position."""
    reason: ExitReason
    candle_open_time_ms: int
    """The signal-timeframe candle at whose close the exit was decided."""


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
class EntryFinished:
    """Event from the executor to the ledger: it is done with an entry it sent (it holds nothing more of it).

    Until then the ledger leaves the symbol to the executor; from then on the exchange decides: any outcome
    but ``protected`` makes the ledger reconcile at once (adopt, protect or close what the exchange holds,
    and free the symbol's entry slot if the exchange is flat).
    """

    symbol: str
    signal_open_time_ms: int
    outcome: str
    """``protected`` (its stop is on the exchange), ``flattened`` (the stop failed, closed at market),
    ``unconfirmed`` (the entry's or the close's outcome is unknown), ``failed`` (the executor crashed)."""
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionOpened:
    """Event: an entry filled (told before its protective orders are placed, with their levels)."""

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
    signal_open_time_ms: int | None = None
    """The signal of the position that closed (None when adopted or not known to the sender)."""
    direction: Direction | None = None
    quantity: Decimal | None = None
    entry_price: float | None = None
    margin_asset: str | None = None
    """The asset ``realized_pnl`` and ``fees`` are in."""
    fees: Decimal | None = None
    """Commissions of the trade's entry and exits, as the exchange charged them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled:
    """Event from the ledger: one of our orders filled in full, told once per order whoever reported it
    (the executor, the user-data stream or a reconciliation)."""

    symbol: str
    leg: Leg | None
    """Which order of its trade: entry, stop, take-profit or close (None if its client id is not ours)."""
    side: str
    quantity: str | None
    price: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """Event for operators: something needs a human (naked position, pair parked, ...)."""

    kind: str
    symbol: str | None
    detail: str


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


# --- to a market stream ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe:
    """Command: stream closed candles of these (symbol, timeframe) keys (idempotent).

    One message may carry a whole market's keys: they then open their connections together, each with its
    streams in its URL, instead of growing connections by SUBSCRIBE frames paced at a few per second."""

    keys: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, symbol: str, timeframes: tuple[str, ...]) -> Subscribe:
        return cls(keys=tuple((symbol, tf) for tf in timeframes))


@dataclass(frozen=True, slots=True, kw_only=True)
class SetCandleHandoff:
    """Command: a reloaded ``supervisor.candle_handoff_ms`` (0 turns the reader's wait off)."""

    ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe:
    """Command: stop streaming these (symbol, timeframe) keys."""

    keys: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, symbol: str, timeframes: tuple[str, ...]) -> Unsubscribe:
        return cls(keys=tuple((symbol, tf) for tf in timeframes))


@dataclass(frozen=True, slots=True, kw_only=True)
class KlineReceived:
    """Internal, from the ws thread: a closed kline of a held key (a gap to repair, or queued behind one)."""

    kline: Kline
    received_ns: int
    """``time.perf_counter_ns()`` when the frame was read."""
    missing: OpenRange | None = None
    """The gap the ws thread found before this kline (already counted by the sequencer)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionStatusChanged:
    """Internal, from the ws thread: a connection came up or went down.

    ``held``: the keys the ws thread handed over for a reconnect backfill (one hold each to release).
    """

    event: ConnectionEvent
    held: frozenset[Key] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class KlineGapUnrepaired:
    """Event to the pair: the exchange has no candles in [start, end]; do not open trades on this gap."""

    symbol: str
    timeframe: str
    start_open_ms: int
    end_open_ms: int


# --- who accepts what (checked when each actor class is defined; senders are typed with these) -------------

PairTimeframeInbox = (
    KlineClosed | HistoryFetched | EntryRejected | KlineGapUnrepaired | TrendUpdated | SendTrend
)
"""``tree/pair_timeframe.py``: candles from the market stream, its warm-up history, its rejected entries,
unrepairable gaps, and from other pair actors the trends it follows and the requests for the trends it
publishes."""

OrderExecutorInbox = (
    SubmitEntry | ClosePosition | PauseEntries | ResumeEntries | StopAcceptingEntries | PositionClosed
)
"""``tree/executor/``: entries and close-time exits from its pair, operator pauses, shutdown, the ledger's
closes."""

PositionLedgerInbox = (
    Decision
    | OrderStateChanged
    | EntryRejected
    | EntryFinished
    | Alert
    | PositionOpened
    | Reconcile
    | UserEvent
)
"""``tree/ledger/``: decisions, the executors' order events, alerts, and the exchange's user-data events
(``exchange/types.py``: ``OrderUpdate``, ``AlgoUpdate``, ``AccountUpdate``, ``ListenKeyExpired``,
``UserStreamStatus``), parsed at the venue boundary."""

MarketStreamInbox = Subscribe | Unsubscribe | SetCandleHandoff | KlineReceived | ConnectionStatusChanged
"""``tree/market/``: subscriptions from the root, and its own WebSocket thread's hand-offs."""

__all__ = [
    "Alert",
    "Barrier",
    "ChildExited",
    "ClosePosition",
    "ConnectionStatusChanged",
    "EntryFinished",
    "EntryRejected",
    "HistoryFetched",
    "KlineClosed",
    "KlineGapUnrepaired",
    "KlineReceived",
    "MarketStreamInbox",
    "OrderExecutorInbox",
    "OrderFilled",
    "OrderStateChanged",
    "PairTimeframeInbox",
    "ParkGroup",
    "PauseEntries",
    "Ping",
    "PositionClosed",
    "PositionLedgerInbox",
    "PositionOpened",
    "Reconcile",
    "ReloadTree",
    "RestartChild",
    "RestartGroup",
    "ResumeEntries",
    "SendTrend",
    "SetCandleHandoff",
    "StartTree",
    "StopAcceptingEntries",
    "StopTree",
    "SubmitEntry",
    "Subscribe",
    "SupervisorInbox",
    "TreeRootInbox",
    "TrendUpdated",
    "Unsubscribe",
    "UserEvent",
]
