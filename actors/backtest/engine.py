"""Backtest engine: either strategy over recorded klines, with one shared account and the shared fill rules.

Two interchangeable drivers produce the same decisions and trades:

- ``batch`` (default, ``batch.py``): the strategies' vectorised twins find every crossover with numpy, then
  only decisions and exits are visited in time order. Hundreds of thousands of klines per second.
- ``incremental`` (``incremental.py``): every candle goes through ``PairDecider`` exactly as in the live
  pair actor. Slow; used to prove the batch driver equal to the live code.

Per timestamp, every symbol's path exits (stop, take-profit, trailing stop) are settled before any
decision (the local exchange walks all symbols' candle paths before it closes the candles); then each
symbol, in the order given, has its close-time exit (time, reversal) and its decision. Positions still
open when the data ends are listed (``BacktestResult.open_positions``), never given an invented exit; the
equity is marked at every candle close (``equity.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..domain.model import TIMEFRAME_MS, ContractType
from ..domain.strategy_v2 import V2Params
from ..domain.v2_scan import TrendSeries, trend_series
from .account import Account, AccountSettings, SymbolRun
from .batch import run_batch
from .equity import Candles, EquityCurve, mark_to_market
from .incremental import run_incremental
from .progress import Progress, Throttle, span
from .results import BacktestResult, Rejection, Trade, holdings

__all__ = [
    "AccountSettings",
    "BacktestResult",
    "BacktestSetupError",
    "Rejection",
    "SymbolRun",
    "Trade",
    "check_runs",
    "run_backtest",
]


class BacktestSetupError(ValueError):
    """The runs cannot be backtested as configured (a filter lacks data); its message says what to add."""


def btc_sources(runs: Sequence[SymbolRun]) -> list[int | None]:
    """Per run, the index of the run whose symbol is its BTC reference (None when not filtered by one).

    Raises ``BacktestSetupError`` when a filtered run's reference symbol has no data among the runs.
    """
    by_symbol = {r.spec.symbol: k for k, r in enumerate(runs)}
    sources: list[int | None] = []
    for run in runs:
        params = run.params
        if not isinstance(params, V2Params) or params.btc_filter is None:
            sources.append(None)
            continue
        ref = params.btc_filter.symbol
        if ref == run.spec.symbol:
            sources.append(None)
            continue
        if ref not in by_symbol:
            raise BacktestSetupError(
                f"{run.spec.symbol}: the BTC correlation filter follows {ref}, but no {ref} data was given; "
                f"add --data {ref}=FILE (its {params.btc_filter.timeframe} trend is built from its candles)"
            )
        sources.append(by_symbol[ref])
    return sources


def check_funding(runs: Sequence[SymbolRun]) -> None:
    """Refuse a funding filter without its symbol's funding history (``BacktestSetupError``)."""
    for run in runs:
        params = run.params
        if isinstance(params, V2Params) and params.max_funding_rate is not None and run.funding is None:
            symbol = run.spec.symbol
            raise BacktestSetupError(
                f"{symbol}: max_funding_rate_threshold is set but no funding-rate file was given for it; add "
                f"--funding {symbol}=FILE (or replay.funding_rates), a CSV or zip from Binance's archive "
                f"data.binance.vision/data/futures/um/monthly/fundingRate/{symbol}/"
            )


def check_runs(runs: Sequence[SymbolRun]) -> None:
    """Raise ``BacktestSetupError`` when a filter lacks its data (``run_backtest`` checks this first)."""
    btc_sources(runs)
    check_funding(runs)


def _btc_trends(runs: Sequence[SymbolRun], sources: Sequence[int | None]) -> list[TrendSeries | None]:
    trends: list[TrendSeries | None] = []
    for run, source in zip(runs, sources, strict=True):
        params = run.params
        if source is None or not isinstance(params, V2Params) or params.btc_filter is None:
            trends.append(None)
            continue
        ref = runs[source].series
        trends.append(
            trend_series(
                ref.open_time,
                ref.close,
                signal_timeframe=ref.timeframe,
                timeframe=params.btc_filter.timeframe,
                period=params.btc_filter.ema_period,
            )
        )
    return trends


def run_backtest(
    runs: Sequence[SymbolRun],
    settings: AccountSettings,
    *,
    engine: str = "batch",
    clock: Callable[[], float] = time.perf_counter,
    progress: Progress | None = None,
) -> BacktestResult:
    """Simulate the strategies over ``runs`` on one account (``engine``: ``batch`` or ``incremental``)."""
    if engine not in {"batch", "incremental"}:
        raise ValueError(f"unknown engine {engine!r}: expected 'batch' or 'incremental'")
    sources = btc_sources(runs)
    check_funding(runs)
    result = BacktestResult(
        engine=engine, klines=sum(len(r.series) for r in runs), symbols=tuple(r.spec.symbol for r in runs)
    )
    started = clock()
    account = Account(runs, settings, result)
    tick = Throttle(progress, *span(runs))
    if engine == "batch":
        run_batch(runs, account, result, tick, _btc_trends(runs, sources))
    else:
        run_incremental(runs, account, result, tick, sources)
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
