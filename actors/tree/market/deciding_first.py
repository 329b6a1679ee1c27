"""``DecidingFirst``: at a candle close, the candles pairs decide on reach their pairs before the ones only
indicators read.

At a close the market-data reader tells every candle of that instant to its pair actor, and all of them share
one CPU and the GIL. With 590 symbols × 5 timeframes a 1h close is 2,950 candles; told in arrival order,
each 1m pair's decision waits behind the higher timeframes' indicator work read before its frame
(``bench/universe.py``: the last decision of a 5-minute close came 330 ms after its first frame, against
140 ms at a plain minute close).

No decision at close T reads a candle of another timeframe that closes at T: a decision reads the
higher-timeframe candles closed at or before its own candle's open (``actors/domain``: the same-instant
rule). So an indicator-only candle of close T is held back while some deciding candle of T has not been
told yet, and told as soon as the last one is, or after ``max_hold_s`` whatever arrived (a deciding key
under repair, a connection that lags). A key's candles keep their order: a held candle goes out before
anything later of its key (``admit`` returns it first, and ``take`` gives it up before a repair).

Not thread-safe: the market stream calls it under its own lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from ...domain.model import TIMEFRAME_MS, Kline

MAX_HOLD_S = 0.25
"""The longest an indicator-only candle waits for its close's deciding candles (a quarter of the shortest
Binance frame interval: far inside the next decision, a timeframe later)."""
FORGET_AFTER_S = 60.0
"""A close's counts are kept this long after it began, for deciding candles that come late."""

Held = tuple[Kline, int]
"""A held candle and when its frame was read (``perf_counter_ns``)."""


def close_of(kline: Kline) -> int:
    """The close time (ms) of a candle: when its interval ends."""
    return kline.open_time_ms + TIMEFRAME_MS[kline.timeframe]


@dataclass(slots=True)
class _Close:
    expected: int
    since: float
    told: int = 0
    held: list[Held] = field(default_factory=list)


class DecidingFirst:
    """Holds indicator-only candles of a close until its deciding candles are told (module docstring)."""

    def __init__(
        self,
        deciding: Callable[[int], int],
        *,
        max_hold_s: float = MAX_HOLD_S,
        clock: Callable[[], float] = time.monotonic,
        schedule: Callable[[float], object] | None = None,
    ) -> None:
        """``deciding(close_ms)``: how many subscribed deciding keys have a candle closing at ``close_ms``;
        ``schedule(delay_s)``: called when a close first holds a candle, to call ``overdue`` after
        ``delay_s`` (on the reader's loop) should nothing else release it."""
        self._deciding = deciding
        self._schedule = schedule
        self.max_hold_s = max_hold_s
        self._clock = clock
        self._closes: dict[int, _Close] = {}
        self._keys: set[tuple[str, str]] = set()
        """Keys with a candle held (one at most: a later candle of theirs releases it first)."""
        self.held_total = 0
        """Candles held back so far (for the board)."""

    def admit(self, kline: Kline, received_ns: int) -> list[Held]:
        """An indicator-only candle: [] when it is held back (its close's deciding candles are not all told
        yet), else what to tell now, in order: its key's earlier held candle (if any), then it."""
        key = (kline.symbol, kline.timeframe)
        if key in self._keys:  # its earlier candle is still held: both go now, in order
            return [*self.take((key,)), (kline, received_ns)]
        close = self._close(close_of(kline))
        if close.told < close.expected and self._clock() - close.since <= self.max_hold_s:
            if not close.held and self._schedule is not None:
                self._schedule(close.since + self.max_hold_s - self._clock() + 0.001)
            close.held.append((kline, received_ns))
            self._keys.add(key)
            self.held_total += 1
            return []
        return [(kline, received_ns)]

    def told(self, kline: Kline) -> list[Held]:
        """A deciding candle was told its pair; returns the held candles now due, in arrival order."""
        close = self._close(close_of(kline))
        close.told += 1
        if close.told < close.expected or not close.held:
            return []
        return self._release(close)

    def overdue(self) -> list[Held]:
        """Held candles whose close began more than ``max_hold_s`` ago, in arrival order."""
        now = self._clock()
        due: list[Held] = []
        for close in self._closes.values():
            if close.held and now - close.since > self.max_hold_s:
                due.extend(self._release(close))
        return due

    def take(self, keys: Collection[tuple[str, str]]) -> list[Held]:
        """The held candles of ``keys`` (about to be repaired, unsubscribed, or overtaken by a later candle
        of theirs), removed from the hold, in arrival order."""
        if not any(k in self._keys for k in keys):
            return []
        taken: list[Held] = []
        for close in self._closes.values():
            mine = [h for h in close.held if (h[0].symbol, h[0].timeframe) in keys]
            if mine:
                taken.extend(mine)
                close.held = [h for h in close.held if (h[0].symbol, h[0].timeframe) not in keys]
        self._forget(taken)
        return taken

    def _release(self, close: _Close) -> list[Held]:
        due, close.held = close.held, []
        self._forget(due)
        return due

    def _forget(self, released: list[Held]) -> None:
        self._keys.difference_update((kline.symbol, kline.timeframe) for kline, _ in released)

    def holding(self) -> int:
        return sum(len(c.held) for c in self._closes.values())

    def _close(self, close_ms: int) -> _Close:
        close = self._closes.get(close_ms)
        if close is None:
            now = self._clock()
            stale = [t for t, c in self._closes.items() if not c.held and now - c.since > FORGET_AFTER_S]
            for t in stale:
                del self._closes[t]
            close = self._closes[close_ms] = _Close(expected=self._deciding(close_ms), since=now)
        return close
