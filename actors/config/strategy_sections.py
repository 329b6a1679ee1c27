"""The V2 strategy's section, the exits' section, the V2 filters, and each one's per-pair overrides.

``global_settings.v2_strategy`` and ``global_settings.exit_strategies`` give every pair its defaults (the
V2 filters sit with the others in ``global_settings.filters``); a pair overrides any key under
``pairs.<KEY>``. ``resolve_v2`` and ``resolve_exits`` lay them together into ``V2Settings`` and
``ExitSettings``, which turn into the domain's ``V2Params`` and ``ExitParams``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from ..domain.exits import ExitParams
from ..domain.model import ContractType
from ..domain.strategy_v2 import BtcFilter, StopMode, V2Params
from .field_types import (
    ApiSymbol,
    CallbackRate,
    FundingThreshold,
    Period,
    Positive,
    RsiPeriod,
    Section,
    StochLevel,
    StopModeName,
    Timeframe,
    TrendTimeframes,
)

_T = TypeVar("_T")


class V2Filters(Protocol):
    """The V2 keys of ``global_settings.filters`` (``pair_settings.Filters``)."""

    @property
    def btc_correlation_filter_enabled(self) -> bool: ...
    @property
    def btc_correlation_symbol(self) -> str | None: ...
    @property
    def btc_correlation_timeframe(self) -> str: ...
    @property
    def btc_correlation_ema_period(self) -> int: ...
    @property
    def max_funding_rate_threshold(self) -> float | None: ...


DEFAULT_BTC = {ContractType.USDT_M: "BTCUSDT", ContractType.COIN_M: "BTCUSD_PERP"}
"""The BTC correlation filter's reference symbol when ``btc_correlation_symbol`` is not set."""


class V2Strategy(Section):
    ema_fast_period: Period = 9
    ema_slow_period: Period = 21
    trend_timeframes: TrendTimeframes = ("15m", "1h")
    trend_ema_period: Period = 50
    stoch_rsi_enabled: bool = True
    stoch_rsi_rsi_period: RsiPeriod = 14
    stoch_rsi_stoch_period: Period = 14
    stoch_rsi_k_smoothing: Period = 3
    stoch_rsi_d_smoothing: Period = 3
    stoch_rsi_overbought: StochLevel = 80.0
    stoch_rsi_oversold: StochLevel = 20.0
    atr_period: Period = 14
    stop_mode: StopModeName = "atr"
    sl_atr_multiplier: Positive = 1.5
    tp_atr_multiplier: Positive = 3.0


class ExitStrategies(Section):
    trailing_stop_enabled: bool = False
    trailing_callback_rate_pct: CallbackRate = 0.2
    trailing_activation_risk_ratio: Positive | None = 1.0
    time_based_exit_enabled: bool = False
    max_trade_duration_candles: Period = 60
    reversal_exit_enabled: bool = False


V2_KEYS = (*V2Strategy.model_fields, "btc_correlation_filter_enabled", "btc_correlation_symbol")
V2_KEYS += ("btc_correlation_timeframe", "btc_correlation_ema_period", "max_funding_rate_threshold")
"""Keys that only a V2 pair reads (an error on a V1 pair's overrides)."""


