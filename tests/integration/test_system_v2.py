"""V2 through the whole actor system: a replay decides exactly what the backtester decides, and its exits
(trailing stop, time, reversal — a reversal flipping the position at once) show in the report and the
metrics.

The replay runs the bundled BTC and ETH data at ``max`` in lock-step; the trend timeframes' actors tell the
deciding actors their trends (``TrendUpdated``), BTCUSDT's 15m actor tells ETHUSDT's (the BTC filter); the
local exchange serves SYNTHETIC funding rates (``tests/funding_support.py``: the archive's layout, made-up
rates) as ``premiumIndex``, and the backtest reads the same files.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

from nancemakina.actors.cli.main import main
from tests.funding_support import write_synthetic_funding
from tests.integration.system_support import Cleanup, SliceMaker, bot_config, load, save_config


def v2_config(tmp: Path, data: list[Path]) -> dict[str, Any]:
    """ETHUSDT with every V2 filter and every exit; BTCUSDT (the reference) without trend or StochRSI
    filters, so that its reversal crossovers are taken and flip its position."""
    bare = {"trend_timeframes": [], "stoch_rsi_enabled": False}
    cfg = bot_config(tmp, data, timeframes=("1m", "5m", "15m"), pair_overrides={"BTC_USDT": bare})
    cfg["replay"]["funding_rates"] = [str(write_synthetic_funding(tmp, s)) for s in ("BTCUSDT", "ETHUSDT")]
    gs = cfg["global_settings"]
    gs["strategy"] = "v2"
    gs["v2_strategy"] = {"trend_timeframes": ["5m", "15m"], "trend_ema_period": 20}
    gs["filters"] = {
        "btc_correlation_filter_enabled": True,
        "btc_correlation_ema_period": 20,
        "max_funding_rate_threshold": 0.00015,
    }
    gs["exit_strategies"] = {
        "trailing_stop_enabled": True,
        "trailing_callback_rate_pct": 0.1,
        "trailing_activation_risk_ratio": 0.5,
        "time_based_exit_enabled": True,
        "max_trade_duration_candles": 20,
        "reversal_exit_enabled": True,
    }
    return cfg


def trades(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_v2_replay_equals_backtest_with_every_exit_and_filter(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(3000)
    path = save_config(tmp_path / "config.yaml", v2_config(tmp_path, [data.btc, data.eth]))
    daemon = cleanup.daemon(load(path))
    daemon.start()
    assert daemon.wait() == 0
    metrics = daemon.access.telemetry.metrics.exposition().decode()
    assert main(["report", "--config", str(path), "--out", str(tmp_path / "report")]) == 0
    assert main(["backtest", "--config", str(path), "--out", str(tmp_path / "backtest"), "--no-plot"]) == 0

    replayed = (tmp_path / "report" / "decisions.csv").read_bytes()
    backtested = (tmp_path / "backtest" / "decisions.csv").read_bytes()
    assert replayed == backtested
    rows = list(csv.DictReader((tmp_path / "backtest" / "decisions.csv").open(encoding="utf-8")))
    reasons = Counter(r["reason"] or "taken" for r in rows)
    for reason in ("taken", "trend_filter", "btc_filter", "funding_filter"):
        assert reasons[reason] > 0, reasons

    # The same trades, to the byte (times, prices, quantities, exit reasons, PnL, fees, balances).
    assert (tmp_path / "report" / "trades.csv").read_bytes() == (
        tmp_path / "backtest" / "trades.csv"
    ).read_bytes()
    ours, theirs = trades(tmp_path / "report" / "trades.csv"), trades(tmp_path / "backtest" / "trades.csv")
    report, backtest = (
        json.loads((tmp_path / d / "summary.json").read_text()) for d in ("report", "backtest")
    )
    same = ("trades", "open_positions", "still_open", "net_pnl", "fees", "return_pct", "exits_by_reason")
    assert {k: report[k] for k in same} == {k: backtest[k] for k in same}

    exits = Counter(t["exit_reason"] for t in ours)
    for reason in ("trailing_stop", "time_exit", "reversal"):
        assert exits[reason] > 0, exits
        assert report["exits_by_reason"][reason] == exits[reason]
    for reason in ("trailing_stop", "time_exit", "reversal"):
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("nancemakina_trades_closed_total{") and f'reason="{reason}"' in line
        )
        assert counted == exits[reason], reason
    entries = {(t["symbol"], t["entry_time_ms"], t["direction"]) for t in theirs}
    flips = [
        t
        for t in theirs
        if t["exit_reason"] == "reversal"
        and (t["symbol"], t["exit_time_ms"], "SHORT" if t["direction"] == "LONG" else "LONG") in entries
    ]
    assert flips, "a reversal that opened the opposite position at the same close"
