"""What a backtest (or the ledger, read as one) produced: closed trades, open positions, decisions, equity.

``report_files`` writes these; ``engine`` fills them from recorded klines and ``cli/report`` from the ledger,
so both reports hold the same fields with the same meanings (the README lists them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from ..domain.fills import SizingError, to_decimal
from ..domain.model import Decision, Direction
from .equity import EquityCurve, Holding


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """A closed position (trades.csv: the column meanings are in the README)."""

    symbol: str
    direction: Direction
    signal_open_time_ms: int
    entry_time_ms: int
    """When the entry filled: the close of the deciding candle."""
    entry_price: float
    quantity: Decimal
    stop_loss: float
    take_profit: float
    exit_time_ms: int
    """When the exit filled: the close time of the candle it filled in (open + interval − 1 ms)."""
    exit_price: float
    exit_reason: str
    """An ``ExitReason`` (a backtest's), or the ledger's own reason for a trade it closed otherwise
    (``flattened``, ``reconciled_flat``, ...): a text column, so a new reason changes no schema."""
    margin_asset: str
    pnl: float
    """Realised PnL before fees, in the margin asset."""
    fees: float
    """Entry and exit fees, in the margin asset."""
    net_pnl: float
    net_pnl_usd: float
    fees_usd: float
    balance_after: float
    """The wallet right after the exit (entry fees of positions still open already paid); trades.csv writes
    the realised balance instead, the same for a backtest and a report (``report_files.closed_trades``)."""
    entry_fee: float = 0.0
    """The entry's part of ``fees``: paid when the position opened (the equity curve books it then)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenPosition:
    """A position still open when the data (or the ledger) ends: listed, never given an invented exit."""

    symbol: str
    direction: Direction
    signal_open_time_ms: int
    entry_time_ms: int
    entry_price: float
    quantity: Decimal
    stop_loss: float
    take_profit: float
    margin_asset: str
    entry_fee: float
    contract_size: int | None = None
    """COIN-M contract value in USD (inverse PnL); None for USDⓈ-M."""

    def unrealized(self, mark: float) -> float:
        """PnL if closed at ``mark``, in the margin asset (before the exit fee)."""
        e, m, qty = to_decimal(self.entry_price), to_decimal(mark), self.quantity * self.direction.sign
        if self.contract_size is not None:
            return float(qty * self.contract_size * (1 / e - 1 / m))
        return float(qty * (m - e))


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """A taken decision the account could not fill (the exchange would refuse the order)."""

    symbol: str
    signal_open_time_ms: int
    reason: SizingError


@dataclass(slots=True, kw_only=True)
class BacktestResult:
    """Everything a report needs."""

    decisions: list[Decision] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    open_positions: list[OpenPosition] = field(default_factory=list)
    """Positions still open at the end of the data, marked in ``equity`` at the last close."""
    equity: EquityCurve | None = None
    """Equity per margin asset (and in USD) at every candle close."""
    initial_balances: dict[str, float] = field(default_factory=dict)
    final_balances: dict[str, float] = field(default_factory=dict)
    klines: int | None = 0
    """Candles backtested; for the ledger, those the equity is marked on (None: no candles at hand)."""
    engine_seconds: float = 0.0
    engine: str = "batch"
    symbols: tuple[str, ...] = ()
    """What ran, in the order given (the chart's title)."""


def holdings(result: BacktestResult, contract_sizes: Mapping[str, int | None]) -> list[Holding]:
    """The result's closed trades and open positions as the equity curve sees them."""
    closed = [
        Holding(
            symbol=t.symbol,
            margin_asset=t.margin_asset,
            direction=t.direction,
            quantity=t.quantity,
            entry_price=t.entry_price,
            contract_size=contract_sizes.get(t.symbol),
            entry_time_ms=t.entry_time_ms,
            entry_fee=t.entry_fee,
            exit_time_ms=t.exit_time_ms,
            exit_cash=float(to_decimal(t.pnl) - to_decimal(t.fees) + to_decimal(t.entry_fee)),
        )
        for t in result.trades
    ]
    still = [
        Holding(
            symbol=p.symbol, margin_asset=p.margin_asset, direction=p.direction, quantity=p.quantity,
            entry_price=p.entry_price, contract_size=p.contract_size, entry_time_ms=p.entry_time_ms,
            entry_fee=p.entry_fee,
        )
        for p in result.open_positions
    ]  # fmt: skip
    return closed + still
