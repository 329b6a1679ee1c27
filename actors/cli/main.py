"""The ``nancemakina`` command: one sub-command per job, each in its own module."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .run import RunBot


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nancemakina",
        description="Binance Futures SMA-crossover bot as a supervised actor system.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from .backtest import add_arguments as add_backtest  # noqa: PLC0415 - keep start-up light

    add_backtest(sub.add_parser("backtest", help="backtest the strategy on kline CSV files"))

    check = sub.add_parser("check-config", help="validate a config and print each pair's effective settings")
    check.add_argument("path", nargs="?", help="YAML config (default: config/config.yaml if present)")

    from .report import add_report_arguments  # noqa: PLC0415
    from .run import add_run_arguments  # noqa: PLC0415

    add_run_arguments(
        sub.add_parser("run", help="run the bot (default config: offline replay of bundled data)")
    )
    add_report_arguments(
        sub.add_parser("report", help="write decisions/trades/summary/equity from the ledger")
    )

    sub.add_parser(
        "shell", help="attach to the running daemon (see `nancemakina shell --help`)", add_help=False
    )
    sub.add_parser(
        "exchange",
        help="run the local Binance-compatible exchange (see `nancemakina exchange --help`)",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None, *, run_bot: RunBot) -> int:
    """The ``nancemakina`` command; ``run_bot`` is the composition root's ``run`` (``supervisor.py``)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    if args_list and args_list[0] == "shell":
        from .shell import run_shell_cli  # noqa: PLC0415

        return run_shell_cli(args_list[1:])
    if args_list and args_list[0] == "exchange":
        from .exchange import run_exchange_cli  # noqa: PLC0415

        code: int = run_exchange_cli(args_list[1:])
        return code
    args = _parser().parse_args(args_list)
    if args.command == "backtest":
        from .backtest import run_backtest_cli  # noqa: PLC0415

        return run_backtest_cli(args, env)
    if args.command == "run":
        from .run import run_cli  # noqa: PLC0415

        return run_cli(args, env, run_bot)
    if args.command == "report":
        from .report import report_cli  # noqa: PLC0415

        return report_cli(args, env)
    if args.command == "check-config":
        from ..config import run_check_config  # noqa: PLC0415
        from .backtest import resolve_config_path  # noqa: PLC0415

        path = resolve_config_path(args.path, env)
        return run_check_config(str(path) if path else None, sys.stdout, sys.stderr)
    return 2
