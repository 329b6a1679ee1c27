"""`nancemakina backtest` with V2 as a user runs it: a config choosing V2, the funding archive given or not.

The funding file is SYNTHETIC (``tests/funding_support.py``: Binance's archive layout, made-up rates).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

from tests.funding_support import write_synthetic_funding

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
V2_CONFIG = {
    "global_settings": {
        "strategy": "v2",
        "filters": {"btc_correlation_filter_enabled": True, "max_funding_rate_threshold": 0.0001},
        "exit_strategies": {"trailing_stop_enabled": True, "reversal_exit_enabled": True},
    },
    "pairs": {"BTC_USDT": {}, "ETH_USDT": {}},
}


def nancemakina(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).with_name("nancemakina")), *args]
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(cwd)}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, env=env, check=False)


def test_v2_backtest_with_the_funding_archive(tmp_path: Path) -> None:
    config = tmp_path / "v2.yaml"
    config.write_text(yaml.safe_dump(V2_CONFIG), encoding="utf-8")
    data = ["--data", str(BTC), "--data", str(ETH), "--config", str(config), "--no-plot"]
    refused = nancemakina("backtest", *data, "--out", str(tmp_path / "no"), cwd=tmp_path)
    assert refused.returncode == 2
    assert (
        "BTCUSDT: max_funding_rate_threshold is set but no funding-rate file was given for it"
        in refused.stderr
    )
    funding = [f"--funding={write_synthetic_funding(tmp_path, s)}" for s in ("BTCUSDT", "ETHUSDT")]
    out = tmp_path / "out"
    proc = nancemakina("backtest", *data, *funding, "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for reason in ("taken", "trend_filter", "btc_filter", "stoch_rsi_filter", "funding_filter"):
        assert summary["decisions_by_reason"][reason] > 0, summary["decisions_by_reason"]
    with (out / "trades.csv").open(encoding="utf-8") as fh:
        exits = Counter(row["exit_reason"] for row in csv.DictReader(fh))
    assert exits["trailing_stop"] > 0
    assert exits["reversal"] > 0
    assert summary["exits_by_reason"] == dict(exits)
