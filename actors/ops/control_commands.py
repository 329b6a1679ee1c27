"""The control socket's commands: what the daemon must answer (``ControlTarget``), the table, and dispatch.

``COMMANDS`` is the one list of commands, their usage and arity: the server checks requests against it,
``help`` answers from it and the shell completes from it. ``dispatch`` checks one request's arguments
(pairs in any spelling, timeframes, ``--limit``) and calls the matching ``ControlTarget`` method; a request
it refuses raises :class:`ControlError`, whose text is sent back as the error.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import api_symbol_for_key
from ..domain.model import TIMEFRAME_MS


class ControlTarget(Protocol):
    """What the control server asks of the daemon. Called from handler threads, concurrently: every method
    must be a thread-safe snapshot read (or a ``tell``/bounded ``ask`` for the commands that act), return
    JSON-able data, never secrets, and raise :class:`ControlError` for a request it refuses."""

    def actor_tree(self) -> list[dict[str, Any]]:
        """Rows ``{"name", "kind", "parent", "state", "mailbox", "msgs_per_s", "messages", "restarts",
        "uptime_s", "last_message_age_s"}`` (+ optional ``"symbol"``); ``parent`` is another row's name or
        None."""
        ...

    def inspect(self, symbol: str, timeframe: str | None) -> dict[str, Any]:
        """``{"symbol", "timeframes": [{"timeframe", "sma_short", "sma_long", "side", "last_klines",
        "pending", "last_decision", "warm", "unrepaired_gap"}], "paused", "parked", "position"}``."""
        ...

    def positions(self) -> list[dict[str, Any]]: ...

    def orders(self) -> list[dict[str, Any]]: ...

    def decisions(self, symbol: str | None, limit: int) -> list[dict[str, Any]]:
        """Newest last, at most ``limit`` rows."""
        ...

    def restart_pair(self, symbol: str) -> dict[str, Any]: ...

    def pause_pair(self, symbol: str) -> dict[str, Any]: ...

    def resume_pair(self, symbol: str) -> dict[str, Any]: ...

    def reload(self) -> dict[str, Any]: ...

    def health(self) -> dict[str, Any]:
        """``{"status": "ok" | "degraded" | "failing", "checks": {...}}``."""
        ...

    def threads(self) -> dict[str, Any]:
        """Where the process's CPU time went, per kind of thread: ``{"cpu_affinity", "cpu_affinity_auto",
        "gil_switch_interval_ms", "kinds": [{"kind", "threads", "cpu_s", "wait_s", "wakeups",
        "wait_per_wakeup_us", "cpus"}]}``."""
        ...


class ControlError(Exception):
    """A request refused for a reason the operator can fix (unknown pair, bad argument); sent as its text."""


@dataclass(frozen=True, slots=True)
class CommandInfo:
    name: str
    usage: str
    summary: str
    arity: tuple[int, int] = (0, 0)
    """Fewest and most arguments."""
    details: tuple[str, ...] = ()
    """What ``help`` says beyond the summary: options, columns, units."""


DEFAULT_DECISIONS = 20
MAX_DECISIONS = 1000
_PAIR = "PAIR: BTCUSDT, btcusdt, BTC_USDT or BTCUSD_PERP"
_TIMES = "times: UTC, on the exchange's clock (in a replay, its simulated clock)"
COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo(
        "ls",
        "ls",
        "every actor: state, mailbox depth, msgs/s, restarts, uptime",
        details=(
            "RESTARTS: after a failure, plus the ones asked for with restart PAIR (on the pair's row)",
            "IDLE: time since the actor last handled a message",
        ),
    ),
    CommandInfo(
        "top",
        "top [--once] [-n N] [--interval S]",
        "ls every second, busiest first (q quits)",
        details=(
            "-n N: stop after N refreshes; --once: one table, then exit (-n 1)",
            "--interval S: seconds between refreshes (default 1); q or Ctrl-C quits",
        ),
    ),
    CommandInfo(
        "inspect",
        "inspect PAIR [TF]",
        "SMAs, side, klines, pending signal, decision, position",
        (1, 2),
        details=(f"{_PAIR}; TF: one of the pair's timeframes (default: all)", _TIMES),
    ),
    CommandInfo("positions", "positions", "open positions from the ledger", details=(_TIMES,)),
    CommandInfo("orders", "orders", "open orders from the ledger", details=(_TIMES,)),
    CommandInfo(
        "decisions",
        "decisions [PAIR] [--limit N]",
        "latest strategy decisions, newest last",
        (0, 3),
        details=(f"--limit N (or -n N): 1 to {MAX_DECISIONS}, default {DEFAULT_DECISIONS}", _TIMES),
    ),
    CommandInfo("restart", "restart PAIR", "restart one pair's actors (fresh state, budget reset)", (1, 1)),
    CommandInfo("pause", "pause PAIR", "stop opening trades on a pair (positions stay protected)", (1, 1)),
    CommandInfo("resume", "resume PAIR", "undo pause", (1, 1)),
    CommandInfo("reload", "reload", "re-read the config file and apply what changed"),
    CommandInfo("health", "health", "overall status and each check"),
    CommandInfo("threads", "threads", "CPU and time waiting for a CPU per kind of thread, and their CPUs"),
    CommandInfo("help", "help", "this list"),
)
SHELL_ONLY = frozenset({"top"})
"""Commands the shell runs itself (``top`` polls ``ls``); the server answers them with a pointer."""
_BY_NAME = {c.name: c for c in COMMANDS}
_PAIR_TEXT = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)?")


def normalize_pair(text: str) -> str:
    """``BTCUSDT``, ``btcusdt`` and the key ``BTC_USDT`` all mean ``BTCUSDT``; ``BTCUSD_PERP`` stays."""
    key = text.strip().upper()
    if not _PAIR_TEXT.fullmatch(key):
        raise ControlError(f"invalid pair {text!r}: use BTCUSDT, btcusdt, BTC_USDT or BTCUSD_PERP")
    return api_symbol_for_key(key)


def unknown_command(word: str) -> str:
    names = sorted(_BY_NAME)
    close = difflib.get_close_matches(word.lower(), names, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown command {word!r}{hint} (commands: {', '.join(names)})"


def dispatch(target: ControlTarget, cmd: str, args: list[str]) -> Any:
    """Run one request against ``target``; argument problems raise :class:`ControlError`."""
    info = _BY_NAME.get(cmd)
    if info is None:
        raise ControlError(unknown_command(cmd))
    if cmd in SHELL_ONLY:
        raise ControlError(f"{cmd!r} runs in `nancemakina shell` (it polls 'ls')")
    low, high = info.arity
    if not low <= len(args) <= high:
        raise ControlError(f"usage: {info.usage}")
    match cmd:
        case "ls":
            return target.actor_tree()
        case "inspect":
            return target.inspect(normalize_pair(args[0]), _timeframe(args[1]) if len(args) == 2 else None)
        case "positions":
            return target.positions()
        case "orders":
            return target.orders()
        case "decisions":
            return target.decisions(*_decisions_args(args))
        case "restart":
            return target.restart_pair(normalize_pair(args[0]))
        case "pause":
            return target.pause_pair(normalize_pair(args[0]))
        case "resume":
            return target.resume_pair(normalize_pair(args[0]))
        case "reload":
            return target.reload()
        case "health":
            return target.health()
        case "threads":
            return target.threads()
        case _:  # help: answered here so it always matches the table above
            return [
                {"command": c.name, "usage": c.usage, "summary": c.summary, "details": list(c.details)}
                for c in COMMANDS
            ]


def _timeframe(text: str) -> str:
    if text not in TIMEFRAME_MS:
        raise ControlError(f"unknown timeframe {text!r} (valid: {', '.join(TIMEFRAME_MS)})")
    return text


def _decisions_args(args: list[str]) -> tuple[str | None, int]:
    symbol: str | None = None
    limit = DEFAULT_DECISIONS
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word in {"--limit", "-n"} and rest:
            value = rest.pop(0)
        elif word.startswith("--limit="):
            value = word.partition("=")[2]
        elif symbol is None and not word.startswith("-"):
            symbol = normalize_pair(word)
            continue
        else:
            raise ControlError(f"usage: {_BY_NAME['decisions'].usage}")
        if not value.isdigit() or not 1 <= int(value) <= MAX_DECISIONS:
            raise ControlError(f"--limit must be a whole number from 1 to {MAX_DECISIONS}, got {value!r}")
        limit = int(value)
    return symbol, limit