class StrategyOverrides(Section):
    """The V2, V2-filter and exit keys of one ``pairs.<KEY>`` entry (None: the global value)."""

    ema_fast_period: Period | None = None
    ema_slow_period: Period | None = None
    trend_timeframes: TrendTimeframes | None = None
    trend_ema_period: Period | None = None
    stoch_rsi_enabled: bool | None = None
    stoch_rsi_rsi_period: RsiPeriod | None = None
    stoch_rsi_stoch_period: Period | None = None
    stoch_rsi_k_smoothing: Period | None = None
    stoch_rsi_d_smoothing: Period | None = None
    stoch_rsi_overbought: StochLevel | None = None
    stoch_rsi_oversold: StochLevel | None = None
    atr_period: Period | None = None
    stop_mode: StopModeName | None = None
    sl_atr_multiplier: Positive | None = None
    tp_atr_multiplier: Positive | None = None
    btc_correlation_filter_enabled: bool | None = None
    btc_correlation_symbol: ApiSymbol | None = None
    btc_correlation_timeframe: Timeframe | None = None
    btc_correlation_ema_period: Period | None = None
    max_funding_rate_threshold: FundingThreshold | None = None
    trailing_stop_enabled: bool | None = None
    trailing_callback_rate_pct: CallbackRate | None = None
    trailing_activation_risk_ratio: Positive | None = None
    time_based_exit_enabled: bool | None = None
    max_trade_duration_candles: Period | None = None
    reversal_exit_enabled: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class V2Settings:
    """A pair's effective V2 settings (read only when its strategy is ``v2``)."""

    ema_fast_period: int
    ema_slow_period: int
    trend_timeframes: tuple[str, ...]
    trend_ema_period: int
    stoch_rsi_enabled: bool
    stoch_rsi_rsi_period: int
    stoch_rsi_stoch_period: int
    stoch_rsi_k_smoothing: int
    stoch_rsi_d_smoothing: int
    stoch_rsi_overbought: float
    stoch_rsi_oversold: float
    atr_period: int
    stop_mode: str
    sl_atr_multiplier: float
    tp_atr_multiplier: float
    btc_correlation_filter_enabled: bool
    btc_correlation_symbol: str
    btc_correlation_timeframe: str
    btc_correlation_ema_period: int
    max_funding_rate_threshold: float | None

    def params(self, *, pivot_lookback: int, min_interval_ms: int, max_concurrent: int | None) -> V2Params:
        """The domain's parameters (the keys shared with V1 come from the caller)."""
        btc = None
        if self.btc_correlation_filter_enabled:
            btc = BtcFilter(
                symbol=self.btc_correlation_symbol,
                timeframe=self.btc_correlation_timeframe,
                ema_period=self.btc_correlation_ema_period,
            )
        return V2Params(
            ema_fast=self.ema_fast_period,
            ema_slow=self.ema_slow_period,
            trend_timeframes=self.trend_timeframes,
            trend_ema=self.trend_ema_period,
            stoch_rsi=self.stoch_rsi_enabled,
            rsi_period=self.stoch_rsi_rsi_period,
            stoch_period=self.stoch_rsi_stoch_period,
            k_smoothing=self.stoch_rsi_k_smoothing,
            d_smoothing=self.stoch_rsi_d_smoothing,
            overbought=self.stoch_rsi_overbought,
            oversold=self.stoch_rsi_oversold,
            atr_period=self.atr_period,
            stop_mode=StopMode(self.stop_mode),
            sl_atr=self.sl_atr_multiplier,
            tp_atr=self.tp_atr_multiplier,
            pivot_lookback=pivot_lookback,
            min_interval_ms=min_interval_ms,
            max_concurrent=max_concurrent,
            btc_filter=btc,
            max_funding_rate=self.max_funding_rate_threshold,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitSettings:
    """A pair's effective exits (both strategies)."""

    trailing_stop_enabled: bool
    trailing_callback_rate_pct: float
    trailing_activation_risk_ratio: float | None
    time_based_exit_enabled: bool
    max_trade_duration_candles: int
    reversal_exit_enabled: bool

    def params(self) -> ExitParams:
        return ExitParams(
            callback_pct=self.trailing_callback_rate_pct if self.trailing_stop_enabled else None,
            activation_ratio=self.trailing_activation_risk_ratio,
            time_exit_candles=self.max_trade_duration_candles if self.time_based_exit_enabled else 0,
            reversal_exit=self.reversal_exit_enabled,
        )


def _pick(override: _T | None, default: _T) -> _T:
    return default if override is None else override


def resolve_v2(o: StrategyOverrides, v2: V2Strategy, flt: V2Filters, contract: ContractType) -> V2Settings:
    """A pair's V2 overrides laid over the global V2 section and filters."""
    return V2Settings(
        ema_fast_period=_pick(o.ema_fast_period, v2.ema_fast_period),
        ema_slow_period=_pick(o.ema_slow_period, v2.ema_slow_period),
        trend_timeframes=_pick(o.trend_timeframes, v2.trend_timeframes),
        trend_ema_period=_pick(o.trend_ema_period, v2.trend_ema_period),
        stoch_rsi_enabled=_pick(o.stoch_rsi_enabled, v2.stoch_rsi_enabled),
        stoch_rsi_rsi_period=_pick(o.stoch_rsi_rsi_period, v2.stoch_rsi_rsi_period),
        stoch_rsi_stoch_period=_pick(o.stoch_rsi_stoch_period, v2.stoch_rsi_stoch_period),
        stoch_rsi_k_smoothing=_pick(o.stoch_rsi_k_smoothing, v2.stoch_rsi_k_smoothing),
        stoch_rsi_d_smoothing=_pick(o.stoch_rsi_d_smoothing, v2.stoch_rsi_d_smoothing),
        stoch_rsi_overbought=_pick(o.stoch_rsi_overbought, v2.stoch_rsi_overbought),
        stoch_rsi_oversold=_pick(o.stoch_rsi_oversold, v2.stoch_rsi_oversold),
        atr_period=_pick(o.atr_period, v2.atr_period),
        stop_mode=_pick(o.stop_mode, v2.stop_mode),
        sl_atr_multiplier=_pick(o.sl_atr_multiplier, v2.sl_atr_multiplier),
        tp_atr_multiplier=_pick(o.tp_atr_multiplier, v2.tp_atr_multiplier),
        btc_correlation_filter_enabled=_pick(
            o.btc_correlation_filter_enabled, flt.btc_correlation_filter_enabled
        ),
        btc_correlation_symbol=_pick(o.btc_correlation_symbol, flt.btc_correlation_symbol)
        or DEFAULT_BTC[contract],
        btc_correlation_timeframe=_pick(o.btc_correlation_timeframe, flt.btc_correlation_timeframe),
        btc_correlation_ema_period=_pick(o.btc_correlation_ema_period, flt.btc_correlation_ema_period),
        max_funding_rate_threshold=_pick(o.max_funding_rate_threshold, flt.max_funding_rate_threshold),
    )


def resolve_exits(o: StrategyOverrides, ex: ExitStrategies) -> ExitSettings:
    """A pair's exit overrides laid over ``global_settings.exit_strategies``."""
    return ExitSettings(
        trailing_stop_enabled=_pick(o.trailing_stop_enabled, ex.trailing_stop_enabled),
        trailing_callback_rate_pct=_pick(o.trailing_callback_rate_pct, ex.trailing_callback_rate_pct),
        trailing_activation_risk_ratio=_pick(
            o.trailing_activation_risk_ratio, ex.trailing_activation_risk_ratio
        ),
        time_based_exit_enabled=_pick(o.time_based_exit_enabled, ex.time_based_exit_enabled),
        max_trade_duration_candles=_pick(o.max_trade_duration_candles, ex.max_trade_duration_candles),
        reversal_exit_enabled=_pick(o.reversal_exit_enabled, ex.reversal_exit_enabled),
    )
