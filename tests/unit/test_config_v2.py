"""The strategy choice, V2, its filters and the exits in the config: defaults, overrides, and every error."""

from __future__ import annotations

import pytest

from nancemakina.actors.config import ConfigError, parse_config
from nancemakina.actors.domain.exits import ExitParams
from nancemakina.actors.domain.strategy import StrategyParams
from nancemakina.actors.domain.strategy_v2 import BtcFilter, StopMode, V2Params


def errors_of(data: object) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    return info.value.errors


def test_v1_by_default_with_no_extra_exits() -> None:
    settings = parse_config({}, env={}).settings_for("BTCUSDT")
    assert settings.strategy == "v1"
    assert settings.strategy_params() == StrategyParams()
    assert settings.exit_params() == ExitParams()


def test_v2_globally_and_a_pair_back_on_v1() -> None:
    config = parse_config(
        {
            "global_settings": {
                "strategy": "V2",
                "v2_strategy": {"trend_timeframes": ["5m"], "stop_mode": "PIVOT", "sl_atr_multiplier": 2},
                "filters": {"btc_correlation_filter_enabled": True, "max_funding_rate_threshold": 0.0005},
                "exit_strategies": {
                    "trailing_stop_enabled": True,
                    "trailing_callback_rate_pct": 1.5,
                    "trailing_activation_risk_ratio": None,
                    "time_based_exit_enabled": True,
                    "max_trade_duration_candles": 30,
                    "reversal_exit_enabled": True,
                },
            },
            "pairs": {"BTC_USDT": {}, "ETH_USDT": {"ema_fast_period": 5}, "SOL_USDT": {"strategy": "v1"}},
        },
        env={},
    )
    eth = config.settings_for("ETHUSDT").strategy_params()
    assert isinstance(eth, V2Params)
    assert (eth.ema_fast, eth.ema_slow, eth.trend_timeframes, eth.stop_mode, eth.sl_atr) == (
        5,
        21,
        ("5m",),
        StopMode.PIVOT,
        2.0,
    )
    assert eth.btc_filter == BtcFilter(symbol="BTCUSDT", timeframe="15m", ema_period=50)
    assert eth.max_funding_rate == 0.0005
    assert eth.min_interval_ms == 15 * 60_000  # shared with V1
    assert config.settings_for("ETHUSDT").exit_params() == ExitParams(
        callback_pct=1.5, activation_ratio=None, time_exit_candles=30, reversal_exit=True
    )
    assert isinstance(config.settings_for("SOLUSDT").strategy_params(), StrategyParams)


