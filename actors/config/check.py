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
