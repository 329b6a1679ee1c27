"""Cross-field rules of the V2 strategy, its filters and the exits (the loader runs them after validation).

Each rule names the YAML path the user should edit: a pair's own key when the pair set it, else the
global key (reported once, not once per pair). A rule is skipped when a field it reads failed its own
validation, so the user sees that field's error rather than a second one computed from a default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..domain.model import TIMEFRAME_MS
from .errors import render_number, render_value
from .pair_settings import GlobalSettings, PairOverrides, PairSettings, resolve_pair
from .strategy_sections import V2_KEYS

V2_PATH = "global_settings.v2_strategy"
_V1_PATH = "global_settings.v1_strategy"
_FILTERS = "global_settings.filters"
_EMA = ("ema_fast_period", "ema_slow_period")
_STOCH = ("stoch_rsi_oversold", "stoch_rsi_overbought")
_TRENDS = ("trend_timeframes", "signal_timeframe", "indicator_timeframes")
_GLOBAL_TRENDS = (
    f"{V2_PATH}.trend_timeframes",
    f"{_V1_PATH}.signal_timeframe",
    f"{_V1_PATH}.indicator_timeframes",
)

Bad = Callable[..., bool]
"""``loader.bad``: whether any of these YAML paths failed validation."""


def _shown(value: object) -> str:
    return render_number(value) if isinstance(value, float) else render_value(value)


def _trend_problem(trends: tuple[str, ...], signal: str, timeframes: tuple[str, ...]) -> str | None:
    """Why a trend timeframe cannot serve a signal timeframe (None when all can)."""
    signal_ms = TIMEFRAME_MS[signal]
    for tf in trends:
        if tf not in timeframes:
            return (
                f"{tf} is not in indicator_timeframes ({', '.join(timeframes)}); add it there (its pair "
                "actor computes the trend)"
            )
        if TIMEFRAME_MS[tf] <= signal_ms or TIMEFRAME_MS[tf] % signal_ms:
            return f"{tf} must be longer than signal_timeframe ({signal}) and a multiple of it"
    return None


def check_global_v2(errors: list[str], bad: Bad, gs: GlobalSettings) -> None:
    """The global V2 section's own rules; the trend timeframes only when the global strategy is v2."""
    v2, v1 = gs.v2_strategy, gs.v1_strategy
    if v2.ema_fast_period >= v2.ema_slow_period and not bad(*(f"{V2_PATH}.{n}" for n in _EMA)):
        errors.append(
            f"{V2_PATH}.ema_fast_period: must be less than ema_slow_period ({v2.ema_slow_period}), "
            f"got {v2.ema_fast_period}"
        )
    if v2.stoch_rsi_oversold >= v2.stoch_rsi_overbought and not bad(*(f"{V2_PATH}.{n}" for n in _STOCH)):
        errors.append(
            f"{V2_PATH}.stoch_rsi_oversold: must be less than stoch_rsi_overbought "
            f"({render_number(v2.stoch_rsi_overbought)}), got {render_number(v2.stoch_rsi_oversold)}"
        )
    paths = (
        f"{V2_PATH}.trend_timeframes",
        f"{_V1_PATH}.signal_timeframe",
        f"{_V1_PATH}.indicator_timeframes",
    )
    if gs.strategy == "v2" and not bad(*paths):
        problem = _trend_problem(v2.trend_timeframes, v1.signal_timeframe, v1.indicator_timeframes)
        if problem is not None:
            errors.append(f"{V2_PATH}.trend_timeframes: {problem}, got {render_value(v2.trend_timeframes)}")


