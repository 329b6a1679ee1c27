"""The shell's ``top``: ``ls`` polled every interval, busiest actors first, until ``q`` or Ctrl-C.

``top`` runs in the shell, not in the daemon: the server answers ``ls`` and the shell measures msgs/s
between polls (``top_rows``), redrawing the table in place on a terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from ..ops.control_commands import COMMANDS
from .control_client import CommandFailedError, ControlClient
from .shell_render import ACTOR_COLUMNS, render_table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_TOP_COLUMNS = ("name", *ACTOR_COLUMNS, "last_message_age_s")


def run_top(client: ControlClient, args: list[str], out: TextIO, *, as_json: bool) -> int:
    """``top [--once] [-n N] [--interval S]``: poll ``ls`` and redraw until done, ``q`` or Ctrl-C (0)."""
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
