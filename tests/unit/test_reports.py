"""Reports a trader can hold side by side: exact money, open positions listed, COIN-M in the coin, the chart's
title, and an honest note when the ledger's equity cannot be marked at every candle close."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path

import pytest

from nancemakina.actors.backtest.engine import AccountSettings, SymbolRun, run_backtest
from nancemakina.actors.backtest.kline_files import KlineSeries, load_klines
from nancemakina.actors.backtest.report_files import chart_title, closed_trades, summarize, trade_row
from nancemakina.actors.cli.report import result_from_ledger
from nancemakina.actors.config import parse_config
from nancemakina.actors.domain.model import ContractType, Direction
from nancemakina.actors.domain.strategy import StrategyParams
from nancemakina.actors.exchange.instruments import spec_for
from nancemakina.actors.tree.ledger.ledger_records import PositionRecord
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
MONEY = re.compile(r"^-?\d+(\.\d{1,8})?$")


@pytest.fixture(scope="module")
def btc() -> KlineSeries:
    return load_klines(BTC)


def run(series: KlineSeries, contract: ContractType, margin: float) -> SymbolRun:
    return SymbolRun(
        series=series, spec=spec_for(series.symbol, contract, series.close[:100].tolist()),
        params=StrategyParams(), leverage=10, fixed_margin=margin, dynamic_sizing=False, risk_percent=1.0,
    )  # fmt: skip


def test_money_has_at_most_eight_places_and_prices_are_the_exact_decimals(btc: KlineSeries) -> None:
    result = run_backtest([run(btc, ContractType.USDT_M, 50.0)], AccountSettings())
    columns = ("pnl", "fees", "net_pnl", "balance_after")
    for trade, balance in closed_trades(result):
        row = dict(zip(("symbol", "direction", "signal", "entry_time", "entry_price", "quantity", "stop_loss",
                        "take_profit", "exit_time", "exit_price", "exit_reason", "asset", *columns),
                       trade_row(trade, balance), strict=True))  # fmt: skip
        assert all(MONEY.match(row[c]) for c in columns), row
        assert Decimal(row["net_pnl"]) == Decimal(row["pnl"]) - Decimal(row["fees"])
        for price in ("entry_price", "stop_loss", "take_profit", "exit_price"):
            assert Decimal(row[price]) % Decimal("0.1") == 0, row  # on BTCUSDT's tick, written as such


def test_positions_open_at_the_end_are_listed_with_their_last_mark(btc: KlineSeries) -> None:
    result = run_backtest([run(btc, ContractType.USDT_M, 50.0)], AccountSettings())
    summary = summarize(result)
    [held] = summary["still_open"]
    assert summary["open_positions"] == 1
    assert held["mark"] == float(btc.close[-1])
    position = result.open_positions[0]
    assert held["unrealized_pnl"] == pytest.approx(position.unrealized(float(btc.close[-1])), abs=5e-9)
    usdt = summary["balances"]["USDT"]
    assert usdt["equity"] == pytest.approx(usdt["final"] + usdt["unrealized_pnl"])


def test_coin_m_results_are_in_the_coin_and_usd_is_a_labelled_second_view(btc: KlineSeries) -> None:
    coin = dataclasses.replace(btc, symbol="BTCUSD_PERP")
    result = run_backtest(
        [run(coin, ContractType.COIN_M, 0.01)], AccountSettings(initial_balance_coin=(("BTC", 0.5),))
    )
    summary = summarize(result)
    btc_view = summary["balances"]["BTC"]
    assert summary["currency"] == "BTC"
    assert (
        summary["return_pct"]
        == btc_view["return_pct"]
        == pytest.approx((btc_view["equity"] - 0.5) / 0.5 * 100, abs=1e-4)
    )
    assert summary["max_drawdown_pct"] == btc_view["max_drawdown_pct"]
    usd = summary["usd"]
    assert "COIN-M" in usd["valuation"]
    assert usd["return_pct"] != summary["return_pct"]  # the coin's price moved: two different views


def test_the_chart_title_names_what_ran_the_period_the_return_and_the_drawdown(btc: KlineSeries) -> None:
    result = run_backtest([run(btc, ContractType.USDT_M, 50.0)], AccountSettings())
    title = chart_title("nancemakina backtest", result, summarize(result))
    assert title.startswith("nancemakina backtest: BTCUSDT\n2025-05-25 ")
    assert "→ 2025-06-24 " in title
    assert re.search(r"return [+-]\d+\.\d\d%, max drawdown \d+\.\d\d% \(USDT\)$", title)


def test_a_ledger_report_without_candles_says_how_its_equity_is_marked(tmp_path: Path) -> None:
    config = parse_config({"api": {"mode": "paper"}, "state_dir": str(tmp_path)}, base_dir=tmp_path)
    db = tmp_path / "ledger.sqlite3"
    store = LedgerStore(db)
    common = {"direction": Direction.LONG, "qty": Decimal("0.004"), "contract_type": ContractType.USDT_M,
              "margin_asset": "USDT", "stop_loss": 99_000.0, "take_profit": 103_000.0}  # fmt: skip
    store.open_position(PositionRecord(symbol="BTCUSDT", entry_price=100_000.0, signal_open_time_ms=1,
                                       opened_at_ms=60_000, **common))  # fmt: skip
    store.close_position(
        "BTCUSDT", at_ms=180_000, exit_price=103_000.0, realized_pnl=12.0, reason="take_profit",
        fees=Decimal("0.32"),
    )  # fmt: skip
    store.open_position(PositionRecord(symbol="BTCUSDT", entry_price=104_000.0, signal_open_time_ms=2,
                                       opened_at_ms=240_000, **common))  # fmt: skip
    store.close()
    result = result_from_ledger(db, config)
    summary = summarize(result)
    assert summary["equity_marked"] == "at entries and exits only (no candles at hand)"
    assert summary["klines"] is None
    assert [t.exit_reason for t in result.trades] == ["take_profit"]
    [held] = summary["still_open"]
    assert (held["entry_price"], held["mark"], held["unrealized_pnl"]) == (104_000.0, None, None)
    [(_, balance)] = closed_trades(result)
    assert balance == Decimal("10011.68")  # 10,000 + 12 − 0.32