def check_pair_v2(errors: list[str], bad: Bad, key: str, o: PairOverrides, gs: GlobalSettings) -> None:
    """One pair's V2 rules: V2 keys on a V1 pair, EMA and StochRSI order, trend timeframes."""
    p = resolve_pair(key, o, gs)
    path = f"pairs.{key}"
    if p.strategy != "v2":
        errors.extend(
            f"{path}.{name}: only applies to strategy v2 pairs (this pair trades v1), "
            f"got {_shown(getattr(o, name))}"
            for name in V2_KEYS
            if getattr(o, name) is not None
        )
        return
    v2 = p.v2
    if v2 is None:
        return
    pair_paths = {n: f"{path}.{n}" for n in (*_EMA, *_STOCH, *_TRENDS)}
    if v2.ema_fast_period >= v2.ema_slow_period and not bad(*(pair_paths[n] for n in _EMA)):
        if o.ema_fast_period is not None:  # (both inherited: the global check reported it)
            errors.append(
                f"{path}.ema_fast_period: must be less than ema_slow_period ({v2.ema_slow_period}), "
                f"got {v2.ema_fast_period}"
            )
        elif o.ema_slow_period is not None:
            errors.append(
                f"{path}.ema_slow_period: must be greater than ema_fast_period ({v2.ema_fast_period}), "
                f"got {v2.ema_slow_period}"
            )
    own_stoch = o.stoch_rsi_oversold is not None or o.stoch_rsi_overbought is not None
    if (
        v2.stoch_rsi_oversold >= v2.stoch_rsi_overbought
        and own_stoch
        and not bad(*(pair_paths[n] for n in _STOCH))
    ):
        errors.append(
            f"{path}.stoch_rsi_oversold: must be less than stoch_rsi_overbought "
            f"({render_number(v2.stoch_rsi_overbought)}), got {render_number(v2.stoch_rsi_oversold)}"
        )
    inherited = (o.trend_timeframes, o.signal_timeframe, o.indicator_timeframes) == (None, None, None)
    if inherited and gs.strategy == "v2":
        return  # the global check reported it, once
    globals_ = (
        f"{V2_PATH}.trend_timeframes",
        f"{_V1_PATH}.signal_timeframe",
        f"{_V1_PATH}.indicator_timeframes",
    )
    if bad(*(pair_paths[n] for n in _TRENDS), *globals_):
        return
    problem = _trend_problem(v2.trend_timeframes, p.signal_timeframe, p.indicator_timeframes)
    if problem is not None:
        errors.append(f"{path}.trend_timeframes: {problem}, got {render_value(v2.trend_timeframes)}")


def check_btc_references(errors: list[str], pairs: Mapping[str, PairOverrides], gs: GlobalSettings) -> None:
    """Every listed V2 pair that follows a BTC reference needs that reference listed, enabled, with the
    filter's timeframe among its ``indicator_timeframes`` (that actor of it publishes the trend)."""
    resolved: dict[str, tuple[str, PairSettings, PairOverrides]] = {}
    for key, o in pairs.items():
        p = resolve_pair(key, o, gs)
        resolved[p.symbol] = (key, p, o)
    reported: set[str] = set()
    for key, p, o in resolved.values():
        v2 = p.v2
        if not p.enabled or p.strategy != "v2" or v2 is None or not v2.btc_correlation_filter_enabled:
            continue
        ref, tf = v2.btc_correlation_symbol, v2.btc_correlation_timeframe
        if ref == p.symbol:
            continue
        found = resolved.get(ref)
        if found is not None and found[1].enabled and tf in found[1].indicator_timeframes:
            continue
        own = o.btc_correlation_filter_enabled is not None
        where = (
            f"pairs.{key}.btc_correlation_filter_enabled"
            if own
            else f"{_FILTERS}.btc_correlation_filter_enabled"
        )
        if where in reported:
            continue
        reported.add(where)
        if found is None or not found[1].enabled:
            need = f"the pair {ref} listed under pairs and enabled"
        else:
            need = f"{tf} in {found[0]}'s indicator_timeframes ({', '.join(found[1].indicator_timeframes)})"
        errors.append(
            f"{where}: needs {need}: its {tf} actor publishes the trend {key} follows; "
            f"or set btc_correlation_filter_enabled: false, got true"
        )
