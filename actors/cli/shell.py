"""``nancemakina shell``: attach to the running daemon's control socket; one command (``-c``) or a prompt.

Exit codes: 0 done, 1 the daemon refused the command, 2 no usable connection (or bad shell arguments).
Everything shown comes from the server, which redacts secrets before anything leaves the daemon.
This module reads the arguments and runs the prompt; the connection is ``control_client``'s, the text
``shell_render``'s and ``top`` is ``shell_top``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..domain.model import TIMEFRAME_MS
from ..ops.control_commands import COMMANDS
from .control_client import CommandFailedError, ControlClient, ShellConnectionError
from .shell_render import render
from .shell_top import run_top

if TYPE_CHECKING:
    from collections.abc import Callable

PROMPT = "nancemakina> "
HISTORY_FILE = "~/.nancemakina_history"
EXIT_COMMANDS = frozenset({"exit", "quit"})
_SYMBOL_IN_NAME = re.compile(r"\[([A-Z0-9_]+)[\],]")


def run_shell_cli(argv: list[str]) -> int:
    """``nancemakina shell [--config PATH | --socket PATH] [-c CMD] [--json]``."""
    out, err = sys.stdout, sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        path, origin = _socket_path(args.socket, args.config)
    except Exception as exc:
        print(f"error: {exc}", file=err)
        return 2
    client = ControlClient(path, origin=origin)
    try:
        hello = client.connect()
        if args.command is not None:
            return run_line(client, args.command, out, as_json=args.json)
        return _interactive(client, hello, out, as_json=args.json)
    except ShellConnectionError as exc:
        print(f"error: {exc}", file=err)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()


def run_line(client: ControlClient, line: str, out: TextIO, *, as_json: bool = False) -> int:
    """Run one command line; errors go to stderr as ``error: ...``. Connection errors propagate."""
    try:
        words = shlex.split(line)
        if not words:
            return 0
        cmd, args = words[0].lower(), words[1:]
        if cmd == "top":
            return run_top(client, args, out, as_json=as_json)
        result = client.call(cmd, args)
    except (CommandFailedError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if as_json:
        out.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(render(cmd, result))
    out.flush()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nancemakina shell", description="Look inside the running daemon and act on one pair."
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", metavar="PATH", help="config whose control.socket_path to use")
    where.add_argument("--socket", metavar="PATH", help="control socket path (overrides the config)")
    parser.add_argument("-c", dest="command", metavar="CMD", help='run one command and exit, e.g. -c "ls"')
    parser.add_argument("--json", action="store_true", help="print raw JSON results instead of tables")
    return parser


def _socket_path(socket_arg: str | None, config_arg: str | None) -> tuple[Path, str]:
    if socket_arg:
        return Path(socket_arg).expanduser(), "from --socket"
    from ..config import load_config  # noqa: PLC0415
    from .backtest import resolve_config_path  # noqa: PLC0415 - only when no --socket

    config_path = resolve_config_path(config_arg, dict(os.environ))
    origin = f"control.socket_path of {config_path}" if config_path else "built-in default config"
    return load_config(config_path).control_socket_path(), origin


def _interactive(client: ControlClient, hello: dict[str, Any], out: TextIO, *, as_json: bool) -> int:
    symbols: list[str] = []
    with contextlib.suppress(ShellConnectionError, CommandFailedError):
        symbols = actor_symbols(client.call("ls", []))
    save_history = _setup_readline(symbols)
    out.write(f"connected to nancemakina pid {hello.get('pid')} on {client.path}; 'help' lists commands\n")
    try:
        while True:
            try:
                line = input(PROMPT)
            except EOFError:
                out.write("\n")
                return 0
            except KeyboardInterrupt:
                out.write("\n")
                continue
            if line.strip().lower() in EXIT_COMMANDS:
                return 0
            try:
                run_line(client, line, out, as_json=as_json)
            except ShellConnectionError as exc:
                print(f"error: {exc} (the next command reconnects)", file=sys.stderr)
            except KeyboardInterrupt:
                out.write("\n")
                client.close()  # an answer may still be in flight: start the next command afresh
    finally:
        if save_history is not None:
            save_history()


def actor_symbols(rows: list[dict[str, Any]]) -> list[str]:
    """Pair symbols named in ``ls`` rows (a ``symbol`` field, or ``Kind[SYMBOL,...]`` in the name)."""
    found: set[str] = set()
    for row in rows:
        match = _SYMBOL_IN_NAME.search(str(row.get("name", "")))
        symbol = row.get("symbol") or (match.group(1) if match else None)
        if symbol:
            found.add(str(symbol))
    return sorted(found)


def _setup_readline(symbols: list[str]) -> Callable[[], None] | None:
    try:
        import readline  # noqa: PLC0415 - absent on some platforms; the prompt works without it
    except ImportError:
        return None
    history = Path(HISTORY_FILE).expanduser()
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    readline.set_history_length(1000)
    commands = sorted({c.name for c in COMMANDS} | EXIT_COMMANDS)

    def complete(text: str, state: int) -> str | None:
        before = readline.get_line_buffer()[: readline.get_begidx()].split()
        if not before:
            pool = commands
        elif before[0] == "inspect" and len(before) == 2:
            pool = list(TIMEFRAME_MS)
        else:
            pool = symbols
        matches = [f"{word} " for word in pool if word.lower().startswith(text.lower())]
        return matches[state] if state < len(matches) else None

    readline.set_completer(complete)
    readline.set_completer_delims(" \t")
    binding = "bind ^I rl_complete" if "libedit" in (readline.__doc__ or "") else "tab: complete"
    readline.parse_and_bind(binding)

    def save() -> None:
        with contextlib.suppress(OSError):
            readline.write_history_file(history)

    return save
