"""``nancemakina backtest``: load CSVs, apply the config, run the engine, write the reports."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..backtest.engine import AccountSettings, BacktestSetupError, SymbolRun, check_runs, run_backtest
from ..backtest.funding_files import load_funding_args
from ..backtest.kline_files import DataFileError, KlineSeries, load_klines, parse_data_arg
from ..backtest.report_files import render_summary, write_reports
from ..config import Config, ConfigError, load_config
from ..domain.model import ContractType
from ..exchange.instruments import ExchangeInfoError, SymbolCatalog

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..domain.funding import FundingHistory

DEFAULT_CONFIG = Path("config/config.yaml")


def resolve_config_path(arg: str | None, env: dict[str, str]) -> Path | None:
    """--config, else $NANCEMAKINA_CONFIG, else ./config/config.yaml when present, else built-in defaults."""
    if arg:
        return Path(arg)
    if env.get("NANCEMAKINA_CONFIG"):
        return Path(env["NANCEMAKINA_CONFIG"])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_or_report(path: Path | None, env: dict[str, str], err: TextIO) -> Config | None:
    """The config at ``path``, or None after printing every error (the caller exits 2)."""
    try:
        return load_config(path, env=env)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"{path or '<defaults>'}: {line}", file=err)
        return None


def _slice(series: KlineSeries, start_ms: int | None, end_ms: int | None) -> KlineSeries:
    if start_ms is None and end_ms is None:
        return series
    t = series.open_time
    lo = 0 if start_ms is None else int(t.searchsorted(start_ms, side="left"))
    hi = len(series) if end_ms is None else int(t.searchsorted(end_ms, side="right"))
    cut = slice(lo, hi)
    return dataclasses.replace(
        series,
        open_time=t[cut],
        open=series.open[cut],
        high=series.high[cut],
        low=series.low[cut],
        close=series.close[cut],
        volume=series.volume[cut],
        gaps=tuple(g for g in series.gaps if (start_ms or 0) <= g.after_open_time_ms <= (end_ms or 1 << 62)),
        archive=None if series.archive is None else series.archive.sliced(cut),
    )


def build_runs(
    config: Config,
    data: Sequence[tuple[str, Path]],
    catalog: SymbolCatalog | None = None,
    funding: Mapping[str, FundingHistory] | None = None,
) -> list[SymbolRun]:
    """Load each file and pair it with its symbol's effective settings, exchange filters and funding rates.

    Filters come from ``catalog`` (default: ``backtesting.exchange_info`` then the bundled ones); the
    symbols it had to synthesise are left in ``catalog.synthesised`` for the caller to announce. Funding
    rates (by symbol) default to the config's ``replay.funding_rates``.
    """
    catalog = catalog or SymbolCatalog(config.exchange_info_paths())
    if funding is None:
        funding = load_funding_args(config.funding_rate_args())
    runs = []
    bt = config.backtesting
    for symbol, path in data:
        settings = config.settings_for(symbol)
        series = load_klines(path, symbol=symbol)
        if series.timeframe != settings.signal_timeframe:
            raise DataFileError(
                path,
                None,
                f"holds {series.timeframe} candles but {symbol}'s signal_timeframe is "
                f"{settings.signal_timeframe}; give a {settings.signal_timeframe} file or change the setting",
            )
        series = _slice(series, bt.start_ms, bt.end_ms)
        spec = catalog.listing(symbol, settings.contract_type, series.close[:2000].tolist()).spec
        coin = settings.contract_type is ContractType.COIN_M
        runs.append(
            SymbolRun(
                series=series,
                spec=spec,
                params=settings.strategy_params(),
                leverage=settings.leverage,
                fixed_margin=(settings.margin_coin or 0.0) if coin else settings.margin_usdt,
                dynamic_sizing=settings.dynamic_sizing_enabled,
                risk_percent=settings.risk_percent,
                exits=settings.exit_params(),
                funding=funding.get(symbol),
            )
        )
    return runs


def account_settings(config: Config) -> AccountSettings:
    """The ``backtesting`` section as engine settings."""
    bt = config.backtesting
    return AccountSettings(
        fee_pct=bt.fee_percent,
        slippage_pct=bt.slippage_percent,
        initial_balance_usdt=bt.initial_balance_usdt,
        initial_balance_coin=tuple(sorted(bt.initial_balance_coin.items())),
    )


class ProgressBar:
    """A one-line bar redrawn in place on a terminal (``--progress always`` prints it anywhere)."""

    WIDTH = 30

    def __init__(self, out: TextIO, label: str) -> None:
        self._out = out
        self._label = label

    def __call__(self, share: float) -> None:
        filled = int(share * self.WIDTH)
        self._out.write(
            f"\rbacktest [{'#' * filled}{'.' * (self.WIDTH - filled)}] {share * 100:5.1f}% {self._label}"
        )
        self._out.flush()

    def done(self) -> None:
        self._out.write("\n")
        self._out.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the backtest sub-command."""
    parser.add_argument(
        "--data",
        action="append",
        metavar="[SYMBOL=]FILE",
        help="kline CSV (repeatable); symbol from the file name's leading token unless given. "
        "Default: the config's replay.data (the bundled BTC and ETH month)",
    )
    parser.add_argument(
        "--funding",
        action="append",
        metavar="[SYMBOL=]FILE",
        help="funding-rate CSV or zip from Binance's archive (repeatable; SYMBOL-fundingRate-YYYY-MM.*), "
        "for V2's funding filter. Default: the config's replay.funding_rates",
    )
    parser.add_argument(
        "--config", metavar="PATH", help="YAML config (default: config/config.yaml if present)"
    )
    parser.add_argument(
        "--out", metavar="DIR", help="report directory (default: backtest_results/<timestamp>)"
    )
    parser.add_argument(
        "--engine",
        choices=("batch", "incremental"),
        default="batch",
        help="batch (vectorised, default) or incremental (the live pair actor's code path, slow)",
    )
    parser.add_argument(
        "--exchange-info",
        action="append",
        default=[],
        metavar="FILE",
        help="saved GET /fapi/v1/exchangeInfo or /dapi/v1/exchangeInfo answer (JSON or .json.gz, repeatable) "
        "whose filters are used before the bundled ones (also: backtesting.exchange_info)",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip equity.png")
    parser.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr; auto: on a terminal, for runs over 1M klines or the incremental engine",
    )


