"""`nancemakina backtest` on a symbol outside the bundled exchange info: synthesised filters are announced;
with --exchange-info (or backtesting.exchange_info) the saved real ones are used."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.instruments import bundled_exchange_info

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"


def nancemakina(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).with_name("nancemakina")), *args]
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(cwd)}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, env=env, check=False)


def foo_data(tmp_path: Path) -> Path:
    path = tmp_path / "FOOUSDT_PERP_1m.csv"
    path.write_text("".join(BTC.read_text().splitlines(keepends=True)[:3000]))
    return path


def foo_exchange_info(tmp_path: Path) -> Path:
    doc = copy.deepcopy(dict(bundled_exchange_info(ContractType.USDT_M)))
    foo = next(s for s in doc["symbols"] if s["symbol"] == "BTCUSDT")
    foo.update(symbol="FOOUSDT", pair="FOOUSDT", baseAsset="FOO")
    doc["symbols"] = [foo]
    path = tmp_path / "exchange_info.json"
    path.write_text(json.dumps(doc))
    return path


def test_synthesised_filters_are_announced_and_a_saved_exchange_info_replaces_them(tmp_path: Path) -> None:
    data = foo_data(tmp_path)
    proc = nancemakina("backtest", "--data", str(data), "--out", "synth", "--no-plot", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning: FOOUSDT is in no exchange info" in proc.stderr
    assert "synthesised from ETHUSDT" in proc.stderr
    assert "SYNTHESISED for FOOUSDT" in proc.stdout
    assert json.loads((tmp_path / "synth" / "summary.json").read_text())["synthetic_filters"] == ["FOOUSDT"]

    info = foo_exchange_info(tmp_path)
    proc = nancemakina(
        "backtest",
        "--data",
        str(data),
        "--exchange-info",
        str(info),
        "--out",
        "real",
        "--no-plot",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "FOOUSDT" not in proc.stderr
    summary = json.loads((tmp_path / "real" / "summary.json").read_text())
    assert summary["synthetic_filters"] == []
    assert summary["exchange_info"] == [str(info)]

    config = tmp_path / "config.yaml"
    config.write_text(f"backtesting:\n  exchange_info: [{info.name}]\n")
    proc = nancemakina("backtest", "--config", str(config), "--data", str(data), "--out", "cfg", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "cfg" / "summary.json").read_text())["synthetic_filters"] == []


def test_a_bad_exchange_info_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{}")
    proc = nancemakina("backtest", "--data", str(BTC), "--exchange-info", "bad.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "bad.json" in proc.stderr
