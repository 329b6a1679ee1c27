"""Config schema, loader, error messages and secrets (check-config itself: test_preflight.py)."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path
from typing import Any

import pytest

from nancemakina.actors.cli.check import check_config_cli
from nancemakina.actors.config import (
    Config,
    ConfigError,
    Mode,
    PairSettings,
    api_symbol_for_key,
    contract_type_for_symbol,
    describe_pair,
    load_config,
    parse_config,
)
from nancemakina.actors.domain.model import ContractType

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "config.yaml.example"
KEY = "k3y-VALUE-from-somewhere-0123456789"
SECRET = "s3cr3t-VALUE-do-not-print-9876543210"


def errors_of(data: object, **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env=kwargs.pop("env", {}), **kwargs)
    return info.value.errors


def one_error(data: object) -> str:
    errors = errors_of(data)
    assert len(errors) == 1, errors
    return errors[0]


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults and the example -------------------------------------------------------------------------


def test_defaults_without_a_file() -> None:
    config = load_config(None, env={})
    assert config.api.mode is Mode.REPLAY
    assert config.api.binance_api_key is None
    assert config.api.recv_window_ms == 5000
    assert config.state_dir == "state"
    assert config.state_path() == REPO / "state"
    assert config.control_socket_path() == REPO / "state" / "control.sock"
    assert config.replay_data_paths() == (
        REPO / "data/BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
        REPO / "data/ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
    )
    assert config.replay.speed == "max"
    v1 = config.global_settings.v1_strategy
    assert (v1.sma_short_period, v1.sma_long_period, v1.default_leverage) == (21, 200, 10)
    assert v1.indicator_timeframes == ("1m", "5m", "15m", "1h", "4h")
    assert config.monitoring.prometheus_port == 8000
    assert config.logging.level == "INFO"
    assert config.logging.json_format is False
    assert config.execution.on_unprotected_position == "repair"
    assert config.pair_settings() == {}
    assert config.config_path is None


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# nothing here\n"), env={})
    assert config.global_settings == load_config(None, env={}).global_settings
    assert config.state_path() == tmp_path / "state"


def test_example_file_loads_offline_with_expected_pairs() -> None:
    config = load_config(EXAMPLE, env={})
    assert config.api.mode is Mode.REPLAY
    assert config.api.binance_api_key is None
    assert config.api.binance_api_secret is None
    assert config.startup_errors() == ()
    assert list(config.enabled_pairs()) == ["BTCUSDT", "ETHUSDT"]
    pairs = config.pair_settings()
    assert list(pairs) == ["BTCUSDT", "ETHUSDT", "BTCUSD_PERP"]
    assert pairs["BTCUSDT"].contract_type is ContractType.USDT_M
    coin = pairs["BTCUSD_PERP"]
    assert (coin.enabled, coin.contract_type, coin.margin_coin, coin.contract_size) == (
        False,
        ContractType.COIN_M,
        0.002,
        100,
    )
    # config/ lives under the project root, so relative paths resolve there.
    assert config.replay_data_paths()[0] == REPO / "data/BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
    assert config.config_path == EXAMPLE


def test_example_documents_every_option() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for name, section in Config.model_fields.items():
        if name in {"config_path", "base_dir", "api_key_source", "api_secret_source"}:
            continue
        assert f"{name}:" in text
        model = section.annotation
        for field_name, field in getattr(model, "model_fields", {}).items():
            assert f"{field.alias or field_name}:" in text, f"{name}.{field_name} undocumented"


# -- pairs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "symbol", "contract"),
    [
        ("BTC_USDT", "BTCUSDT", ContractType.USDT_M),
        ("BTCUSDT", "BTCUSDT", ContractType.USDT_M),
        ("1000PEPE_USDT", "1000PEPEUSDT", ContractType.USDT_M),
        ("BTCUSD_PERP", "BTCUSD_PERP", ContractType.COIN_M),
    ],
)
def test_key_mapping(key: str, symbol: str, contract: ContractType) -> None:
    assert api_symbol_for_key(key) == symbol
    assert contract_type_for_symbol(symbol) is contract
    config = parse_config({"pairs": {key: {"margin_coin": 0.1} if contract is ContractType.COIN_M else {}}})
    assert config.pair_settings()[symbol].contract_type is contract
    assert config.pair_settings()[symbol].key == key


def test_api_symbol_for_bad_key_raises() -> None:
    with pytest.raises(ValueError, match="invalid pair key"):
        api_symbol_for_key("BTC_USD_T")


def test_pair_overrides_and_global_fallback() -> None:
    config = parse_config(
        {
            "global_settings": {
                "v1_strategy": {"default_leverage": 7, "tp_sl_ratio": 2.5, "margin_mode": "cross"},
                "risk_management": {"max_concurrent_trades": 3},
                "filters": {"bb_period": 30},
            },
            "pairs": {
                "BTC_USDT": {
                    "leverage": 20,
                    "margin_usdt": 100,
                    "indicator_timeframes": ["1m", "15m"],
                    "margin_mode": "isolated",
                    "volume_filter_enabled": True,
                },
                "ETH_USDT": None,
                "ETHUSD_PERP": {"enabled": False},
            },
        },
        env={},
    )
    btc = config.settings_for("BTCUSDT")
    assert (btc.leverage, btc.margin_usdt, btc.margin_mode) == (20, 100.0, "ISOLATED")
    assert btc.indicator_timeframes == ("1m", "15m")
    assert btc.volume_filter_enabled is True
    assert (btc.tp_sl_ratio, btc.bb_period, btc.max_concurrent_trades) == (2.5, 30, 3)
    eth = config.settings_for("ETHUSDT")
    assert (eth.leverage, eth.margin_usdt, eth.margin_mode, eth.enabled) == (7, 50.0, "CROSSED", True)
    assert eth.margin_coin is None
    assert eth.contract_size is None
    assert config.pair_settings()["ETHUSD_PERP"].contract_size == 10
    assert list(config.enabled_pairs()) == ["BTCUSDT", "ETHUSDT"]


def test_settings_for_unlisted_symbol_uses_globals() -> None:
    config = parse_config({"global_settings": {"v1_strategy": {"default_margin_coin": 0.5}}}, env={})
    usdt = config.settings_for("SOLUSDT")
    assert (usdt.symbol, usdt.key, usdt.contract_type, usdt.leverage) == (
        "SOLUSDT",
        "SOLUSDT",
        ContractType.USDT_M,
        10,
    )
    coin = config.settings_for("ETHUSD_PERP")
    assert (coin.contract_type, coin.margin_coin, coin.contract_size) == (ContractType.COIN_M, 0.5, 10)
    assert config.settings_for("BTCUSD_250627").contract_type is ContractType.COIN_M


def test_pair_settings_are_hashable_and_comparable_for_reload_diffs() -> None:
    first = parse_config({"pairs": {"BTC_USDT": {"leverage": 5}}}, env={}).pair_settings()
    second = parse_config({"pairs": {"BTC_USDT": {"leverage": 6}}}, env={}).pair_settings()
    assert len({first["BTCUSDT"], second["BTCUSDT"]}) == 2
    assert first == parse_config({"pairs": {"BTC_USDT": {"leverage": 5}}}, env={}).pair_settings()
    assert isinstance(first["BTCUSDT"], PairSettings)
    labels = dict(describe_pair(first["BTCUSDT"]))
    assert labels["leverage"] == "5"
    assert labels["symbol"] == "BTCUSDT"


# -- aliases -------------------------------------------------------------------------------------------


def test_aliases_from_the_prototype() -> None:
    config = parse_config(
        {
            "api": {"testnet": True},
            "global_settings": {"risk_management": {"max_account_risk_per_trade_pct": 2.5}},
            "logging": {"log_file": "logs/bot.log", "level": "debug"},
            "pairs": {"BTC_USDT": {"risk_percent_per_trade": 0.5}, "ETH_USDT": {}},
        },
        env={},
    )
    assert config.api.mode is Mode.TESTNET
    assert config.global_settings.risk_management.dynamic_sizing_risk_percent == 2.5
    assert config.logging.file == "logs/bot.log"
    assert config.logging.level == "DEBUG"
    assert config.log_file_path() == REPO / "logs/bot.log"
    assert config.settings_for("BTCUSDT").risk_percent == 0.5
    assert config.settings_for("ETHUSDT").risk_percent == 2.5


def test_alias_and_canonical_name_agreeing_is_fine() -> None:
    risk = {"max_account_risk_per_trade_pct": 2, "dynamic_sizing_risk_percent": 2}
    config = parse_config({"global_settings": {"risk_management": risk}}, env={})
    assert config.global_settings.risk_management.dynamic_sizing_risk_percent == 2


def test_testnet_with_matching_mode_is_fine() -> None:
    assert parse_config({"api": {"mode": "TESTNET", "testnet": True}}, env={}).api.mode is Mode.TESTNET


# -- error messages -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"pairs": {"BTC_USDT": {"leverage": 0}}},
            "pairs.BTC_USDT.leverage: must be between 1 and 125, got 0",
        ),
        (
            {"global_settings": {"v1_strategy": {"sma_short_period": 250}}},
            "global_settings.v1_strategy.sma_short_period: must be less than sma_long_period (200), got 250",
        ),
        (
            {"global_settings": {"v1_strgy": {}}},
            "global_settings.v1_strgy: unknown key (did you mean v1_strategy?)",
        ),
        (
            {"monitoring": {"prometheus_port": "abc"}},
            "monitoring.prometheus_port: must be an integer, got 'abc'",
        ),
        (
            {"monitoring": {"prometheus_port": 70000}},
            "monitoring.prometheus_port: must be between 0 and 65535, got 70000",
        ),
        (
            {"api": {"mode": "real"}},
            "api.mode: must be one of 'replay', 'paper', 'testnet' or 'live', got 'real'",
        ),
        (
            {"global_settings": {"v1_strategy": {"tp_sl_ratio": "high"}}},
            "global_settings.v1_strategy.tp_sl_ratio: must be a number, got 'high'",
        ),
        (
            {"global_settings": {"v1_strategy": {"tp_sl_ratio": 0}}},
            "global_settings.v1_strategy.tp_sl_ratio: must be greater than 0, got 0",
        ),
        (
            {"global_settings": {"filters": {"bb_period": 1}}},
            "global_settings.filters.bb_period: must be at least 2, got 1",
        ),
        (
            {"global_settings": {"risk_management": {"dynamic_sizing_risk_percent": 150}}},
            (
                "global_settings.risk_management.dynamic_sizing_risk_percent: "
                "must be greater than 0 and at most 100, got 150"
            ),
        ),
        ({"logging": {"json": "maybe"}}, "logging.json: must be true or false, got 'maybe'"),
        ({"logging": {"file": 3}}, "logging.file: must be a string, got 3"),
        (
            {"logging": {"level": "loud"}},
            "logging.level: must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL', got 'loud'",
        ),
        ({"replay": {"data": "x.csv"}}, "replay.data: must be a list, got 'x.csv'"),
        ({"replay": {"speed": 0}}, "replay.speed: must be a positive number or 'max', got 0"),
        ({"control": 5}, "control: must be a mapping, got 5"),
        (
            {"backtesting": {"initial_balance_coin": 5}},
            "backtesting.initial_balance_coin: must be a mapping, got 5",
        ),
        (
            {"backtesting": {"initial_balance_coin": {"btc": -1}}},
            "backtesting.initial_balance_coin.btc: must be greater than 0, got -1",
        ),
        (
            {"backtesting": {"start_date": "2024-02-01", "end_date": "2024-01-01"}},
            "backtesting.end_date: must be after start_date (2024-02-01), got '2024-01-01'",
        ),
        (
            {"backtesting": {"start_date": "last tuesday"}},
            "backtesting.start_date: must be an ISO-8601 date/time like 2025-05-25T00:00:00Z, got 'last tuesday'",
        ),
        (
            {"execution": {"on_unknown_position": "ignore"}},
            "execution.on_unknown_position: must be one of 'adopt' or 'flatten', got 'ignore'",
        ),
        (
            {"global_settings": {"v1_strategy": {"indicator_timeframes": ["1m", "7m"]}}},
            (
                "global_settings.v1_strategy.indicator_timeframes[1]: unknown timeframe "
                "(valid: 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d), got '7m'"
            ),
        ),
        (
            {"global_settings": {"v1_strategy": {"indicator_timeframes": ["1m", "5m", "1m"]}}},
            "global_settings.v1_strategy.indicator_timeframes: lists 1m more than once, got ['1m', '5m', '1m']",
        ),
        (
            {
                "global_settings": {
                    "v1_strategy": {"signal_timeframe": "15m", "indicator_timeframes": ["1m", "5m"]}
                }
            },
            "global_settings.v1_strategy.signal_timeframe: must be one of indicator_timeframes (1m, 5m), got '15m'",
        ),
        (
            {"pairs": {"btc_usdt": {}}},
            "pairs: invalid pair key (use upper-case like BTC_USDT, BTCUSDT or BTCUSD_PERP), got 'btc_usdt'",
        ),
        (
            {"pairs": {"BTC_USDT": {}, "BTCUSDT": {}}},
            "pairs.BTCUSDT: is the same API symbol (BTCUSDT) as pairs.BTC_USDT",
        ),
        (
            {"pairs": {"BTC_USDT": {"contract_type": "coin_m"}}},
            "pairs.BTC_USDT.contract_type: does not match the pair key (BTC_USDT is a USDT_M pair), got 'COIN_M'",
        ),
        (
            {"pairs": {"BTC_USDT": {"contract_size": 100}}},
            "pairs.BTC_USDT.contract_size: only applies to COIN_M pairs, got 100",
        ),
        (
            {"pairs": {"BTCUSD_PERP": {}}},
            (
                "pairs.BTCUSD_PERP.margin_coin: is required for an enabled COIN_M pair (or set "
                "global_settings.v1_strategy.default_margin_coin, or enable dynamic sizing)"
            ),
        ),
        (
            {"pairs": {"BTC_USDT": {"sma_long_period": 10}}},
            "pairs.BTC_USDT.sma_long_period: must be greater than sma_short_period (21), got 10",
        ),
        (
            {"pairs": {"BTC_USDT": {"risk_percent_per_trade": 500}}},
            "pairs.BTC_USDT.risk_percent_per_trade: must be greater than 0 and at most 100, got 500",
        ),
        (
            {"pairs": {"BTC_USDT": {"levrage": 5}}},
            "pairs.BTC_USDT.levrage: unknown key (did you mean leverage?)",
        ),
        (
            {"global_settings": {"risk_management": {"max_account_risk_per_trade_pc": 1}}},
            (
                "global_settings.risk_management.max_account_risk_per_trade_pc: "
                "unknown key (did you mean max_account_risk_per_trade_pct?)"
            ),
        ),
        (
            {
                "global_settings": {
                    "risk_management": {"max_account_risk_per_trade_pct": 1, "dynamic_sizing_risk_percent": 2}
                }
            },
            (
                "global_settings.risk_management.max_account_risk_per_trade_pct: "
                "conflicts with dynamic_sizing_risk_percent (2); give only one, got 1"
            ),
        ),
        (
            {"api": {"mode": "live", "testnet": True}},
            "api.testnet: conflicts with api.mode (live); remove testnet or set mode: testnet, got true",
        ),
        ({"pair": {}}, "pair: unknown key (did you mean pairs?)"),
        ({"state_dir": ""}, "state_dir: must be a non-empty string, got ''"),
        (["api"], "(top level): must be a mapping of section names to settings, got ['api']"),
        (
            {"supervisor": {"backoff_initial_s": 5, "backoff_max_s": 1}},
            "supervisor.backoff_max_s: must be at least backoff_initial_s (5), got 1",
        ),
    ],
)
def test_bad_config_exact_message(data: object, message: str) -> None:
    assert one_error(data) == message


def test_unknown_key_without_close_match_lists_the_choices() -> None:
    assert one_error({"control": {"zzz": 1}}) == "control.zzz: unknown key (expected one of: socket_path)"


def test_all_errors_are_collected_at_once() -> None:
    errors = errors_of(
        {
            "api": {"recv_window_ms": 0},
            "global_settings": {"v1_strategy": {"default_leverage": 0, "sma_short_period": 250}},
            "pairs": {"BTC_USDT": {"leverage": 0, "sma_short_period": 300}, "bad key": {}},
            "monitoring": {"prometheus_port": "abc", "enabld": True},
            "nonsense": 1,
        }
    )
    assert set(errors) == {
        "api.recv_window_ms: must be between 1 and 60000, got 0",
        "global_settings.v1_strategy.default_leverage: must be between 1 and 125, got 0",
        "global_settings.v1_strategy.sma_short_period: must be less than sma_long_period (200), got 250",
        "pairs.BTC_USDT.leverage: must be between 1 and 125, got 0",
        "pairs.BTC_USDT.sma_short_period: must be less than sma_long_period (200), got 300",
        "pairs: invalid pair key (use upper-case like BTC_USDT, BTCUSDT or BTCUSD_PERP), got 'bad key'",
        "monitoring.prometheus_port: must be an integer, got 'abc'",
        "monitoring.enabld: unknown key (did you mean enabled?)",
        (
            "nonsense: unknown key (expected one of: api, backtesting, control, execution, global_settings, "
            "logging, monitoring, pairs, replay, state_dir, supervisor)"
        ),
    }
    assert len(errors) == 9


def test_gil_switch_interval_is_bounded() -> None:
    assert errors_of({"supervisor": {"gil_switch_interval_ms": 0}}) == (
        "supervisor.gil_switch_interval_ms: must be between 0.05 and 100, got 0",
    )
    assert load_config(None, env={}).supervisor.gil_switch_interval_ms == 0.5


def test_no_cross_field_error_is_derived_from_an_invalid_field() -> None:
    errors = errors_of(
        {"global_settings": {"v1_strategy": {"sma_short_period": 250, "sma_long_period": "x"}}}
    )
    assert errors == ("global_settings.v1_strategy.sma_long_period: must be an integer, got 'x'",)


def test_config_error_str_lists_every_error_with_the_source() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"monitoring": {"prometheus_port": -1, "host": 5}}, source="my.yaml", env={})
    text = str(info.value)
    assert "my.yaml" in text
    assert "monitoring.prometheus_port: must be between 0 and 65535, got -1" in text
    assert "monitoring.host: must be a string, got 5" in text


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  mode: replay\n pairs: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.source == str(path)
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith("line 3, column 2: invalid YAML:")
    assert str(path) in str(info.value)


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs:\n  BTC_USDT: {}\n  BTC_USDT: {leverage: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.errors == ("line 3, column 3: invalid YAML: duplicate key 'BTC_USDT'",)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", env={})
    assert info.value.errors == ("cannot read config file: No such file or directory",)


def test_non_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "just a string\n"), env={})
    assert info.value.errors == (
        "(top level): must be a mapping of section names to settings, got 'just a string'",
    )


def test_unquoted_yaml_dates_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "backtesting:\n  start_date: 2025-05-26\n  end_date: 2025-06-01T00:00:00Z\n")
    bt = load_config(path, env={}).backtesting
    assert bt.start_ms == 1_748_217_600_000
    assert bt.end_ms == 1_748_736_000_000
    assert bt.coin_balance("BTCUSD_PERP") == 1.0


def test_relative_paths_resolve_against_the_config_dir_when_not_in_config(tmp_path: Path) -> None:
    path = write(tmp_path, "state_dir: st\nreplay:\n  data: [a.csv]\ncontrol:\n  socket_path: /tmp/x.sock\n")
    config = load_config(path, env={})
    assert config.state_path() == tmp_path / "st"
    assert config.replay_data_paths() == (tmp_path / "a.csv",)
    assert config.control_socket_path() == Path("/tmp/x.sock")
    nested = tmp_path / "config"
    nested.mkdir()
    assert load_config(write(nested, "{}\n"), env={}).state_path() == tmp_path / "state"


def test_live_requires_confirmation_and_credentials() -> None:
    config = parse_config({"api": {"mode": "live"}}, env={})
    assert config.startup_errors() == (
        "api.live_trading_confirmed: must be true to trade real money in mode live, got false",
        (
            "api.binance_api_key: is required in mode live "
            "(set NANCEMAKINA_API_KEY, NANCEMAKINA_API_KEY_FILE or api.binance_api_key)"
        ),
        (
            "api.binance_api_secret: is required in mode live "
            "(set NANCEMAKINA_API_SECRET, NANCEMAKINA_API_SECRET_FILE or api.binance_api_secret)"
        ),
    )
    with pytest.raises(ConfigError):
        config.ensure_startable()
    env = {"NANCEMAKINA_API_KEY": KEY, "NANCEMAKINA_API_SECRET": SECRET}
    confirmed = parse_config({"api": {"mode": "live", "live_trading_confirmed": True}}, env=env)
    confirmed.ensure_startable()


# -- secrets --------------------------------------------------------------------------------------------


def test_secrets_from_env_override_yaml() -> None:
    data = {"api": {"binance_api_key": "yaml-key", "binance_api_secret": "yaml-secret"}}
    config = parse_config(data, env={"NANCEMAKINA_API_KEY": KEY})
    assert config.api.binance_api_key is not None
    assert config.api.binance_api_key.get_secret_value() == KEY
    assert config.api_key_source == "env NANCEMAKINA_API_KEY"
    assert config.api.binance_api_secret is not None
    assert config.api.binance_api_secret.get_secret_value() == "yaml-secret"
    assert config.api_secret_source == "config file"


def test_secrets_from_files_and_credentials_dir(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(f"  {KEY}\n", encoding="utf-8")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "nancemakina_api_secret").write_text(SECRET + "\n", encoding="utf-8")
    (creds / "nancemakina_api_key").write_text("creds-key", encoding="utf-8")
    env = {"NANCEMAKINA_API_KEY_FILE": str(key_file), "CREDENTIALS_DIRECTORY": str(creds)}
    config = parse_config({"api": {"binance_api_secret": "yaml-secret"}}, env=env)
    assert config.api.binance_api_key is not None
    assert config.api.binance_api_key.get_secret_value() == KEY
    assert config.api_key_source == f"file {key_file} via NANCEMAKINA_API_KEY_FILE"
    assert config.api.binance_api_secret is not None
    assert config.api.binance_api_secret.get_secret_value() == SECRET
    assert config.api_secret_source == f"file {creds / 'nancemakina_api_secret'} via CREDENTIALS_DIRECTORY"


def test_secret_precedence_env_over_file_over_credentials_over_yaml(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file", encoding="utf-8")
    (tmp_path / "nancemakina_api_key").write_text("from-creds", encoding="utf-8")
    data = {"api": {"binance_api_key": "from-yaml"}}
    env = {
        "NANCEMAKINA_API_KEY": "from-env",
        "NANCEMAKINA_API_KEY_FILE": str(key_file),
        "CREDENTIALS_DIRECTORY": str(tmp_path),
    }

    def key(env: dict[str, str]) -> str:
        secret = parse_config(data, env=env).api.binance_api_key
        assert secret is not None
        return secret.get_secret_value()

    assert key(env) == "from-env"
    del env["NANCEMAKINA_API_KEY"]
    assert key(env) == "from-file"
    del env["NANCEMAKINA_API_KEY_FILE"]
    assert key(env) == "from-creds"
    del env["CREDENTIALS_DIRECTORY"]
    assert key(env) == "from-yaml"


def test_unreadable_secret_file_names_var_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    errors = errors_of({}, env={"NANCEMAKINA_API_SECRET_FILE": str(missing)})
    assert errors == (
        f"NANCEMAKINA_API_SECRET_FILE: cannot read secret file {missing}: No such file or directory",
    )
    empty = write(tmp_path, "\n", name="empty")
    assert errors_of({}, env={"NANCEMAKINA_API_KEY_FILE": str(empty)}) == (
        f"NANCEMAKINA_API_KEY_FILE: secret file {empty} is empty",
    )


def test_secrets_never_appear_in_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config({"api": {"binance_api_key": KEY}}, env={"NANCEMAKINA_API_SECRET": SECRET})
    for text in (str(config), repr(config), repr(config.api), str(config.model_dump())):
        assert KEY not in text
        assert SECRET not in text
    # A secret given with the wrong type must not be echoed in the error either.
    errors = errors_of(
        {"api": {"binance_api_key": [KEY], "binance_api_secret": {"v": SECRET}}, "monitoring": 1}
    )
    assert "api.binance_api_key: must be a string (value not shown)" in errors
    assert "api.binance_api_secret: must be a string (value not shown)" in errors
    with pytest.raises(ConfigError) as info:
        parse_config({"api": {"binance_api_key": [KEY]}}, env={})
    assert KEY not in str(info.value)
    # check-config, both the success and the failure path.
    good = write(tmp_path, f"api:\n  binance_api_key: {KEY}\n", name="good.yaml")
    bad = write(tmp_path, f"api:\n  binance_api_key: [{KEY}]\n  mode: nope\n", name="bad.yaml")
    monkeypatch.setenv("NANCEMAKINA_API_SECRET", SECRET)
    for path in (good, bad):
        out, err = io.StringIO(), io.StringIO()
        args = argparse.Namespace(path=str(path), online=False)
        check_config_cli(args, dict(os.environ), out, err)
        assert KEY not in out.getvalue() + err.getvalue()
        assert SECRET not in out.getvalue() + err.getvalue()
