"""``nancemakina run``: the state directory's lock, the pre-flight, logging, then the bot.

The lock comes first (``ops.state_lock``): a second ``run`` on the same state directory is refused in one
line naming the bot that holds it, before anything else is checked or touched.

The pre-flight is ``check-config``'s (``preflight``): the same errors in the same words, exit 2. What needs
the exchange is checked when the bot connects, and a failure there is one line naming the setting, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from ..config import Config, ConfigError, load_config
from ..ops.logs import setup_logging
from ..ops.state_lock import StateDirInUseError, StateLock
from .backtest import resolve_config_path
from .preflight import preflight

RunBot = Callable[[Config], int]
"""Runs the bot on a checked config until it stops; returns the exit code (``supervisor.run``)."""


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PATH", help="YAML config (default: config/config.yaml if present)"
    )


def run_cli(args: argparse.Namespace, env: dict[str, str], run_bot: RunBot, err: TextIO | None = None) -> int:
    """Load and check the config, set up logging, then ``run_bot(config)`` until it stops."""
    err = err or sys.stderr
    path = resolve_config_path(args.config, env)
    source = str(path) if path else "<defaults>"
    try:
        config = load_config(path, env=env)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"{exc.source}: {line}", file=err)
        return 2
    try:  # first: a second bot on the same state directory must change nothing, not even its log
        lock = StateLock.acquire(config.state_path())
    except StateDirInUseError as exc:
        print(f"nancemakina run: {exc}", file=err)
        return 2
    with lock:
        checked = preflight(config)  # the same checks and words as `check-config`
        for line in checked.errors:
            print(f"{source}: {line}", file=err)
        if checked.errors:
            return 2
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
