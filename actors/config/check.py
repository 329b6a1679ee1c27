"""How ``nancemakina check-config`` shows a config: header facts, then each pair's effective settings.

The checks themselves are the pre-flight ``run`` makes (``actors/cli/preflight.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import render_number

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    from .pair_settings import PairSettings
    from .schema import Config


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return render_number(value)


def _btc(p: PairSettings) -> str:
    v2 = p.v2
    if v2 is None or not v2.btc_correlation_filter_enabled:
        return "off"
    return f"{v2.btc_correlation_symbol} {v2.btc_correlation_timeframe} ema {v2.btc_correlation_ema_period}"


def _v2_rows(p: PairSettings) -> list[tuple[str, object]]:
    """V2's rows (``-`` on a V1 pair) and the exits' (both strategies)."""
    v2 = p.v2 if p.strategy == "v2" else None
    rows: list[tuple[str, object]] = [
        ("ema fast/slow", None if v2 is None else f"{v2.ema_fast_period}/{v2.ema_slow_period}"),
        ("trend tfs", None if v2 is None else v2.trend_timeframes or "off"),
        ("trend ema", None if v2 is None else v2.trend_ema_period),
        (
            "stoch rsi",
            None
            if v2 is None
            else (
                f"{v2.stoch_rsi_rsi_period}/{v2.stoch_rsi_stoch_period}/{v2.stoch_rsi_k_smoothing}/"
                f"{v2.stoch_rsi_d_smoothing} <{render_number(v2.stoch_rsi_overbought)} "
                f">{render_number(v2.stoch_rsi_oversold)}"
                if v2.stoch_rsi_enabled
                else "off"
            ),
        ),
        (
            "atr/stop/tp",
            None
            if v2 is None
            else f"{v2.atr_period}/{v2.stop_mode} {render_number(v2.sl_atr_multiplier)}x/"
            f"{render_number(v2.tp_atr_multiplier)}x",
        ),
        ("btc filter", None if v2 is None else _btc(p)),
        ("max funding", None if v2 is None else v2.max_funding_rate_threshold),
    ]
    ex = p.exits
    if ex is not None:
        ratio = ex.trailing_activation_risk_ratio
        armed = "once" if ratio is None else f"{render_number(ratio)}R"
        trailing = f"{render_number(ex.trailing_callback_rate_pct)}% at {armed}"
        rows += [
            ("trailing stop", trailing if ex.trailing_stop_enabled else "off"),
            (
                "time exit",
                f"{ex.max_trade_duration_candles} candles" if ex.time_based_exit_enabled else "off",
            ),
            ("reversal exit", ex.reversal_exit_enabled),
        ]
    return rows


def describe_pair(p: PairSettings) -> list[tuple[str, str]]:
    """(label, value) rows of one pair's effective settings, in reading order."""
    rows: list[tuple[str, object]] = [
        ("symbol", p.symbol),
        ("enabled", p.enabled),
        ("contract", str(p.contract_type)),
        ("leverage", p.leverage),
        ("margin mode", p.margin_mode),
        ("margin usdt", p.margin_usdt if p.contract_type == "USDT_M" else None),
        ("margin coin", p.margin_coin),
        ("contract size", p.contract_size),
        ("dynamic sizing", p.dynamic_sizing_enabled),
        ("risk % per trade", p.risk_percent),
        ("max concurrent", p.max_concurrent_trades),
        ("strategy", p.strategy),
        ("sma short/long", f"{p.sma_short_period}/{p.sma_long_period}"),
        ("timeframes", p.indicator_timeframes),
        ("signal timeframe", p.signal_timeframe),
        ("min interval min", p.min_signal_interval_minutes),
        ("tp/sl ratio", p.tp_sl_ratio),
        ("buffer candles", p.buffer_time_candles),
        ("pivot lookback", p.pivot_lookback_candles),
        ("volume filter", p.volume_filter_enabled),
        ("volume avg/ratio", f"{p.volume_avg_period}/{render_number(p.volume_threshold_ratio)}"),
        ("volatility filter", p.volatility_filter_enabled),
        (
            "bb period/std/min%",
            f"{p.bb_period}/{render_number(p.bb_std_dev)}/{render_number(p.bb_min_width_percentage)}",
        ),
        *_v2_rows(p),
    ]
    return [(label, _cell(value)) for label, value in rows]


def render_check_config(
    config: Config, out: TextIO, *, pairs: Mapping[str, PairSettings] | None = None
) -> None:
    """Print the effective configuration: header facts, then one table column per pair. Never secrets.

    ``pairs``: what ``run`` would trade (``trading_pairs``); when None, the enabled listed pairs."""
    source = str(config.config_path) if config.config_path else "(built-in defaults)"
    header = [
        ("config", source),
        ("mode", str(config.api.mode)),
        ("state_dir", str(config.state_path())),
        ("api key", _secret_status(config.api_key_source)),
        ("api secret", _secret_status(config.api_secret_source)),
    ]
    for label, value in header:
        print(f"{label}: {value}", file=out)
    listed = config.pair_settings()
    trading = dict(pairs) if pairs is not None else {s: p for s, p in listed.items() if p.enabled}
    disabled = {s: p for s, p in listed.items() if not p.enabled}
    origin = "" if listed or not trading else " (no pair configured: the replay.data symbols)"
    print(f"pairs: {len(trading)} to trade{origin}, {len(disabled)} disabled", file=out)
    pairs = {**trading, **disabled}
    if not pairs:
        return
    columns = [["pair", *(label for label, _ in describe_pair(next(iter(pairs.values()))))]]
    columns.extend([p.key, *(value for _, value in describe_pair(p))] for p in pairs.values())
    widths = [max(len(cell) for cell in column) for column in columns]
    for row in zip(*columns, strict=True):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)


def _secret_status(source: str | None) -> str:
    return f"set (from {source})" if source else "not set"
