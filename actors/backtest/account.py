"""The backtest's one shared account: its inputs per symbol, its positions and wallets, and what it records.

Both drivers (``batch``, ``incremental``) open and close positions through ``Account`` only, so sizing,
fills, fees and PnL are the shared rules of ``domain/fills.py`` whichever driver runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ..domain.exits import ExitParams, placed_trailing
from ..domain.fills import (
    ExitReason,
    InstrumentSpec,
    SizingError,
    SizingRequest,
    TrailingStop,
    fee,
    initial_margin,
    market_fill_price,
    pnl,
    protective_price,
    size_position,
)
from ..domain.funding import FundingHistory
from ..domain.model import ContractType, Decision, Direction
from ..domain.strategies import AnyParams
from .kline_files import KlineSeries


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSettings:
    """Fees, slippage and starting balances (the config's ``backtesting`` section)."""

    fee_pct: float = 0.04
    slippage_pct: float = 0.01
    initial_balance_usdt: float = 10_000.0
    initial_balance_coin: tuple[tuple[str, float], ...] = ()
    """(coin, amount) pairs; a COIN-M margin coin not listed starts with 1.0."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolRun:
    """One symbol's data and effective settings."""

    series: KlineSeries
    spec: InstrumentSpec
    params: AnyParams
    """V1 ``StrategyParams`` or ``V2Params``: the strategy this symbol trades."""
    leverage: int
    fixed_margin: float
    dynamic_sizing: bool
    risk_percent: float
    exits: ExitParams = field(default_factory=ExitParams)
    funding: FundingHistory | None = None
    """The symbol's funding settlements (needed when a V2 funding filter is set)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """A closed position."""

    symbol: str
    direction: Direction
    signal_open_time_ms: int
    entry_time_ms: int
    entry_price: float
    quantity: Decimal
    stop_loss: float
    take_profit: float
    exit_time_ms: int
    exit_price: float
    exit_reason: ExitReason
    margin_asset: str
    pnl: float
    fees: float
    net_pnl: float
    net_pnl_usd: float
    fees_usd: float
    balance_after: float


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
    equity: list[tuple[int, float]] = field(default_factory=list)
    """(time ms, account equity valued in USD) at the start and after every exit."""
    initial_balances: dict[str, float] = field(default_factory=dict)
    final_balances: dict[str, float] = field(default_factory=dict)
    klines: int = 0
    engine_seconds: float = 0.0
    engine: str = "batch"


@dataclass(slots=True)
class Position:
    """An open position of the backtest."""

    direction: Direction
    signal_ms: int
    entry_ms: int
    """Open time of the candle at whose close it was entered."""
    entry_price: float
    qty: Decimal
    stop: float
    take_profit: float
    margin: float
    entry_fee: float
    trailing: TrailingStop | None
    """The trailing stop as it stands after the candles walked so far (None without one)."""


class Account:
    """Wallets per margin asset, locked margin, positions; converts to USD for the equity curve."""

    def __init__(self, runs: Sequence[SymbolRun], settings: AccountSettings, result: BacktestResult) -> None:
        self.settings = settings
        self.result = result
        coins = dict(settings.initial_balance_coin)
        self.wallet: dict[str, float] = {}
        self.usd_price: dict[str, float] = {"USDT": 1.0}
        for run in runs:
            asset = run.spec.margin_asset
            if run.spec.contract_type is ContractType.COIN_M:
                self.wallet.setdefault(asset, coins.get(asset, 1.0))
                if len(run.series):
                    self.usd_price.setdefault(asset, float(run.series.close[0]))
            else:
                self.wallet.setdefault(asset, settings.initial_balance_usdt)
        self.locked: dict[str, float] = dict.fromkeys(self.wallet, 0.0)
        self.positions: dict[str, Position] = {}
        result.initial_balances = dict(self.wallet)
        first = min((int(r.series.open_time[0]) for r in runs if len(r.series)), default=0)
        result.equity.append((first, self.equity_usd()))

    def equity_usd(self) -> float:
        return sum(bal * self.usd_price.get(asset, 0.0) for asset, bal in self.wallet.items())

    def open(self, run: SymbolRun, decision: Decision, decided_ms: int) -> bool:
        """Fill a taken decision at market (False, with a ``Rejection``, when the filters refuse it)."""
        spec = run.spec
        if decision.entry is None or decision.stop_loss is None or decision.take_profit is None:
            raise ValueError(f"taken decision without levels: {decision}")
        long = decision.direction is Direction.LONG
        price = market_fill_price(
            decision.entry, buy=long, slippage_pct=self.settings.slippage_pct, tick=spec.tick_size
        )
        asset = spec.margin_asset
        sized = size_position(
            SizingRequest(
                spec=spec,
                direction=decision.direction,
                entry=decision.entry,  # sized on the price known when deciding, like the live executor
                stop=decision.stop_loss,
                balance=self.wallet[asset] - self.locked[asset],
                leverage=run.leverage,
                fixed_margin=run.fixed_margin,
                dynamic=run.dynamic_sizing,
                risk_percent=run.risk_percent,
            )
        )
        if isinstance(sized, SizingError):
            self.result.rejections.append(
                Rejection(symbol=spec.symbol, signal_open_time_ms=decision.signal_open_time_ms, reason=sized)
            )
            return False
        margin = initial_margin(spec, sized, price, run.leverage)
        entry_fee = fee(spec, sized, price, self.settings.fee_pct)
        self.wallet[asset] -= entry_fee
        self.locked[asset] += margin
        self.positions[spec.symbol] = Position(
            direction=decision.direction,
            signal_ms=decision.signal_open_time_ms,
            entry_ms=decided_ms,
            entry_price=price,
            qty=sized,
            stop=float(protective_price(decision.stop_loss, spec.tick_size, decision.direction)),
            take_profit=float(protective_price(decision.take_profit, spec.tick_size, decision.direction)),
            margin=margin,
            entry_fee=entry_fee,
            trailing=_trailing(run.exits, decision, spec),
        )
        return True

    def close(self, run: SymbolRun, at_ms: int, reason: ExitReason, trigger: float) -> None:
        """Close ``run``'s position: at ``trigger`` moved by the slippage (exactly at it for end of data)."""
        spec = run.spec
        pos = self.positions.pop(spec.symbol)
        if reason is ExitReason.END_OF_DATA:
            price = trigger
        else:
            sell = pos.direction is Direction.LONG
            price = market_fill_price(
                trigger, buy=not sell, slippage_pct=self.settings.slippage_pct, tick=spec.tick_size
            )
        gross = pnl(spec, pos.direction, pos.qty, pos.entry_price, price)
        exit_fee = fee(spec, pos.qty, price, self.settings.fee_pct)
        asset = spec.margin_asset
        self.wallet[asset] += gross - exit_fee
        self.locked[asset] -= pos.margin
        if spec.contract_type is ContractType.COIN_M:
            self.usd_price[asset] = price
        net = gross - pos.entry_fee - exit_fee
        self.result.trades.append(
            Trade(
                symbol=spec.symbol,
                direction=pos.direction,
                signal_open_time_ms=pos.signal_ms,
                entry_time_ms=pos.entry_ms,
                entry_price=pos.entry_price,
                quantity=pos.qty,
                stop_loss=pos.stop,
                take_profit=pos.take_profit,
                exit_time_ms=at_ms,
                exit_price=price,
                exit_reason=reason,
                margin_asset=asset,
                pnl=gross,
                fees=pos.entry_fee + exit_fee,
                net_pnl=net,
                net_pnl_usd=net * self.usd_price.get(asset, 0.0),
                fees_usd=(pos.entry_fee + exit_fee) * self.usd_price.get(asset, 0.0),
                balance_after=self.wallet[asset],
            )
        )
        self.result.equity.append((at_ms, self.equity_usd()))


def _trailing(exits: ExitParams, decision: Decision, spec: InstrumentSpec) -> TrailingStop | None:
    """The trailing stop placed with a taken decision's protective orders, at the decision's close."""
    if decision.entry is None or decision.stop_loss is None:
        return None
    return placed_trailing(
        exits,
        decision.direction,
        entry=decision.entry,
        stop=decision.stop_loss,
        price=decision.entry,
        tick=spec.tick_size,
    )
