"""``nancemakina check-config``: the pre-flight ``run`` makes, and each pair's effective settings.

Prints every error ``run`` would refuse to start on (exit 2), or the settings of the pairs ``run`` would
trade and the checks that need the exchange, named as skipped unless ``--online`` makes them (exit 0).
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..config import ConfigError, load_config
from ..config.check import render_check_config
from .backtest import resolve_config_path
from .preflight import preflight


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="YAML config (default: config/config.yaml if present)")
    parser.add_argument(
        "--online",
        action="store_true",
        help="also make the checks that need the exchange (it lists every pair, it accepts the key)",
    )


def check_config_cli(
    args: argparse.Namespace, env: dict[str, str], out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Exit 0 with the effective settings, or 2 with every error, one per line, as ``run`` prints them."""
    out = out or sys.stdout
    err = err or sys.stderr
    path = resolve_config_path(args.path, env)
    source = str(path) if path else "<defaults>"
    try:
        config = load_config(path, env=env)
    except ConfigError as exc:
        for error in exc.errors:
            print(f"{exc.source}: {error}", file=err)
        return 2
    checked = preflight(config, online=args.online)
    for error in checked.errors:
        print(f"{source}: {error}", file=err)
    if checked.errors:
        return 2
    render_check_config(config, out, pairs=checked.pairs)
    for check in checked.skipped:
        print(f"skipped (needs the exchange; `check-config --online` makes it): {check}", file=out)
    return 0