def run_backtest_cli(
    args: argparse.Namespace, env: dict[str, str], out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Entry point; returns the process exit code (0 ok, 2 bad config or data)."""
    out = out or sys.stdout
    err = err or sys.stderr
    config_path = resolve_config_path(args.config, env)
    config = load_or_report(config_path, env, err)
    if config is None:
        return 2
    try:
        data = (
            [parse_data_arg(a) for a in args.data]
            if args.data
            else [(None, p) for p in config.replay_data_paths()]
        )
        resolved = [(sym or parse_data_arg(str(path))[0], Path(path)) for sym, path in data]
        symbols = [s for s, _ in resolved]
        if len(set(symbols)) != len(symbols):
            print(f"error: a symbol appears twice in --data: {', '.join(symbols)}", file=err)
            return 2
        started = time.perf_counter()
        catalog = SymbolCatalog([*config.exchange_info_paths(), *args.exchange_info])
        funding = load_funding_args(args.funding) if args.funding else None
        runs = build_runs(config, resolved, catalog, funding)
        check_runs(runs)
    except (DataFileError, ExchangeInfoError, BacktestSetupError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    for listing in catalog.synthesised.values():
        print(f"warning: {listing.warning()}", file=err)
    for run in runs:
        for gap in run.series.gaps:
            print(
                f"warning: {run.series.path}: gap of {gap.missing} candle(s) after open time "
                f"{gap.after_open_time_ms} (not filled)",
                file=err,
            )
    total = sum(len(r.series) for r in runs)
    show = args.progress == "always" or (
        args.progress == "auto" and err.isatty() and (total > 1_000_000 or args.engine == "incremental")
    )
    bar = ProgressBar(err, f"{total:,} klines") if show else None
    result = run_backtest(runs, account_settings(config), engine=args.engine, progress=bar)
    if bar is not None:
        bar.done()
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out) if args.out else Path("backtest_results") / stamp
    extra = {
        "symbols": symbols,
        "files": [str(p) for _, p in resolved],
        "gaps": sum(len(r.series.gaps) for r in runs),
        "config": str(config_path) if config_path else None,
        "exchange_info": list(catalog.files),
        "synthetic_filters": sorted(catalog.synthesised),
    }
    paths, summary = write_reports(
        result,
        out_dir,
        title="nancemakina backtest",
        extra=extra,
        plot=not args.no_plot,
    )
    summary["wall_seconds"] = time.perf_counter() - started
    print(render_summary(summary, paths), file=out)
    return 0
