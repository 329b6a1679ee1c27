"""Replay parity: the whole bot replaying BTC+ETH decides exactly what the backtester decides.

``nancemakina run`` (replay at ``max``, lock-step, ``exit_at_end``) then ``nancemakina report`` must write a
decisions.csv and a trades.csv byte-equal to ``nancemakina backtest``'s on the same data and config, and the
same summary numbers (open positions, PnL, fees, return and drawdown marked at every candle close).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from nancemakina.actors.cli.main import main
from tests.integration.system_support import (
    Cleanup,
    SliceMaker,
    bot_config,
    ledger,
    load,
    save_config,
)


def test_report_decisions_equal_backtest_decisions(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(3000)
    path = save_config(
        tmp_path / "config.yaml", bot_config(tmp_path, [data.btc, data.eth], timeframes=("1m", "5m"))
    )
    config = load(path)
    daemon = cleanup.daemon(config)
    daemon.start()
    assert daemon.wait() == 0
    status = daemon.pair_board.statuses
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert status[(symbol, "1m")].strategy.candles == data.rows  # every candle, once
        assert status[(symbol, "1m")].strategy.last_open_time_ms == data.last_open

    assert main(["report", "--config", str(path), "--out", str(tmp_path / "report")]) == 0
    assert main(["backtest", "--config", str(path), "--out", str(tmp_path / "backtest"), "--no-plot"]) == 0

    replayed = (tmp_path / "report" / "decisions.csv").read_bytes()
    backtested = (tmp_path / "backtest" / "decisions.csv").read_bytes()
    rows = list(csv.DictReader((tmp_path / "backtest" / "decisions.csv").open()))
    taken = [r for r in rows if r["decision"] == "taken"]
    assert {r["symbol"] for r in taken} == {"BTCUSDT", "ETHUSDT"}
    assert {r["direction"] for r in taken} == {"LONG", "SHORT"}
    assert len(taken) >= 20
    assert replayed == backtested
    with ledger(config.state_path()) as store:
        assert len(store.trades()) >= len(taken) - 2  # every taken decision traded (two may still be open)
    # The same trades, to the byte: times, prices, fees and balances mean the same in both reports.
    assert (tmp_path / "report" / "trades.csv").read_bytes() == (
        tmp_path / "backtest" / "trades.csv"
    ).read_bytes()
    report, backtest = (
        json.loads((tmp_path / d / "summary.json").read_text()) for d in ("report", "backtest")
    )
    same = ("trades", "open_positions", "still_open", "net_pnl", "fees", "return_pct", "max_drawdown_pct",
            "balances", "klines", "exits_by_reason", "currency")  # fmt: skip
    assert {k: report[k] for k in same} == {k: backtest[k] for k in same}
