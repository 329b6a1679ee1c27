"""``nancemakina shell``: attach to the running daemon's control socket; one command (``-c``) or a prompt.

Exit codes: 0 done, 1 the daemon refused the command, 2 no usable connection (or bad shell arguments).
Everything shown comes from the server, which redacts secrets before anything leaves the daemon.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import shlex
import socket
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..domain.model import TIMEFRAME_MS
from ..ops.control_commands import COMMANDS
from ..ops.control_protocol import MAX_LINE_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PROMPT = "nancemakina> "
HISTORY_FILE = "~/.nancemakina_history"
EXIT_COMMANDS = frozenset({"exit", "quit"})
_SYMBOL_IN_NAME = re.compile(r"\[([A-Z0-9_]+)[\],]")
_ACTOR_COLUMNS = ("kind", "state", "mailbox", "msgs_per_s", "messages", "restarts", "uptime_s")
_TOP_COLUMNS = ("name", *_ACTOR_COLUMNS, "last_message_age_s")
_UNDER = {"": "", "├─ ": "│  ", "└─ ": "   "}
"""Indent below a tree row, by the branch glyph that row was drawn with."""
_LS_HEADERS = {
    "msgs_per_s": "MSG/S",
    "uptime_s": "UPTIME",
    "last_message_age_s": "IDLE",
    "cpu_s": "CPU S",
    "wait_s": "WAIT S",
    "wait_per_wakeup_us": "µS WAIT/WAKE",
}
_SECONDS_PLAIN = frozenset({"cpu_s", "wait_s", "wait_per_wakeup_us"})
"""``threads`` columns shown as plain numbers (sub-second CPU totals), not as ``1m02s`` durations."""


class ShellConnectionError(Exception):
    """Nothing usable answers on the socket (exit code 2)."""


class CommandFailedError(Exception):
    """The daemon answered the command with an error (exit code 1)."""


class ControlClient:
    """One connection to the control socket, reopened lazily when the daemon dropped it while idle."""

    def __init__(self, path: Path, *, origin: str, timeout_s: float = 60.0) -> None:
        self.path = path
        self.origin = origin
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._lines: Any = None
        self._next_id = 0

    def connect(self) -> dict[str, Any]:
        """Open the socket and read the server's greeting (or its refusal)."""
        self.close()
        where = f"looked at {self.path} ({self.origin})"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout_s)
        try:
            sock.connect(str(self.path))
        except PermissionError:
            sock.close()
            message = f"permission denied: run the shell as the daemon's user or root; {where}"
            raise ShellConnectionError(message) from None
        except OSError as exc:
            sock.close()
            reason = exc.strerror or type(exc).__name__
            raise ShellConnectionError(f"cannot connect ({reason}): is the daemon running? {where}") from None
        self._sock, self._lines = sock, sock.makefile("rb")
        hello = self._read()
        if not hello.get("ok"):
            self.close()
            raise ShellConnectionError(f"the daemon refused the connection: {hello.get('error')}")
        result: dict[str, Any] = hello.get("result") or {}
        return result

    def call(self, cmd: str, args: list[str]) -> Any:
        """Send one command; its result, or :class:`CommandFailedError` with the daemon's message."""
        if self._sock is None or self._dropped():
            self.connect()
        assert self._sock is not None
        self._next_id += 1
        request = json.dumps({"id": self._next_id, "cmd": cmd, "args": args}).encode() + b"\n"
        try:
            self._sock.sendall(request)
        except OSError as exc:
            self.close()
            raise ShellConnectionError(f"lost the connection to the daemon: {exc}") from None
        response = self._read()
        in_step = response.get("id") == self._next_id
        if not response.get("ok"):
            if not in_step:
                self.close()
            raise CommandFailedError(str(response.get("error")))
        if not in_step:
            self.close()
            raise ShellConnectionError(f"out-of-step answer from {self.path}")
        return response.get("result")

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._lines = None

    def _read(self) -> dict[str, Any]:
        try:
            line = self._lines.readline(MAX_LINE_BYTES * 64)
        except OSError as exc:
            self.close()
            raise ShellConnectionError(f"no answer from the daemon: {exc}") from None
        if not line:
            self.close()
            raise ShellConnectionError("the daemon closed the connection")
        try:
            message = json.loads(line)
        except ValueError:
            self.close()
            raise ShellConnectionError(f"not a nancemakina control socket: {self.path}") from None
        if not isinstance(message, dict):
            raise ShellConnectionError(f"not a nancemakina control socket: {self.path}")
        return message

    def _dropped(self) -> bool:
        """The server closed an idle connection (or said something unasked): reconnect before sending."""
        assert self._sock is not None
        self._sock.setblocking(False)  # noqa: FBT003 - socket's own API; a timeout socket would wait first
        try:
            self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self._sock.settimeout(self._timeout_s)
        return True  # end of stream, or bytes nobody asked for


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
            return _top(client, args, out, as_json=as_json)
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