def test_coin_m_pairs_follow_btcusd_perp_by_default() -> None:
    config = parse_config(
        {
            "global_settings": {"strategy": "v2", "filters": {"btc_correlation_filter_enabled": True}},
            "pairs": {"BTCUSD_PERP": {"margin_coin": 0.01}, "ETHUSD_PERP": {"margin_coin": 0.1}},
        },
        env={},
    )
    params = config.settings_for("ETHUSD_PERP").strategy_params()
    assert isinstance(params, V2Params)
    assert params.btc_filter is not None
    assert params.btc_filter.symbol == "BTCUSD_PERP"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"global_settings": {"strategy": "v3"}},
            "global_settings.strategy: must be one of 'v1' or 'v2', got 'v3'",
        ),
        (
            {"global_settings": {"v2_strategy": {"ema_fast_period": 30}}},
            "global_settings.v2_strategy.ema_fast_period: must be less than ema_slow_period (21), got 30",
        ),
        (
            {"global_settings": {"v2_strategy": {"emaslow_period": 3}}},
            "global_settings.v2_strategy.emaslow_period: unknown key (did you mean ema_slow_period?)",
        ),
        (
            {"global_settings": {"exit_strategy": {}}},
            "global_settings.exit_strategy: unknown key (did you mean exit_strategies?)",
        ),
        (
            {"global_settings": {"v2_strategy": {"stoch_rsi_oversold": 85}}},
            "global_settings.v2_strategy.stoch_rsi_oversold: must be less than stoch_rsi_overbought (80), got 85",
        ),
        (
            {"global_settings": {"v2_strategy": {"stoch_rsi_rsi_period": 1}}},
            "global_settings.v2_strategy.stoch_rsi_rsi_period: must be at least 2, got 1",
        ),
        (
            {"global_settings": {"v2_strategy": {"stoch_rsi_overbought": 120}}},
            "global_settings.v2_strategy.stoch_rsi_overbought: must be between 0 and 100, got 120",
        ),
        (
            {"global_settings": {"v2_strategy": {"stop_mode": "swing"}}},
            "global_settings.v2_strategy.stop_mode: must be one of 'atr' or 'pivot', got 'swing'",
        ),
        (
            {"global_settings": {"v2_strategy": {"trend_timeframes": ["1h", "1h"]}}},
            "global_settings.v2_strategy.trend_timeframes: lists 1h more than once, got ['1h', '1h']",
        ),
        (
            {"global_settings": {"strategy": "v2", "v2_strategy": {"trend_timeframes": ["30m"]}}},
            (
                "global_settings.v2_strategy.trend_timeframes: 30m is not in indicator_timeframes "
                "(1m, 5m, 15m, 1h, 4h); add it there (its pair actor computes the trend), got ['30m']"
            ),
        ),
        (
            {"pairs": {"ETH_USDT": {"strategy": "v2", "signal_timeframe": "5m", "trend_timeframes": ["5m"]}}},
            (
                "pairs.ETH_USDT.trend_timeframes: 5m must be longer than signal_timeframe (5m) and a multiple "
                "of it, got ['5m']"
            ),
        ),
        (
            {"pairs": {"ETH_USDT": {"sl_atr_multiplier": 2}}},
            "pairs.ETH_USDT.sl_atr_multiplier: only applies to strategy v2 pairs (this pair trades v1), got 2",
        ),
        (
            {"pairs": {"ETH_USDT": {"strategy": "v2", "ema_slow_period": 5}}},
            "pairs.ETH_USDT.ema_slow_period: must be greater than ema_fast_period (9), got 5",
        ),
        (
            {"global_settings": {"filters": {"max_funding_rate_threshold": 0}}},
            "global_settings.filters.max_funding_rate_threshold: must be greater than 0 and less than 1, got 0",
        ),
        (
            {"global_settings": {"filters": {"btc_correlation_symbol": "btc-usdt"}}},
            "global_settings.filters.btc_correlation_symbol: must be an API symbol like BTCUSDT or BTCUSD_PERP, got 'btc-usdt'",
        ),
        (
            {"pairs": {"ETH_USDT": {"strategy": "v2", "btc_correlation_filter_enabled": True}}},
            (
                "pairs.ETH_USDT.btc_correlation_filter_enabled: needs the pair BTCUSDT listed under pairs and "
                "enabled: its 15m actor publishes the trend ETH_USDT follows; or set "
                "btc_correlation_filter_enabled: false, got true"
            ),
        ),
        (
            {
                "global_settings": {"strategy": "v2", "filters": {"btc_correlation_filter_enabled": True}},
                "pairs": {
                    "ETH_USDT": {},
                    "SOL_USDT": {},
                    "BTC_USDT": {"indicator_timeframes": ["1m", "1h"], "trend_timeframes": ["1h"]},
                },
            },
            (
                "global_settings.filters.btc_correlation_filter_enabled: needs 15m in BTC_USDT's "
                "indicator_timeframes (1m, 1h): its 15m actor publishes the trend ETH_USDT follows; or set "
                "btc_correlation_filter_enabled: false, got true"
            ),
        ),
        (
            {"global_settings": {"exit_strategies": {"trailing_callback_rate_pct": 0.25}}},
            (
                "global_settings.exit_strategies.trailing_callback_rate_pct: must have at most one decimal "
                "(Binance's callbackRate step is 0.1), got 0.25"
            ),
        ),
        (
            {"global_settings": {"exit_strategies": {"trailing_callback_rate_pct": 12}}},
            "global_settings.exit_strategies.trailing_callback_rate_pct: must be between 0.1 and 10, got 12",
        ),
        (
            {"pairs": {"ETH_USDT": {"max_trade_duration_candles": 0}}},
            "pairs.ETH_USDT.max_trade_duration_candles: must be at least 1, got 0",
        ),
        (
            {"replay": {"funding_rates": "x.csv"}},
            "replay.funding_rates: must be a list, got 'x.csv'",
        ),
    ],
)
def test_errors_name_the_path_and_the_value(data: object, message: str) -> None:
    errors = errors_of(data)
    assert errors == (message,), errors
