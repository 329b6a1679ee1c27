"""The ``nancemakina`` command: one sub-command per job, each in its own module.

``run`` starts the bot the package declares under the ``nancemakina.bot`` entry point (``pyproject.toml``:
``supervisor.run``, the composition root), so the CLI never imports the tree it starts, and ``backtest``,
``shell`` or ``check-config`` never pay for loading it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .run import RunBot


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nancemakina",
        description="Binance Futures SMA-crossover bot as a supervised actor system.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from .backtest import add_arguments as add_backtest  # noqa: PLC0415 - keep start-up light

    add_backtest(sub.add_parser("backtest", help="backtest the strategy on kline CSV files"))

    from .check import add_check_arguments  # noqa: PLC0415

    add_check_arguments(
        sub.add_parser(
            "check-config", help="the pre-flight `run` makes: every error, or each pair's effective settings"
        )
    )

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


def package_version() -> str:
    """The installed distribution's version (``pyproject.toml``)."""
    try:
        return metadata.version("nancemakina")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None, *, run_bot: RunBot | None = None) -> int:
    """The ``nancemakina`` command; ``run_bot`` defaults to the ``nancemakina.bot`` entry point.

    Output cut short by its reader (``nancemakina check-config | head``) ends the command quietly, as
    SIGPIPE ends other commands: exit 141, no traceback."""
    try:
        return _main(argv, run_bot=run_bot)
    except BrokenPipeError:
        # Python would print an error flushing stdout at exit: point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE


def _installed_bot() -> RunBot:
    """``supervisor.run``, as the installed package declares it (entry point group ``nancemakina.bot``)."""
    found = metadata.entry_points(group="nancemakina.bot", name="run")
    if not found:
        raise SystemExit(
            "nancemakina is not installed: `pip install -e .` (no `nancemakina.bot` entry point)"
        )
    bot: RunBot = next(iter(found)).load()
    return bot


def _main(argv: Sequence[str] | None, *, run_bot: RunBot | None) -> int:
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

        return run_cli(args, env, run_bot or _installed_bot())
    if args.command == "report":
        from .report import report_cli  # noqa: PLC0415

        return report_cli(args, env)
    if args.command == "check-config":
        from .check import check_config_cli  # noqa: PLC0415

        return check_config_cli(args, env)
    return 2
