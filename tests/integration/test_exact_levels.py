"""The take-profit that lies exactly on the tick is placed there, by the backtest and by the whole bot.

SOLUSDT-like candles (tick 0.01) whose crossover on the signal candle 1748193600000 enters at 170.51 with
the pivot low 169.97 below it: take-profit = 170.51 + 3 × 0.54 = 172.13. In binary floating point that
sum is 172.12999999999997, which rounding toward the losing side used to take to 172.12.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

from nancemakina.actors.cli.main import main
from tests.integration.system_support import Cleanup, bot_config, ledger, load, local_exchange, save_config

SIGNAL_MS = 1748193600000
MINUTE_MS = 60_000


def sol_candles(path: Path) -> Path:
    """34 falling closes down to 170.00 (low 169.97 on the last), the signal candle closing at 170.51,
    then five quiet candles that reach neither the stop nor the take-profit."""
    rows = []
    closes = [170.0 + 0.1 * k for k in range(33, -1, -1)]
    previous = closes[0] + 0.1
    for i, close in enumerate(closes):
        t = SIGNAL_MS - (len(closes) - i) * MINUTE_MS
        rows.append((t, previous, previous + 0.02, close - 0.03, close))
        previous = close
    rows.append((SIGNAL_MS, 170.0, 170.55, 169.99, 170.51))
    previous = 170.51
    for k in range(1, 6):
        close = 170.51 + 0.05 * k
        rows.append((SIGNAL_MS + k * MINUTE_MS, previous, close + 0.02, previous - 0.02, close))
        previous = close
    lines = ["open_time_ms,open,high,low,close,volume"]
    lines += [f"{t},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},10.0" for t, o, h, lo, c in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sol_config(tmp_path: Path) -> Path:
    data = sol_candles(tmp_path / "SOLUSDT_PERP_1m_exact.csv")
    config = bot_config(tmp_path, [data], pairs=("SOL_USDT",), short=2, long=3)
    config["global_settings"]["v1_strategy"] |= {"pivot_lookback_candles": 3, "tp_sl_ratio": 3.0}
    return save_config(tmp_path / "config.yaml", config)


def test_backtest_decides_and_places_the_take_profit_on_its_tick(tmp_path: Path) -> None:
    path = sol_config(tmp_path)
    out = tmp_path / "bt"
    assert main(["backtest", "--config", str(path), "--out", str(out), "--no-plot"]) == 0
    [decision] = [r for r in csv.DictReader((out / "decisions.csv").open()) if r["decision"] == "taken"]
    assert (decision["open_time_ms"], decision["entry"], decision["stop_loss"]) == (
        str(SIGNAL_MS),
        "170.51",
        "169.97",
    )
    assert decision["take_profit"] == "172.13"
    [held] = json.loads((out / "summary.json").read_text())["still_open"]  # the data ends before any exit
    assert (held["stop_loss"], held["take_profit"]) == (169.97, 172.13)


def test_the_bot_places_the_take_profit_on_its_tick(tmp_path: Path, cleanup: Cleanup) -> None:
    config = load(sol_config(tmp_path))
    daemon = cleanup.daemon(config)
    daemon.start()
    book = local_exchange(daemon).engine
    assert daemon.wait() == 0
    with ledger(config.state_path()) as store:
        legs = {o.leg: o for o in store.orders(symbol="SOLUSDT")}
        [position] = store.open_positions()
    assert (legs["S"].price, legs["T"].price) == (169.97, 172.13)
    assert (position.stop_loss, position.take_profit) == (169.97, 172.13)
    placed = {o.client_algo_id[-1]: o.trigger for o in book.open_algos("SOLUSDT")}
    assert placed == {"S": Decimal("169.97"), "T": Decimal("172.13")}
