"""What each pair trades with: the global strategy sections, one pair's overrides, and the two laid together.

``global_settings`` (``V1Strategy``, ``RiskManagement``, ``Filters``) gives every pair its defaults,
``pairs.<KEY>`` (``PairOverrides``) overrides them for one pair, and ``resolve_pair`` lays the one over the
other into ``PairSettings``, the effective settings an actor receives. Pair keys and API symbols are
related here too: ``BTC_USDT`` is traded as ``BTCUSDT``, ``BTCUSD_PERP`` is COIN-M margined in ``BTC``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, TypeVar

from pydantic import Field

from ..domain.exits import ExitParams
from ..domain.model import ContractType
from ..domain.strategies import AnyParams
from ..domain.strategy import StrategyParams
from .field_types import (
    ApiSymbol,
    BbPeriod,
    FundingThreshold,
    Leverage,
    MarginMode,
    NonNeg,
    NonNegInt,
    Percent,
    Period,
    Positive,
    Section,
    StrategyName,
    Timeframe,
    Timeframes,
    case_insensitive,
)
from .strategy_sections import (
    ExitSettings,
    ExitStrategies,
    StrategyOverrides,
    V2Settings,
    V2Strategy,
    resolve_exits,
    resolve_v2,
)

_T = TypeVar("_T")


def api_symbol_for_key(key: str) -> str:
    """``BTC_USDT`` → ``BTCUSDT``; ``BTCUSD_PERP`` and ``BTCUSDT`` stay as they are."""
    if key.endswith("_PERP") and re.fullmatch(r"[A-Z0-9]+_PERP", key):
        return key
    match = re.fullmatch(r"([A-Z0-9]+)_([A-Z0-9]+)", key) or re.fullmatch(r"[A-Z0-9]+", key)
    if match is None:
        raise ValueError(f"invalid pair key {key!r}: use upper-case like BTC_USDT, BTCUSDT or BTCUSD_PERP")
    return key.replace("_", "")


def contract_type_for_symbol(symbol: str) -> ContractType:
    """COIN-M symbols carry an underscore suffix (``BTCUSD_PERP``, ``BTCUSD_250627``); USDⓈ-M ones don't."""
    return ContractType.COIN_M if symbol.endswith("_PERP") or "_" in symbol else ContractType.USDT_M


def base_coin(symbol: str) -> str:
    """Margin coin of a COIN-M symbol: ``BTCUSD_PERP`` → ``BTC``."""
    return symbol.split("_", 1)[0].removesuffix("USD")


class V1Strategy(Section):
    sma_short_period: Period = 21
    sma_long_period: Period = 200
    min_signal_interval_minutes: NonNegInt = 15
    tp_sl_ratio: Positive = 3.0
    default_margin_usdt: Positive = 50.0
    default_margin_coin: Positive | None = None
    default_leverage: Leverage = 10
    margin_mode: MarginMode = "ISOLATED"
    indicator_timeframes: Timeframes = ("1m", "5m", "15m", "1h", "4h")
    signal_timeframe: Timeframe = "1m"
    buffer_time_candles: NonNegInt = 0
    pivot_lookback_candles: Period = 30


class RiskManagement(Section):
    dynamic_sizing_enabled: bool = False
    dynamic_sizing_risk_percent: Percent = 1.0
    max_concurrent_trades: Period | None = None


class Filters(Section):
    volume_filter_enabled: bool = False
    volume_avg_period: Period = 20
    volume_threshold_ratio: Positive = 1.5
    volatility_filter_enabled: bool = False
    bb_period: BbPeriod = 20
    bb_std_dev: Positive = 2.0
    bb_min_width_percentage: NonNeg = 0.5
    btc_correlation_filter_enabled: bool = False
    """V2: an altcoin trade only when the reference symbol's trend agrees (``btc_correlation_*``)."""
    btc_correlation_symbol: ApiSymbol | None = None
    """The reference; None: BTCUSDT for USDⓈ-M pairs, BTCUSD_PERP for COIN-M pairs."""
    btc_correlation_timeframe: Timeframe = "15m"
    btc_correlation_ema_period: Period = 50
    max_funding_rate_threshold: FundingThreshold | None = None
    """V2: skip when |funding rate| exceeds this fraction per interval (0.001 = 0.1 %); None: no filter."""


