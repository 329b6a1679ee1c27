"""``nancemakina run``: check the config, set up logging, then run the bot (``supervisor.run``, handed in)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from ..config import Config, ConfigError, load_config
from ..ops.logs import setup_logging
from ..ops.state_lock import StateDirInUseError, StateLock
from .backtest import resolve_config_path

RunBot = Callable[[Config], int]
"""Runs the bot on a checked config until it stops; returns the exit code (``supervisor.run``)."""


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PATH", help="YAML config (default: config/config.yaml if present)"
    )


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
    try:  # first: a second bot on the same state directory must change nothing, not even its log
        lock = StateLock.acquire(config.state_path())
    except StateDirInUseError as exc:
        print(f"nancemakina run: {exc}", file=err)
        return 2
    with lock:
        return _run(config, run_bot)


def _run(config: Config, run_bot: RunBot) -> int:
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
