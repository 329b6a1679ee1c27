"""V2 and the exits: the batch driver equals the live code path (the incremental driver), with every option on.

Both bundled months (BTC and ETH, sharing one account), USDⓈ-M and COIN-M, both stop modes; the funding
filter reads SYNTHETIC funding rates (``tests/funding_support.py``: the archive's layout, made-up rates).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from nancemakina.actors.backtest.engine import (
    AccountSettings,
    BacktestResult,
    BacktestSetupError,
    SymbolRun,
    run_backtest,
)
from nancemakina.actors.backtest.funding_files import load_funding
from nancemakina.actors.backtest.kline_files import KlineSeries, load_klines
from nancemakina.actors.backtest.report_files import closed_trades, decision_row, trade_row
from nancemakina.actors.domain.exits import ExitParams
from nancemakina.actors.domain.funding import FundingHistory
from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.domain.strategies import AnyParams
from nancemakina.actors.domain.strategy import StrategyParams
from nancemakina.actors.domain.strategy_v2 import BtcFilter, StopMode, V2Params
from nancemakina.actors.exchange.instruments import spec_for
from tests.funding_support import write_synthetic_funding

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
EVERY_EXIT = ExitParams(callback_pct=0.2, activation_ratio=1.0, time_exit_candles=45, reversal_exit=True)


@pytest.fixture(scope="module")
def months() -> dict[str, KlineSeries]:
    btc, eth = load_klines(BTC), load_klines(ETH)
    return {
        "BTCUSDT": btc,
        "ETHUSDT": eth,
        "BTCUSD_PERP": dataclasses.replace(btc, symbol="BTCUSD_PERP"),
        "ETHUSD_PERP": dataclasses.replace(eth, symbol="ETHUSD_PERP"),
    }


@pytest.fixture(scope="module")
def synthetic_funding(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FundingHistory]:
    """SYNTHETIC funding histories (made-up rates in the archive's format) for every symbol here."""
    folder = tmp_path_factory.mktemp("synthetic-funding")
    symbols = ("BTCUSDT", "ETHUSDT", "BTCUSD_PERP", "ETHUSD_PERP")
    return {s: load_funding(s, [write_synthetic_funding(folder, s)]) for s in symbols}


def every_option(btc: str, **changes: object) -> V2Params:
    """V2 with every filter and rule on (fast EMAs so a month gives hundreds of trades)."""
    base = V2Params(
        ema_fast=9,
        ema_slow=21,
        trend_timeframes=("5m", "15m"),
        trend_ema=20,
        min_interval_ms=10 * 60_000,
        max_concurrent=1,
        btc_filter=BtcFilter(symbol=btc, timeframe="15m", ema_period=20),
        max_funding_rate=0.0001,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def run_for(
    series: KlineSeries, params: AnyParams, funding: dict[str, FundingHistory] | None, **kw: object
) -> SymbolRun:
    contract = ContractType.COIN_M if series.symbol.endswith("_PERP") else ContractType.USDT_M
    base: dict[str, object] = {
        "series": series,
        "spec": spec_for(series.symbol, contract, series.close[:100].tolist()),
        "params": params,
        "leverage": 10,
        "fixed_margin": 50.0 if contract is ContractType.USDT_M else 0.01,
        "dynamic_sizing": False,
        "risk_percent": 1.0,
        "exits": EVERY_EXIT,
        "funding": None if funding is None else funding.get(series.symbol),
    }
    base.update(kw)
    return SymbolRun(**base)  # type: ignore[arg-type]


def trade_rows(result: BacktestResult) -> list[list[str]]:
    return [trade_row(t, balance) for t, balance in closed_trades(result)]


def assert_same(runs: list[SymbolRun], settings: AccountSettings) -> BacktestResult:
    batch = run_backtest(runs, settings, engine="batch")
    incremental = run_backtest(runs, settings, engine="incremental")
    assert [decision_row(d) for d in batch.decisions] == [decision_row(d) for d in incremental.decisions]
    assert trade_rows(batch) == trade_rows(incremental)
    assert batch.open_positions == incremental.open_positions
    assert batch.final_balances == incremental.final_balances
    return batch


@pytest.mark.parametrize("stop_mode", [StopMode.ATR, StopMode.PIVOT])
def test_v2_every_option_both_months_usdt_m(
    months: dict[str, KlineSeries], synthetic_funding: dict[str, FundingHistory], stop_mode: StopMode
) -> None:
    params = every_option("BTCUSDT", stop_mode=stop_mode)
    runs = [
        run_for(months["BTCUSDT"], params, synthetic_funding),
        run_for(months["ETHUSDT"], params, synthetic_funding, dynamic_sizing=True),
    ]
    result = assert_same(runs, AccountSettings())
    reasons = Counter(d.reason.value if d.reason else "taken" for d in result.decisions)
    for reason in (
        "taken",
        "trend_filter",
        "btc_filter",
        "stoch_rsi_filter",
        "funding_filter",
        "max_concurrent",
    ):
        assert reasons[reason] > 0, reasons
    exits = Counter(t.exit_reason.value for t in result.trades)
    for reason in ("stop_loss", "trailing_stop", "time_exit", "reversal"):
        assert exits[reason] > 0, exits


def test_v2_every_option_coin_m(
    months: dict[str, KlineSeries], synthetic_funding: dict[str, FundingHistory]
) -> None:
    params = every_option("BTCUSD_PERP", max_concurrent=None)
    runs = [
        run_for(months["BTCUSD_PERP"], params, synthetic_funding),
        run_for(months["ETHUSD_PERP"], params, synthetic_funding),
    ]
    result = assert_same(runs, AccountSettings(initial_balance_coin=(("BTC", 0.5), ("ETH", 10.0))))
    assert {t.margin_asset for t in result.trades} == {"BTC", "ETH"}
    assert Counter(d.reason.value for d in result.decisions if d.reason)["btc_filter"] > 0


def test_v1_with_every_exit(months: dict[str, KlineSeries]) -> None:
    params = StrategyParams(buffer_candles=2, min_interval_ms=0, max_concurrent=1)
    runs = [run_for(months["BTCUSDT"], params, None), run_for(months["ETHUSDT"], params, None)]
    result = assert_same(runs, AccountSettings())
    exits = Counter(t.exit_reason.value for t in result.trades)
    assert {"trailing_stop", "time_exit", "reversal", "stop_loss"} <= set(exits), exits


def test_missing_filter_data_is_refused(months: dict[str, KlineSeries]) -> None:
    eth_only = [run_for(months["ETHUSDT"], every_option("BTCUSDT", max_funding_rate=None), None)]
    with pytest.raises(BacktestSetupError, match=r"ETHUSDT: the BTC correlation filter follows BTCUSDT"):
        run_backtest(eth_only, AccountSettings())
    no_funding = [run_for(months["BTCUSDT"], every_option("BTCUSDT"), None)]
    with pytest.raises(
        BacktestSetupError, match=r"BTCUSDT: max_funding_rate_threshold is set but no funding"
    ):
        run_backtest(no_funding, AccountSettings())
