"""`nancemakina backtest` as a user runs it: the installed console script, real files, real reports."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nancemakina.actors.backtest.report_files import PLOT_MISSING

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"


def nancemakina(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).with_name("nancemakina")), *args]
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(cwd)}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, env=env, check=False)


def test_backtest_bundled_file_writes_every_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = nancemakina("backtest", "--data", str(BTC), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "crossovers" in proc.stdout
    assert "klines/s" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "klines",
        "crossovers",
        "trades",
        "win_rate",
        "profit_factor",
        "max_drawdown_pct",
        "net_pnl",
        "fees",
        "return_pct",
        "klines_per_second",
    ):
        assert key in summary
    assert summary["klines"] == 43_199
    assert summary["symbols"] == ["BTCUSDT"]
    with (out / "decisions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == summary["crossovers"]
    assert set(rows[0]) >= {
        "open_time_ms",
        "symbol",
        "direction",
        "decision",
        "reason",
        "entry",
        "stop_loss",
        "take_profit",
    }
    assert {r["decision"] for r in rows} <= {"taken", "skipped"}
    assert all(r["reason"] for r in rows if r["decision"] == "skipped")
    with (out / "trades.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == summary["trades"]
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def without_matplotlib(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI where matplotlib (the optional `plot` extra) cannot be imported, as if not installed."""
    hide = "import sys; sys.modules['matplotlib'] = None; from nancemakina.actors.cli.main import main; sys.exit(main())"
    cmd = [sys.executable, "-c", hide, *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_without_matplotlib_every_other_report_is_written_and_the_skip_is_said(tmp_path: Path) -> None:
    day = tmp_path / BTC.name
    day.write_text("".join(BTC.read_text().splitlines(keepends=True)[:1500]))
    proc = without_matplotlib("backtest", "--data", str(day), "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (
        "equity.png skipped: matplotlib not installed (pip install 'nancemakina[plot]')"
        in proc.stdout.splitlines()
    )
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["skipped"] == {
        "equity.png": PLOT_MISSING
    }
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "decisions.csv",
        "summary.json",
        "trades.csv",
    ]

    asked = without_matplotlib("backtest", "--data", str(day), "--out", "asked", "--no-plot", cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    assert "skipped" not in asked.stdout
    assert "skipped" not in json.loads((tmp_path / "asked" / "summary.json").read_text())


def test_default_output_dir_and_two_symbols_share_one_account(tmp_path: Path) -> None:
    proc = nancemakina("backtest", "--data", f"BTCUSDT={BTC}", "--data", str(ETH), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [run_dir] = list((tmp_path / "backtest_results").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert list(summary["balances"]) == ["USDT"]


def test_binance_archive_format_without_header(tmp_path: Path) -> None:
    archive = tmp_path / "LINKUSDT-1m-2025-06.csv"
    with BTC.open() as src, archive.open("w") as dst:
        next(src)
        for line in src:
            t, o, h, low, c, v = line.strip().split(",")
            dst.write(f"{t},{o},{h},{low},{c},{v},{int(t) + 59_999},0,10,0,0,0\n")
    proc = nancemakina(
        "backtest", "--data", str(archive), "--out", str(tmp_path / "o"), "--no-plot", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["symbols"] == ["LINKUSDT"]
    assert summary["klines"] == 43_199


def test_bad_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "SOLUSDT_PERP_1m_bad.csv"
    lines = BTC.read_text().splitlines()[:300]
    lines[150] = lines[150].replace(",", ",x", 1)
    bad.write_text("\n".join(lines) + "\n")
    proc = nancemakina("backtest", "--data", str(bad), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{bad}:151:" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_gap_is_reported_not_filled(tmp_path: Path) -> None:
    gappy = tmp_path / "BTCUSDT_PERP_1m_gap.csv"
    lines = BTC.read_text().splitlines()[:2000]
    del lines[1000:1003]
    gappy.write_text("\n".join(lines) + "\n")
    proc = nancemakina(
        "backtest", "--data", str(gappy), "--out", str(tmp_path / "o"), "--no-plot", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "gap of 3 candle(s)" in proc.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["klines"] == 1996
    assert summary["gaps"] == 1


def test_bad_config_exits_2_with_path(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("pairs:\n  BTC_USDT:\n    leverage: 0\n")
    proc = nancemakina("backtest", "--config", str(cfg), "--data", str(BTC), cwd=tmp_path)
    assert proc.returncode == 2
    assert "pairs.BTC_USDT.leverage: must be between 1 and 125, got 0" in proc.stderr


@pytest.mark.parametrize("flag", ["--data", "--data=BTCUSDT="])
def test_missing_file(tmp_path: Path, flag: str) -> None:
    missing = tmp_path / "NOPEUSDT-1m.csv"
    arg = [flag, str(missing)] if flag == "--data" else [f"{flag}{missing}"]
    proc = nancemakina("backtest", *arg, cwd=tmp_path)
    assert proc.returncode == 2
    assert str(missing) in proc.stderr


def test_progress_bar_when_asked(tmp_path: Path) -> None:
    proc = nancemakina(
        "backtest",
        "--data",
        str(BTC),
        "--out",
        str(tmp_path / "o"),
        "--no-plot",
        "--progress",
        "always",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    frames = proc.stderr.splitlines()  # text mode turns the \r redraws into line breaks
    assert any("100.0%" in f for f in frames)
    assert len(frames) > 10  # redrawn as the run advances
