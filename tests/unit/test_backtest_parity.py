"""The batch backtest driver equals the live code path, and crossovers equal an independent pandas reference."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nancemakina.actors.backtest.engine import AccountSettings, SymbolRun, run_backtest
from nancemakina.actors.backtest.kline_files import KlineSeries, load_klines
from nancemakina.actors.backtest.report_files import closed_trades, decision_row, trade_row
from nancemakina.actors.backtest.results import BacktestResult
from nancemakina.actors.domain.model import ContractType, Direction
from nancemakina.actors.domain.strategy import StrategyParams
from nancemakina.actors.exchange.instruments import spec_for

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"


@pytest.fixture(scope="module")
def btc() -> KlineSeries:
    return load_klines(BTC)


@pytest.fixture(scope="module")
def eth() -> KlineSeries:
    return load_klines(ETH)


def pandas_crossovers(path: Path, short: int, long: int) -> list[tuple[int, str]]:
    """Independent reference: pandas rolling means; a tie is on neither side."""
    df = pd.read_csv(path)
    diff = df["close"].rolling(short).mean() - df["close"].rolling(long).mean()
    side = np.sign(diff).fillna(0)
    last = side.replace(0, np.nan).ffill().shift(1).fillna(0)
    hits = df[(side != 0) & (last != 0) & (side != last)]
    return [
        (int(t), "LONG" if s > 0 else "SHORT")
        for t, s in zip(hits["open_time_ms"], side[hits.index], strict=True)
    ]


def trade_rows(result: BacktestResult) -> list[list[str]]:
    return [trade_row(t, balance) for t, balance in closed_trades(result)]


def run_for(series: KlineSeries, params: StrategyParams, **kw: object) -> SymbolRun:
    contract = ContractType.COIN_M if series.symbol.endswith("_PERP") else ContractType.USDT_M
    base: dict[str, object] = {
        "series": series,
        "spec": spec_for(series.symbol, contract, series.close[:100].tolist()),
        "params": params,
        "leverage": 10,
        "fixed_margin": 50.0 if contract is ContractType.USDT_M else 0.01,
        "dynamic_sizing": False,
        "risk_percent": 1.0,
    }
    base.update(kw)
    return SymbolRun(**base)  # type: ignore[arg-type]


def test_crossovers_equal_pandas_reference_exactly(btc: KlineSeries) -> None:
    params = StrategyParams(min_interval_ms=0)
    result = run_backtest([run_for(btc, params)], AccountSettings())
    ours = [(d.signal_open_time_ms, d.direction.value) for d in result.decisions]
    reference = pandas_crossovers(BTC, 21, 200)
    assert len(reference) > 300
    assert ours == reference


@pytest.mark.parametrize(
    "params",
    [
        StrategyParams(),
        StrategyParams(buffer_candles=3, min_interval_ms=60 * 60_000, pivot_lookback=10),
        StrategyParams(volume_filter=True, volume_ratio=1.0, volatility_filter=True, bb_min_width_pct=0.15),
        StrategyParams(short_period=9, long_period=50, buffer_candles=1, max_concurrent=1, tp_sl_ratio=1.5),
    ],
    ids=["defaults", "buffer-interval", "filters", "fast-max1"],
)
def test_batch_driver_equals_incremental_driver(
    btc: KlineSeries, eth: KlineSeries, params: StrategyParams
) -> None:
    runs = [run_for(btc, params), run_for(eth, params, dynamic_sizing=True)]
    batch = run_backtest(runs, AccountSettings(), engine="batch")
    incremental = run_backtest(runs, AccountSettings(), engine="incremental")
    assert [decision_row(d) for d in batch.decisions] == [decision_row(d) for d in incremental.decisions]
    assert trade_rows(batch) == trade_rows(incremental)
    assert batch.open_positions == incremental.open_positions
    assert batch.final_balances == incremental.final_balances
    assert len(batch.trades) > 0


def test_coin_m_parity_and_inverse_pnl(btc: KlineSeries) -> None:
    coin = dataclasses.replace(btc, symbol="BTCUSD_PERP")
    runs = [run_for(coin, StrategyParams())]
    settings = AccountSettings(initial_balance_coin=(("BTC", 0.5),))
    batch = run_backtest(runs, settings, engine="batch")
    incremental = run_backtest(runs, settings, engine="incremental")
    assert trade_rows(batch) == trade_rows(incremental)
    assert batch.initial_balances == {"BTC": 0.5}
    t = batch.trades[0]
    assert t.margin_asset == "BTC"
    assert t.quantity == t.quantity.to_integral_value()  # whole contracts
    expected = t.direction.sign * float(t.quantity) * 100 * (1 / t.entry_price - 1 / t.exit_price)
    assert t.pnl == pytest.approx(expected, abs=5e-9)  # booked to 8 decimal places, as the exchange does


def test_max_concurrent_is_shared_across_symbols(btc: KlineSeries, eth: KlineSeries) -> None:
    params = StrategyParams(max_concurrent=1)
    result = run_backtest([run_for(btc, params), run_for(eth, params)], AccountSettings())
    reasons = {d.reason.value for d in result.decisions if d.reason is not None}
    assert "max_concurrent" in reasons
    spans = sorted((t.entry_time_ms, t.exit_time_ms) for t in result.trades)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # never two positions at once


def test_exits_respect_levels_and_positions_open_at_the_end_stay_open(btc: KlineSeries) -> None:
    result = run_backtest([run_for(btc, StrategyParams())], AccountSettings(slippage_pct=0.0))
    for t in result.trades:
        if t.exit_reason == "stop_loss":
            worse_or_equal = (
                t.exit_price <= t.stop_loss if t.direction is Direction.LONG else t.exit_price >= t.stop_loss
            )
            assert worse_or_equal
        elif t.exit_reason == "take_profit":
            assert t.exit_price == t.take_profit
    short = dataclasses.replace(
        btc,
        open_time=btc.open_time[:1500],
        open=btc.open[:1500],
        high=btc.high[:1500],
        low=btc.low[:1500],
        close=btc.close[:1500],
        volume=btc.volume[:1500],
    )
    tail = run_backtest([run_for(short, StrategyParams(tp_sl_ratio=50.0))], AccountSettings())
    assert {t.exit_reason for t in tail.trades} <= {"stop_loss", "take_profit"}  # no invented exit
    [still] = tail.open_positions
    assert still.entry_time_ms > tail.trades[-1].exit_time_ms if tail.trades else True
    assert tail.equity is not None
    assert tail.equity.last_marks["BTCUSDT"] == float(short.close[-1])
    wallet = tail.final_balances["USDT"]
    assert tail.equity.by_asset["USDT"][-1] == pytest.approx(
        wallet + still.unrealized(float(short.close[-1]))
    )


def test_fees_and_balance_accounting(btc: KlineSeries) -> None:
    result = run_backtest([run_for(btc, StrategyParams())], AccountSettings(fee_pct=0.05))
    total = sum(t.net_pnl for t in result.trades) - sum(p.entry_fee for p in result.open_positions)
    assert result.final_balances["USDT"] == pytest.approx(10_000.0 + total)
    assert all(t.fees > 0 for t in result.trades)
    *_, (_, balance) = closed_trades(result)
    assert float(balance) == pytest.approx(10_000.0 + sum(t.net_pnl for t in result.trades))


def test_the_equity_is_marked_to_market_at_every_candle_close(btc: KlineSeries) -> None:
    result = run_backtest([run_for(btc, StrategyParams())], AccountSettings())
    curve = result.equity
    assert curve is not None
    assert list(curve.times) == [int(t) + 60_000 for t in btc.open_time]  # each candle's close
    t = result.trades[0]
    inside = int(np.searchsorted(curve.times, t.entry_time_ms))  # the deciding candle's close
    assert curve.times[inside] == t.entry_time_ms
    close = float(btc.close[inside])
    held = t.direction.sign * float(t.quantity) * (close - t.entry_price)
    assert curve.by_asset["USDT"][inside] == pytest.approx(10_000.0 - t.entry_fee + held)
    after = int(np.searchsorted(curve.times, t.exit_time_ms, side="right"))  # the exit candle's close
    assert curve.by_asset["USDT"][after] == pytest.approx(10_000.0 + t.net_pnl)
    assert curve.by_asset["USDT"][0] == 10_000.0