def _top(client: ControlClient, args: list[str], out: TextIO, *, as_json: bool) -> int:
    iterations, interval = _top_options(args)
    live = iterations != 1
    clear = live and out.isatty()
    previous: dict[str, tuple[int, float]] = {}
    count = 0
    with _keys(sys.stdin if live else None) as quit_pressed:
        try:
            while True:
                rows = client.call("ls", [])
                now = time.monotonic()
                ranked = top_rows(rows, previous, now)
                previous = {r["name"]: (int(r.get("messages") or 0), now) for r in rows}
                if as_json:
                    out.write(json.dumps(ranked, ensure_ascii=False) + "\n")
                else:
                    stamp = time.strftime("%H:%M:%S")
                    header = f"nancemakina top  {stamp}  {len(rows)} actors  (q or Ctrl-C quits)\n"
                    out.write(
                        ("\x1b[H\x1b[2J" if clear else "")
                        + header
                        + render_table(ranked, _TOP_COLUMNS, only=True)
                    )
                out.flush()
                count += 1
                if (iterations is not None and count >= iterations) or quit_pressed(interval):
                    return 0
        except KeyboardInterrupt:
            out.write("\n")
            return 0


def _top_options(args: list[str]) -> tuple[int | None, float]:
    usage = CommandFailedError(f"usage: {next(c.usage for c in COMMANDS if c.name == 'top')}")
    iterations: int | None = None
    interval = 1.0
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word == "--once":
            iterations = 1
            continue
        value = _number(rest.pop(0)) if word in {"-n", "--interval"} and rest else None
        if value is None or value < 0 or (word == "-n" and (value < 1 or not value.is_integer())):
            raise usage
        if word == "-n":
            iterations = int(value)
        else:
            interval = value
    return iterations, interval


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@contextlib.contextmanager
def _keys(stdin: TextIO | None) -> Iterator[Callable[[float], bool]]:
    """``quit_pressed(timeout)``: waits up to ``timeout`` seconds, True once ``q`` is typed on a terminal."""
    if stdin is None or not stdin.isatty():

        def wait(timeout: float) -> bool:
            time.sleep(timeout)
            return False

        yield wait
        return
    import termios  # noqa: PLC0415 - POSIX terminals only
    import tty  # noqa: PLC0415

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def quit_pressed(timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if select.select([fd], [], [], left)[0] and os.read(fd, 1).lower() == b"q":
                return True
        return False

    try:
        yield quit_pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def top_rows(rows: list[dict[str, Any]], previous: dict[str, tuple[int, float]], now: float) -> list[Any]:
    """Rows with msgs/s measured between polls when possible, busiest mailbox first, then msgs/s."""
    ranked = []
    for row in rows:
        seen = previous.get(row.get("name", ""))
        messages = int(row.get("messages") or 0)
        if seen is not None and now > seen[1] and messages >= seen[0]:
            row = {**row, "msgs_per_s": (messages - seen[0]) / (now - seen[1])}  # noqa: PLW2901
        ranked.append(row)
    return sorted(ranked, key=lambda r: (-(r.get("mailbox") or 0), -(r.get("msgs_per_s") or 0.0)))


# --- rendering ---


def render(cmd: str, result: Any) -> str:
    """Human text for a command's result."""
    if cmd == "ls":
        return render_actor_tree(result)
    if cmd == "inspect":
        return render_inspect(result)
    if cmd in {"positions", "orders", "decisions"}:
        return render_table(result, empty=f"(no {cmd})")
    if cmd == "help":
        lines = [f"  {c['usage']:<36} {c['summary']}" for c in result]
        return "\n".join([*lines, f"  {'exit | quit | Ctrl-D':<36} leave the shell"]) + "\n"
    if cmd == "health":
        checks = result.get("checks") or {}
        return f"status: {result.get('status')}\n" + "".join(
            f"  {k}: {_cell(v)}\n" for k, v in checks.items()
        )
    if cmd == "threads":
        cpus = result.get("cpu_affinity")
        head = (
            f"cpu_affinity: {', '.join(map(str, cpus)) if cpus else 'unset (every CPU)'}   "
            f"GIL switch interval: {_cell(result.get('gil_switch_interval_ms'))} ms\n"
            "totals since each thread started; WAIT = runnable but waiting for a CPU\n"
        )
        columns = ("kind", "threads", "cpu_s", "wait_s", "wakeups", "wait_per_wakeup_us", "cpus")
        return head + render_table(result.get("kinds") or [], columns, only=True)
    if isinstance(result, dict):
        return "".join(f"{k}: {_cell(v)}\n" for k, v in result.items())
    return f"{_cell(result)}\n"


def render_actor_tree(rows: list[dict[str, Any]]) -> str:
    """The actor table with names indented under their parents (supervisor → pairs → children)."""
    names = {r.get("name") for r in rows}
    children: dict[object, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        children[row.get("parent") if row.get("parent") in names else None].append(row)
    ordered: list[dict[str, Any]] = []
    seen: set[object] = set()

    def walk(row: dict[str, Any], indent: str, branch: str) -> None:
        if row.get("name") in seen:
            return
        seen.add(row.get("name"))
        ordered.append({**row, "actor": f"{indent}{branch}{row.get('name')}"})
        kids = children.get(row.get("name"), [])
        below = indent + _UNDER[branch]
        for i, kid in enumerate(kids):
            walk(kid, below, "└─ " if i == len(kids) - 1 else "├─ ")

    for root in children[None]:
        walk(root, "", "")
    return render_table(
        ordered, ("actor", *_ACTOR_COLUMNS, "last_message_age_s"), only=True, empty="(no actors)"
    )


def render_inspect(data: dict[str, Any]) -> str:
    flags = f"paused: {_cell(data.get('paused'))}   parked: {_cell(data.get('parked'))}"
    position = data.get("position")
    lines = [f"{data.get('symbol')}   {flags}", f"position: {_cell(position) if position else 'flat'}"]
    for tf in data.get("timeframes") or []:
        warm = "warm" if tf.get("warm") else "warming up"
        gap = "UNREPAIRED GAP" if tf.get("unrepaired_gap") else "no gap"
        lines.append(
            f"{tf.get('timeframe')}  {warm}  {gap}  side {_cell(tf.get('side'))}  "
            f"sma_short {_cell(tf.get('sma_short'))}  sma_long {_cell(tf.get('sma_long'))}"
        )
        lines.append(f"    pending: {_cell(tf.get('pending'))}")
        lines.append(f"    last decision: {_cell(tf.get('last_decision'))}")
        klines = tf.get("last_klines") or []
        if klines:
            table = render_table(klines if isinstance(klines[0], dict) else [{"kline": k} for k in klines])
            lines.extend(f"    {row}" for row in table.splitlines())
    return "\n".join(lines) + "\n"


def render_table(
    rows: list[Any], columns: tuple[str, ...] = (), *, only: bool = False, empty: str = "(none)"
) -> str:
    """Aligned columns: ``columns`` first, then (unless ``only``) other keys in first-seen order."""
    if not rows:
        return empty + "\n"
    extra = [] if only else [k for row in rows for k in row]
    keys = list(dict.fromkeys([*columns, *extra]))
    cells = [[_cell(row.get(k), k) for k in keys] for row in rows]
    numeric = [all(isinstance(row.get(k), int | float | type(None)) for row in rows) for k in keys]
    headers = [_LS_HEADERS.get(k, k.upper()) for k in keys]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        parts = (v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(c) for c in cells)]) + "\n"


def _cell(value: Any, key: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in _SECONDS_PLAIN and isinstance(value, int | float):
        return f"{value:.3f}" if key != "wait_per_wakeup_us" else f"{value:.1f}"
    if key.endswith("_s") and isinstance(value, int | float) and key != "msgs_per_s":
        return _duration(float(value))
    if isinstance(value, float):
        return f"{value:.1f}" if key == "msgs_per_s" else f"{value:.10g}"
    if isinstance(value, dict):
        return "  ".join(f"{k}={_cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value) or "-"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
    return f"{hours // 24}d{hours % 24:02d}h"
