"""Backtest engine: the V1 strategy over recorded klines, with one shared account and the shared fill rules.

Two interchangeable drivers produce the same decisions and trades:

- ``batch`` (default): ``signals.scan`` finds every crossover with numpy, then only crossovers and exits are
  visited in time order. Hundreds of thousands of klines per second.
- ``incremental``: every candle goes through ``PairStrategy`` exactly as in the live pair actor. Slow; used to
  prove the batch driver equal to the live code.

Per timestamp, every symbol's exits are settled before any decision (the local exchange walks all
symbols' candle paths before it closes the candles), and symbols are visited in the order given.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from ..domain.crossover_scan import scan
from ..domain.fills import (
    ExitReason,
    InstrumentSpec,
    SizingError,
    SizingRequest,
    charged,
    exit_on_candle,
    fee,
    initial_margin,
    market_fill_price,
    pnl,
    protective_price,
    size_position,
    to_decimal,
)
from ..domain.model import TIMEFRAME_MS, ContractType, Decision, Direction
from ..domain.strategy import PairStrategy, StrategyParams, judge
from .equity import Candles, EquityCurve, mark_to_market
from .kline_files import KlineSeries
from .results import BacktestResult, OpenPosition, Rejection, Trade, holdings


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
    params: StrategyParams
    leverage: int
    fixed_margin: float
    dynamic_sizing: bool
    risk_percent: float


@dataclass(slots=True)
class _Open:
    direction: Direction
    signal_ms: int
    decided_ms: int
    """Open time of the deciding candle: exits are looked for from the next candle on."""
    entry_ms: int
    entry_price: float
    qty: Decimal
    stop: float
    take_profit: float
    margin: float
    entry_fee: float


class _Account:
    """Wallets per margin asset (in decimals: no float noise in balances), locked margin, positions."""

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
        self.positions: dict[str, _Open] = {}
        result.initial_balances = {a: float(v) for a, v in self.wallet.items()}

    def open(self, run: SymbolRun, decision: Decision, decided_ms: int) -> bool:
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
        self.positions[spec.symbol] = _Open(
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
        )
        return True

    def close(self, run: SymbolRun, at_ms: int, reason: ExitReason, trigger: float) -> None:
        """Close at ``trigger`` moved by the slippage, in the candle opened at ``at_ms``."""
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
                exit_time_ms=at_ms + TIMEFRAME_MS[run.series.timeframe] - 1,
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


def _find_exit(series: KlineSeries, start: int, pos: _Open) -> int | None:
    """First candle at or after ``start`` whose range reaches the stop or the take-profit."""
    n = len(series)
    chunk = 256
    long = pos.direction is Direction.LONG
    while start < n:
        end = min(n, start + chunk)
        if long:
            mask = (series.low[start:end] <= pos.stop) | (series.high[start:end] >= pos.take_profit)
        else:
            mask = (series.high[start:end] >= pos.stop) | (series.low[start:end] <= pos.take_profit)
        hits = np.flatnonzero(mask)
        if hits.shape[0]:
            return start + int(hits[0])
        start = end
        chunk *= 4
    return None


def _exit_at(run: SymbolRun, pos: _Open, i: int) -> tuple[ExitReason, float] | None:
    """Whether candle ``i`` of the run closes ``pos`` (the shared fill rule), and at which price."""
    s = run.series
    return exit_on_candle(
        direction=pos.direction,
        stop=pos.stop,
        take_profit=pos.take_profit,
        open_=float(s.open[i]),
        high=float(s.high[i]),
        low=float(s.low[i]),
        close=float(s.close[i]),
    )


def _settle(run: SymbolRun, pos: _Open, i: int) -> tuple[ExitReason, float]:
    hit = _exit_at(run, pos, i)
    if hit is None:
        raise RuntimeError(f"{run.spec.symbol}: candle {i} reaches no level; _find_exit and fills disagree")
    return hit


_EXIT, _DECIDE = 0, 1


Progress = Callable[[float], None]
"""Called with the share of the run's time span done (0..1), at most about a hundred times per run."""


class _Throttle:
    def __init__(self, progress: Progress | None, start_ms: int, end_ms: int) -> None:
        self._progress = progress
        self._start = start_ms
        self._span = max(1, end_ms - start_ms)
        self._next = 0.0

    def __call__(self, at_ms: int) -> None:
        if self._progress is None:
            return
        share = (at_ms - self._start) / self._span
        if share >= self._next:
            self._next = share + 0.01
            self._progress(min(1.0, share))


def _span(runs: Sequence[SymbolRun]) -> tuple[int, int]:
    starts = [int(r.series.open_time[0]) for r in runs if len(r.series)]
    ends = [int(r.series.open_time[-1]) for r in runs if len(r.series)]
    return (min(starts, default=0), max(ends, default=0))