class GlobalSettings(Section):
    strategy: StrategyName = "v1"
    v1_strategy: V1Strategy = Field(default_factory=V1Strategy)
    v2_strategy: V2Strategy = Field(default_factory=V2Strategy)
    risk_management: RiskManagement = Field(default_factory=RiskManagement)
    filters: Filters = Field(default_factory=Filters)
    exit_strategies: ExitStrategies = Field(default_factory=ExitStrategies)


class PairOverrides(StrategyOverrides):
    """One ``pairs.<KEY>`` entry as written: every field but ``enabled`` falls back to the global value."""

    enabled: bool = True
    strategy: StrategyName | None = None
    contract_type: Annotated[ContractType | None, case_insensitive(*ContractType)] = None
    leverage: Leverage | None = None
    margin_usdt: Positive | None = None
    margin_coin: Positive | None = None
    contract_size: Period | None = None
    margin_mode: MarginMode | None = None
    indicator_timeframes: Timeframes | None = None
    signal_timeframe: Timeframe | None = None
    min_signal_interval_minutes: NonNegInt | None = None
    tp_sl_ratio: Positive | None = None
    sma_short_period: Period | None = None
    sma_long_period: Period | None = None
    dynamic_sizing_enabled: bool | None = None
    dynamic_sizing_risk_percent: Percent | None = None
    buffer_time_candles: NonNegInt | None = None
    pivot_lookback_candles: Period | None = None
    volume_filter_enabled: bool | None = None
    volume_avg_period: Period | None = None
    volume_threshold_ratio: Positive | None = None
    volatility_filter_enabled: bool | None = None
    bb_period: BbPeriod | None = None
    bb_std_dev: Positive | None = None
    bb_min_width_percentage: NonNeg | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PairSettings:
    """Effective settings of one pair: its overrides laid over the globals. Hashable, so reloads can diff."""

    key: str
    symbol: str
    enabled: bool
    contract_type: ContractType
    leverage: int
    margin_mode: str
    margin_usdt: float
    margin_coin: float | None
    contract_size: int | None
    """Contract face value in USD (COIN-M only)."""
    dynamic_sizing_enabled: bool
    risk_percent: float
    max_concurrent_trades: int | None
    sma_short_period: int
    sma_long_period: int
    min_signal_interval_minutes: int
    tp_sl_ratio: float
    indicator_timeframes: tuple[str, ...]
    signal_timeframe: str
    buffer_time_candles: int
    pivot_lookback_candles: int
    volume_filter_enabled: bool
    volume_avg_period: int
    volume_threshold_ratio: float
    volatility_filter_enabled: bool
    bb_period: int
    bb_std_dev: float
    bb_min_width_percentage: float
    strategy: str = "v1"
    """``v1`` or ``v2``."""
    v2: V2Settings | None = None
    """The V2 settings (also resolved for a V1 pair, unused there)."""
    exits: ExitSettings | None = None

    def strategy_params(self) -> AnyParams:
        """The parameters of the strategy this pair trades (the domain never reads the config itself)."""
        if self.strategy == "v2" and self.v2 is not None:
            return self.v2.params(
                pivot_lookback=self.pivot_lookback_candles,
                min_interval_ms=self.min_signal_interval_minutes * 60_000,
                max_concurrent=self.max_concurrent_trades,
            )
        return self.v1_params()

    def exit_params(self) -> ExitParams:
        """The exits this pair trades with (both strategies)."""
        return ExitParams() if self.exits is None else self.exits.params()

    def v1_params(self) -> StrategyParams:
        """V1's parameters, whichever strategy the pair trades."""
        return StrategyParams(
            short_period=self.sma_short_period,
            long_period=self.sma_long_period,
            buffer_candles=self.buffer_time_candles,
            min_interval_ms=self.min_signal_interval_minutes * 60_000,
            pivot_lookback=self.pivot_lookback_candles,
            tp_sl_ratio=self.tp_sl_ratio,
            volume_filter=self.volume_filter_enabled,
            volume_period=self.volume_avg_period,
            volume_ratio=self.volume_threshold_ratio,
            volatility_filter=self.volatility_filter_enabled,
            bb_period=self.bb_period,
            bb_std=self.bb_std_dev,
            bb_min_width_pct=self.bb_min_width_percentage,
            max_concurrent=self.max_concurrent_trades,
        )


