"""``nancemakina run`` (the bot itself is ``supervisor.run``, handed in) and ``nancemakina report``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..config import Config, ConfigError, load_config
from ..ops.logs import setup_logging
from .backtest import load_or_report, resolve_config_path

RunBot = Callable[[Config], int]
"""Runs the bot on a checked config until it stops; returns the exit code (``supervisor.run``)."""


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PATH", help="YAML config (default: config/config.yaml if present)"
    )


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="YAML config (its state_dir holds the ledger)")
    parser.add_argument("--out", metavar="DIR", help="report directory (default: reports/<timestamp>)")


def run_cli(args: argparse.Namespace, env: dict[str, str], run_bot: RunBot, err: TextIO = sys.stderr) -> int:
    """Load and check the config, set up logging, then ``run_bot(config)`` until it stops."""
    path = resolve_config_path(args.config, env)
    try:
        config = load_config(path, env=env)
        config.ensure_startable()
    except ConfigError as exc:
        for line in exc.errors:
            print(f"{path or '<defaults>'}: {line}", file=err)
        return 2
    secrets = [
        s.get_secret_value()
        for s in (config.api.binance_api_key, config.api.binance_api_secret)
        if s is not None
    ]
    lg = config.logging
    setup_logging(
        level=lg.level,
        file=config.log_file_path(),
        rotation_size_mb=lg.rotation_size_mb,
        backup_count=lg.rotation_backup_count,
        json=lg.json_format,
        secrets=secrets,
    )
    return run_bot(config)


def report_cli(
    args: argparse.Namespace, env: dict[str, str], out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Write the backtester's report files from the ledger."""
    from ..backtest.ledger_result import result_from_ledger  # noqa: PLC0415
    from ..backtest.report_files import render_summary, write_reports  # noqa: PLC0415

    path = resolve_config_path(args.config, env)
    config = load_or_report(path, env, err)
    if config is None:
        return 2
    db = config.state_path() / "ledger.sqlite3"
    if not db.is_file():
        print(f"error: no ledger at {db}; run the bot first (`nancemakina run`)", file=err)
        return 2
    result = result_from_ledger(db, config)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out) if args.out else Path("reports") / stamp
    paths, summary = write_reports(
        result, out_dir, title=f"nancemakina ledger — {db}", extra={"ledger": str(db)}
    )
    print(render_summary(summary, paths), file=out)
    return 0