def _run_batch(runs: Sequence[SymbolRun], account: _Account, result: BacktestResult, tick: _Throttle) -> None:
    heap: list[tuple[int, int, int, int]] = []
    scanned = []
    for order, run in enumerate(runs):
        s = run.series
        found = scan(run.params, s.open_time, s.high, s.low, s.close, s.volume)
        scanned.append(found)
        if found:
            heapq.heappush(heap, (int(s.open_time[found[0].decided_index]), _DECIDE, order, 0))
    last_taken: list[int | None] = [None] * len(runs)
    exits: dict[int, tuple[int, ExitReason, float]] = {}
    while heap:
        at_ms, phase, order, k = heapq.heappop(heap)
        tick(at_ms)
        run = runs[order]
        if phase == _EXIT:
            idx, reason, price = exits.pop(order)
            account.close(run, int(run.series.open_time[idx]), reason, price)
            continue
        sc = scanned[order][k]
        if k + 1 < len(scanned[order]):
            nxt = scanned[order][k + 1].decided_index
            heapq.heappush(heap, (int(run.series.open_time[nxt]), _DECIDE, order, k + 1))
        decision = judge(
            run.params,
            sc.candidate,
            symbol=run.spec.symbol,
            timeframe=run.series.timeframe,
            decided_open_time_ms=at_ms,
            entry=float(run.series.close[sc.decided_index]),
            confirmed=sc.confirmed,
            position_open=run.spec.symbol in account.positions,
            open_positions=len(account.positions),
            last_taken_signal_ms=last_taken[order],
        )
        result.decisions.append(decision)
        if not decision.taken:
            continue
        last_taken[order] = decision.signal_open_time_ms
        if not account.open(run, decision, at_ms):
            last_taken[order] = None
            continue
        pos = account.positions[run.spec.symbol]
        hit_at = _find_exit(run.series, sc.decided_index + 1, pos)
        if hit_at is not None:  # else it is still open when the data ends
            reason, price = _settle(run, pos, hit_at)
            exits[order] = (hit_at, reason, price)
            heapq.heappush(heap, (int(run.series.open_time[hit_at]), _EXIT, order, 0))


def _run_incremental(
    runs: Sequence[SymbolRun], account: _Account, result: BacktestResult, tick: _Throttle
) -> None:
    strategies = [PairStrategy(r.spec.symbol, r.series.timeframe, r.params) for r in runs]
    times = np.unique(np.concatenate([r.series.open_time for r in runs]))
    cursor = [0] * len(runs)
    for t in times.tolist():
        tick(t)
        present = []
        for order, run in enumerate(runs):
            i = cursor[order]
            if i < len(run.series) and int(run.series.open_time[i]) == t:
                present.append((order, i))
                cursor[order] = i + 1
        for order, i in present:
            run = runs[order]
            pos = account.positions.get(run.spec.symbol)
            if pos is not None and pos.decided_ms < t:
                hit = _exit_at(run, pos, i)
                if hit is not None:
                    account.close(run, t, hit[0], hit[1])
        for order, i in present:
            run = runs[order]
            decision = strategies[order].on_closed_kline(
                run.series.kline(i),
                position_open=run.spec.symbol in account.positions,
                open_positions=len(account.positions),
            )
            if decision is None:
                continue
            result.decisions.append(decision)
            if decision.taken and not account.open(run, decision, t):
                strategies[order].record_rejection(decision)


def run_backtest(
    runs: Sequence[SymbolRun],
    settings: AccountSettings,
    *,
    engine: str = "batch",
    clock: Callable[[], float] = time.perf_counter,
    progress: Progress | None = None,
) -> BacktestResult:
    """Simulate the strategy over ``runs`` sharing one account; ``engine`` is ``batch`` or ``incremental``."""
    result = BacktestResult(
        engine=engine, klines=sum(len(r.series) for r in runs), symbols=tuple(r.spec.symbol for r in runs)
    )
    started = clock()
    account = _Account(runs, settings, result)
    tick = _Throttle(progress, *_span(runs))
    if engine == "batch":
        _run_batch(runs, account, result, tick)
    elif engine == "incremental":
        _run_incremental(runs, account, result, tick)
    else:
        raise ValueError(f"unknown engine {engine!r}: expected 'batch' or 'incremental'")
    if progress is not None:
        progress(1.0)
    result.open_positions = account.still_open(runs)
    result.final_balances = {a: float(v) for a, v in account.wallet.items()}
    result.engine_seconds = clock() - started
    result.equity = equity_of(result, runs)
    return result


def equity_of(result: BacktestResult, runs: Sequence[SymbolRun]) -> EquityCurve:
    """The result's equity at every candle close of ``runs`` (``equity.mark_to_market``)."""
    coin = ContractType.COIN_M
    sizes = {r.spec.symbol: r.spec.contract_size if r.spec.contract_type is coin else None for r in runs}
    candles = {
        r.spec.symbol: Candles(r.series.open_time, r.series.close, TIMEFRAME_MS[r.series.timeframe])
        for r in runs
        if len(r.series)
    }
    coins = {r.spec.margin_asset: r.spec.symbol for r in runs if r.spec.contract_type is coin}
    return mark_to_market(holdings(result, sizes), candles, result.initial_balances, coins)
