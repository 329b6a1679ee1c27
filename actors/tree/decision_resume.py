"""Where a restarted signal pair resumes deciding, and the candles it reads back to get there.

A pair actor that starts after a run before it traded its (symbol, timeframe) — a supervisor restart, a
reload, kill -9 and start again — resumes where the ledger's decisions of it end (``decided_through``): the
candles that closed after that and before this start are decided now, in order, so none is lost and none is
decided twice. The warm-up's history is extended back to a warm-up's length before that point, at most
``MAX_CATCH_UP`` candles (one klines request); only the newest of the missed candles may trade.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..domain.model import Kline

MAX_CATCH_UP = 1500
"""Candles a restarted pair reads back to decide what closed while it was down (one klines request)."""

DecidedThrough = Callable[[str, str], int | None]
"""(symbol, timeframe) → open time of the last candle a run decided for them (None: never)."""


class DecisionMarks:
    """``DecidedThrough`` for the whole process: the ledger's record, and the decisions told since.

    A pair restarted inside the process (a crash, ``restart PAIR``, a reload) must resume after its
    predecessor's last decision, but that decision may still be in the ledger's mailbox, not yet written:
    read from the ledger alone it would be decided again. So each incarnation notes its decisions here as it
    tells them (``note``), and a successor resumes after the later of the two.
    """

    def __init__(self, stored: DecidedThrough) -> None:
        self._stored = stored
        self._marks: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def note(self, symbol: str, timeframe: str, open_time_ms: int) -> None:
        with self._lock:
            key = (symbol, timeframe)
            self._marks[key] = max(open_time_ms, self._marks.get(key, open_time_ms))

    def __call__(self, symbol: str, timeframe: str) -> int | None:
        stored = self._stored(symbol, timeframe)
        with self._lock:
            told = self._marks.get((symbol, timeframe))
        return told if stored is None else stored if told is None else max(stored, told)


@dataclass(frozen=True, slots=True)
class Resumed:
    """A warm-up split where the previous run's decisions end."""

    known: list[Kline]
    """Decided before: fed as history."""
    missed: list[Kline]
    """Closed since: decided now, the newest of them live, the others ``late``."""


def resume_after(last: int | None, history: Sequence[Kline]) -> int | None:
    """``last``, the last candle a previous run decided, when candles closed after it (else None)."""
    return last if last is not None and history and last < history[-1].open_time_ms else None


def resumed(
    resume: int,
    history: list[Kline],
    *,
    warmup: int,
    tf_ms: int,
    read_range: Callable[[int, int], list[Kline]],
    warn: Callable[[str], None],
) -> Resumed:
    """Split ``history`` at ``resume``, first reading back (``read_range(first, last)``) so a warm-up's
    length of candles precedes it."""
    start = resume - warmup * tf_ms
    if history and history[0].open_time_ms > start:
        first = max(start, history[0].open_time_ms - MAX_CATCH_UP * tf_ms)
        if first > resume:
            warn(f"candles after {resume} until {first} are beyond the catch-up")
        history = [*read_range(first, history[0].open_time_ms - tf_ms), *history]
    return Resumed(
        known=[k for k in history if k.open_time_ms <= resume],
        missed=[k for k in history if k.open_time_ms > resume],
    )
