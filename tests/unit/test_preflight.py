"""One pre-flight: ``check-config`` makes every check ``run`` makes before it trades and prints the same
errors; what needs the exchange is named as skipped or made with ``--online``; start-up failures are one
line naming the setting, exit 2; cut-short output and ``--version`` behave."""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nancemakina.actors.cli.check import check_config_cli
from nancemakina.actors.cli.exchange import run_exchange_cli
from nancemakina.actors.cli.main import main
from nancemakina.actors.cli.run import run_cli
from nancemakina.actors.config import Config
from nancemakina.actors.sim import LocalExchange, SimConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "config.yaml.example"
BTC = REPO / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
KEY = "k3yk3yk3yk3y"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("NANCEMAKINA_API_KEY", "NANCEMAKINA_API_SECRET", "NANCEMAKINA_API_KEY_FILE",
                 "NANCEMAKINA_API_SECRET_FILE", "CREDENTIALS_DIRECTORY", "NANCEMAKINA_CONFIG"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return dict(os.environ)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield int(listener.getsockname()[1])


def config_file(tmp_path: Path, data: dict[str, object]) -> Path:
    """A config in ``tmp_path`` with its state there and monitoring on a free port unless given."""
    path = tmp_path / "config.yaml"
    full = {"state_dir": str(tmp_path / "state"), "monitoring": {"prometheus_port": 0}} | data
    path.write_text(yaml.safe_dump(full), encoding="utf-8")
    return path


def check(path: Path | None, env: dict[str, str], *, online: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(path=None if path is None else str(path), online=online)
    code = check_config_cli(args, env, out, err)
    return code, out.getvalue(), err.getvalue()


def run(path: Path, env: dict[str, str]) -> tuple[int, str]:
    """``nancemakina run``'s pre-flight; the bot itself must not start."""
    err = io.StringIO()

    def never(config: Config) -> int:
        raise AssertionError(f"run started the bot on {config.config_path}")

    return run_cli(argparse.Namespace(config=str(path)), env, never, err), err.getvalue()


@pytest.mark.parametrize(
    ("data", "first_error"),
    [
        (
            {"api": {"mode": "testnet"}, "pairs": {"BTC_USDT": {}}},
            "api.binance_api_key: is required in mode testnet",
        ),
        ({"api": {"mode": "live"}, "pairs": {"BTC_USDT": {}}}, "api.live_trading_confirmed: must be true"),
        ({"pairs": {"SOL_USDT": {}}}, "pairs.SOL_USDT: SOLUSDT is not listed by the exchange"),
        ({"replay": {"data": ["BTCUSDT_gone.csv"]}}, "replay.data: "),
        ({"replay": {"data": ["candles.csv"]}}, "replay.data: "),
        ({"api": {"mode": "paper"}}, "pairs: nothing to trade"),
    ],
    ids=[
        "testnet-without-keys",
        "live-unconfirmed",
        "unknown-symbol",
        "missing-data",
        "no-symbol",
        "no-pairs",
    ],
)
def test_check_config_and_run_refuse_alike(
    tmp_path: Path, env: dict[str, str], data: dict[str, object], first_error: str
) -> None:
    path = config_file(tmp_path, data)
    code, out, checked = check(path, env)
    assert (code, out) == (2, "")
    assert checked.splitlines()[0].startswith(f"{path}: {first_error}")
    assert run(path, env) == (2, checked)


def test_live_without_confirmation_or_keys_gives_all_three_errors(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = config_file(tmp_path, {"api": {"mode": "live"}, "pairs": {"BTC_USDT": {}}})
    _, _, err = check(path, env)
    assert [line.split(": ")[1] for line in err.splitlines()] == [
        "api.live_trading_confirmed",
        "api.binance_api_key",
        "api.binance_api_secret",
    ]


def test_a_busy_metrics_port_is_one_line_naming_the_setting(
    tmp_path: Path, env: dict[str, str], busy_port: int
) -> None:
    path = config_file(tmp_path, {"monitoring": {"prometheus_port": busy_port}})
    code, _, err = check(path, env)
    assert code == 2
    assert err == (
        f"{path}: monitoring.prometheus_port: cannot listen on 127.0.0.1:{busy_port}: address already in use; "
        "pick another port (0: any free one), or set monitoring.enabled: false\n"
    )
    assert run(path, env) == (2, err)


def test_the_example_config_passes_with_every_pairs_settings(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "config.yaml"
    path.write_text(EXAMPLE.read_text().replace("prometheus_port: 8000", "prometheus_port: 0"))
    code, out, err = check(path, env | {"NANCEMAKINA_API_KEY": KEY})
    assert (code, err) == (0, "")
    assert "mode: replay" in out
    assert f"state_dir: {tmp_path / 'state'}" in out
    assert "api key: set (from env NANCEMAKINA_API_KEY)" in out
    assert KEY not in out
    assert "pairs: 2 to trade, 1 disabled" in out
    header = next(line for line in out.splitlines() if line.startswith("pair "))
    assert header.split() == ["pair", "BTC_USDT", "ETH_USDT", "BTCUSD_PERP"]
    assert "skipped" not in out  # a replay on the in-process exchange needs nothing outside


def test_without_pairs_it_shows_what_run_would_trade(tmp_path: Path, env: dict[str, str]) -> None:
    path = config_file(tmp_path, {})
    code, out, _ = check(path, env)
    assert code == 0
    assert "pairs: 2 to trade (no pair configured: the replay.data symbols), 0 disabled" in out
    header = next(line for line in out.splitlines() if line.startswith("pair "))
    assert header.split() == ["pair", "BTCUSDT", "ETHUSDT"]


def test_checks_that_need_the_exchange_are_named_as_skipped(tmp_path: Path, env: dict[str, str]) -> None:
    path = config_file(tmp_path, {"api": {"mode": "testnet"}, "pairs": {"BTC_USDT": {}}})
    code, out, _ = check(path, env | {"NANCEMAKINA_API_KEY": KEY, "NANCEMAKINA_API_SECRET": KEY})
    assert code == 0
    skipped = [line for line in out.splitlines() if line.startswith("skipped")]
    assert [line.split(": ", 1)[1] for line in skipped] == [
        "Binance Futures testnet lists every pair",
        "Binance Futures testnet accepts the API key and secret",
    ]


def test_online_makes_the_exchange_checks_as_run_makes_them(tmp_path: Path, env: dict[str, str]) -> None:
    with LocalExchange([("BTCUSDT", BTC)], SimConfig(port=0, paused=True)) as exchange:
        url = exchange.rest_url
        listed = config_file(tmp_path, {"replay": {"exchange_url": url}, "pairs": {"BTC_USDT": {}}})
        assert check(listed, env, online=True)[0] == 0
        assert "skipped" in check(listed, env)[1]
        unknown = config_file(tmp_path, {"replay": {"exchange_url": url}, "pairs": {"SOL_USDT": {}}})
        code, _, err = check(unknown, env, online=True)
    assert code == 2
    assert err.startswith(
        f"{unknown}: pairs.SOL_USDT: SOLUSDT is not listed by the exchange; the local exchange at "
        "replay.exchange_url lists only what it replays"
    )


def test_a_busy_exchange_port_is_one_line(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_exchange_cli(["--port", str(busy_port), "--data", str(BTC)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"nancemakina exchange: --port {busy_port}: cannot listen on 127.0.0.1:{busy_port}: "
        "address already in use; pick another port (0: any free one)\n"
    )


def test_output_cut_short_ends_quietly(tmp_path: Path, env: dict[str, str]) -> None:
    path = config_file(tmp_path, {})
    script = shutil.which("nancemakina", path=str(Path(sys.executable).parent))
    assert script is not None
    done = subprocess.run(
        f"'{script}' check-config '{path}' | true", shell=True, capture_output=True, text=True,
        env=env, check=False, timeout=60,
    )  # fmt: skip
    assert done.stderr == ""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("nancemakina 0.")