def _key_contract_type(key: str) -> ContractType:
    return ContractType.COIN_M if key.endswith("_PERP") else ContractType.USDT_M


def _pick(override: _T | None, default: _T) -> _T:
    return default if override is None else override


def resolve_pair(
    key: str, o: PairOverrides, gs: GlobalSettings, *, symbol: str | None = None
) -> PairSettings:
    """Lay one pair's overrides over the globals. ``symbol`` skips the key mapping (unlisted symbols)."""
    v1, risk, flt = gs.v1_strategy, gs.risk_management, gs.filters
    symbol = symbol or api_symbol_for_key(key)
    ctype = contract_type_for_symbol(symbol) if key == symbol else _key_contract_type(key)
    coin_m = ctype is ContractType.COIN_M
    return PairSettings(
        key=key,
        symbol=symbol,
        enabled=o.enabled,
        contract_type=ctype,
        leverage=_pick(o.leverage, v1.default_leverage),
        margin_mode=_pick(o.margin_mode, v1.margin_mode),
        margin_usdt=_pick(o.margin_usdt, v1.default_margin_usdt),
        margin_coin=_pick(o.margin_coin, v1.default_margin_coin) if coin_m else None,
        contract_size=_pick(o.contract_size, 100 if symbol.startswith("BTCUSD") else 10) if coin_m else None,
        dynamic_sizing_enabled=_pick(o.dynamic_sizing_enabled, risk.dynamic_sizing_enabled),
        risk_percent=_pick(o.dynamic_sizing_risk_percent, risk.dynamic_sizing_risk_percent),
        max_concurrent_trades=risk.max_concurrent_trades,
        sma_short_period=_pick(o.sma_short_period, v1.sma_short_period),
        sma_long_period=_pick(o.sma_long_period, v1.sma_long_period),
        min_signal_interval_minutes=_pick(o.min_signal_interval_minutes, v1.min_signal_interval_minutes),
        tp_sl_ratio=_pick(o.tp_sl_ratio, v1.tp_sl_ratio),
        indicator_timeframes=_pick(o.indicator_timeframes, v1.indicator_timeframes),
        signal_timeframe=_pick(o.signal_timeframe, v1.signal_timeframe),
        buffer_time_candles=_pick(o.buffer_time_candles, v1.buffer_time_candles),
        pivot_lookback_candles=_pick(o.pivot_lookback_candles, v1.pivot_lookback_candles),
        volume_filter_enabled=_pick(o.volume_filter_enabled, flt.volume_filter_enabled),
        volume_avg_period=_pick(o.volume_avg_period, flt.volume_avg_period),
        volume_threshold_ratio=_pick(o.volume_threshold_ratio, flt.volume_threshold_ratio),
        volatility_filter_enabled=_pick(o.volatility_filter_enabled, flt.volatility_filter_enabled),
        bb_period=_pick(o.bb_period, flt.bb_period),
        bb_std_dev=_pick(o.bb_std_dev, flt.bb_std_dev),
        bb_min_width_percentage=_pick(o.bb_min_width_percentage, flt.bb_min_width_percentage),
        strategy=_pick(o.strategy, gs.strategy),
        v2=resolve_v2(o, gs.v2_strategy, flt, ctype),
        exits=resolve_exits(o, gs.exit_strategies),
    )
