"""The backtest's progress callback, called at most about a hundred times per run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .account import SymbolRun

Progress = Callable[[float], None]
"""Called with the share of the run's time span done (0..1), at most about a hundred times per run."""


class Throttle:
    """Turns candle times into progress calls, one per percent at most."""

    def __init__(self, progress: Progress | None, start_ms: int, end_ms: int) -> None:
        self._progress = progress
        self._start = start_ms
        self._span = max(1, end_ms - start_ms)
        self._next = 0.0

    def __call__(self, at_ms: int) -> None:
        if self._progress is None:
            return
        share = (at_ms - self._start) / self._span
        if share >= self._next:
            self._next = share + 0.01
            self._progress(min(1.0, share))


def span(runs: Sequence[SymbolRun]) -> tuple[int, int]:
    """First and last open time over every run."""
    starts = [int(r.series.open_time[0]) for r in runs if len(r.series)]
    ends = [int(r.series.open_time[-1]) for r in runs if len(r.series)]
    return (min(starts, default=0), max(ends, default=0))
