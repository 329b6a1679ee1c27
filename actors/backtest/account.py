"""The backtest's one shared account: its inputs per symbol, its positions and wallets, and what it records.

Both drivers (``batch``, ``incremental``) open and close positions through ``Account`` only, so sizing,
fills, fees and PnL are the shared rules of ``domain/fills.py`` whichever driver runs. Wallets are kept in
decimals (no float noise in balances); times are fill times (the README's trades.csv columns): an entry
fills at the deciding candle's close, a path exit (stop, take-profit, trailing stop) within its candle
(its close time, open + interval − 1 ms), a close-time exit (time, reversal) at its candle's close.
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
    charged,
    fee,
    initial_margin,
    market_fill_price,
    pnl,
    protective_price,
    size_position,
    to_decimal,
)
from ..domain.funding import FundingHistory
from ..domain.model import TIMEFRAME_MS, ContractType, Decision, Direction
from ..domain.strategies import AnyParams
from .kline_files import KlineSeries
from .results import BacktestResult, OpenPosition, Rejection, Trade

CLOSE_TIME_EXITS = frozenset({ExitReason.TIME_EXIT, ExitReason.REVERSAL})
"""Exits that fill at market after their candle closed (the others fill inside it)."""


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


@dataclass(slots=True)
class Position:
    """An open position of the backtest."""

    direction: Direction
    signal_ms: int
    decided_ms: int
    """Open time of the deciding candle: exits are looked for from the next candle on."""
    entry_ms: int
    """When the entry filled: the deciding candle's close."""
    entry_price: float
    qty: Decimal
    stop: float
    take_profit: float
    margin: float
    entry_fee: float
    trailing: TrailingStop | None
    """The trailing stop as it stands after the candles walked so far (None without one)."""


class Account:
    """Wallets per margin asset (in decimals), locked margin, positions."""

    def __init__(self, runs: Sequence[SymbolRun], settings: AccountSettings, result: BacktestResult) -> None:
        self.settings = settings
        self.result = result
        coins = dict(settings.initial_balance_coin)
        self.wallet: dict[str, Decimal] = {}
        self.usd_price: dict[str, float] = {"USDT": 1.0}
        for run in runs:
            asset = run.spec.margin_asset
            if run.spec.contract_type is ContractType.COIN_M:
                self.wallet.setdefault(asset, to_decimal(coins.get(asset, 1.0)))
                if len(run.series):
                    self.usd_price.setdefault(asset, float(run.series.close[0]))
            else:
                self.wallet.setdefault(asset, to_decimal(settings.initial_balance_usdt))
        self.locked: dict[str, float] = dict.fromkeys(self.wallet, 0.0)
        self.positions: dict[str, Position] = {}
        result.initial_balances = {a: float(v) for a, v in self.wallet.items()}

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
                balance=float(self.wallet[asset]) - self.locked[asset],
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
        entry_fee = charged(fee(spec, sized, price, self.settings.fee_pct))
        self.wallet[asset] -= entry_fee
        self.locked[asset] += margin
        self.positions[spec.symbol] = Position(
            direction=decision.direction,
            signal_ms=decision.signal_open_time_ms,
            decided_ms=decided_ms,
            entry_ms=decided_ms + TIMEFRAME_MS[run.series.timeframe],  # the deciding candle's close
            entry_price=price,
            qty=sized,
            stop=float(protective_price(decision.stop_loss, spec.tick_size, decision.direction)),
            take_profit=float(protective_price(decision.take_profit, spec.tick_size, decision.direction)),
            margin=margin,
            entry_fee=float(entry_fee),
            trailing=_trailing(run.exits, decision, spec),
        )
        return True

    def close(self, run: SymbolRun, at_ms: int, reason: ExitReason, trigger: float) -> None:
        """Close at ``trigger`` moved by the slippage, in (or, for a close-time exit, at the close of) the
        candle opened at ``at_ms``."""
        spec = run.spec
        pos = self.positions.pop(spec.symbol)
        sell = pos.direction is Direction.LONG
        price = market_fill_price(
            trigger, buy=not sell, slippage_pct=self.settings.slippage_pct, tick=spec.tick_size
        )
        gross = charged(pnl(spec, pos.direction, pos.qty, pos.entry_price, price))
        exit_fee = charged(fee(spec, pos.qty, price, self.settings.fee_pct))
        asset = spec.margin_asset
        self.wallet[asset] += gross - exit_fee
        self.locked[asset] -= pos.margin
        if spec.contract_type is ContractType.COIN_M:
            self.usd_price[asset] = price
        fees = to_decimal(pos.entry_fee) + exit_fee
        net = gross - fees
        rate = to_decimal(self.usd_price.get(asset, 0.0))
        filled_ms = at_ms + TIMEFRAME_MS[run.series.timeframe] - (0 if reason in CLOSE_TIME_EXITS else 1)
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
                exit_time_ms=filled_ms,
                exit_price=price,
                exit_reason=reason,
                margin_asset=asset,
                pnl=float(gross),
                fees=float(fees),
                net_pnl=float(net),
                net_pnl_usd=float(net * rate),
                fees_usd=float(fees * rate),
                balance_after=float(self.wallet[asset]),
                entry_fee=pos.entry_fee,
            )
        )

    def still_open(self, runs: Sequence[SymbolRun]) -> list[OpenPosition]:
        """The positions the data ended on, in the order of ``runs``."""
        assets = {r.spec.symbol: r.spec.margin_asset for r in runs}
        coin = ContractType.COIN_M
        sizes = {r.spec.symbol: r.spec.contract_size if r.spec.contract_type is coin else None for r in runs}
        return [
            OpenPosition(
                symbol=symbol, direction=p.direction, signal_open_time_ms=p.signal_ms,
                entry_time_ms=p.entry_ms, entry_price=p.entry_price, quantity=p.qty, stop_loss=p.stop,
                take_profit=p.take_profit, margin_asset=assets[symbol], entry_fee=p.entry_fee,
                contract_size=sizes[symbol],
            )
            for symbol, p in sorted(self.positions.items(), key=lambda kv: list(assets).index(kv[0]))
        ]  # fmt: skip


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
