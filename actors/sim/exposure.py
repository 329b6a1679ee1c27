"""What the exchange itself sees of its positions' protection, timed on the wall clock.

A position is *unprotected* while it is open and no STOP_MARKET on its closing side is open (closePosition
or reduce-only, placed by anyone). ``Exposure.observe`` is called after every change of the book (each REST
request and each replay step that made one), so an episode starts and ends within the request or step that
opened, protected or closed the position. Entries that add to an open position (a second entry while the
first is held) are counted too. Read at ``GET /sim/v1/exposure``: an observer that never asks the bot.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .book import Book
from .orders import Side

MAX_EPISODES = 50_000
"""Closed episodes kept (oldest dropped first); the longest ever is kept separately."""


@dataclass(frozen=True, slots=True)
class Episode:
    """One stretch of wall-clock time during which ``symbol`` had a position and no stop."""

    symbol: str
    start_s: float
    end_s: float
    ended: str
    """``stop`` (a stop appeared) or ``flat`` (the position closed first)."""

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


class Exposure:
    """Unprotected episodes and position increases, from the book's state after each change."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._since: dict[str, float] = {}
        self._amounts: dict[str, Decimal] = {}
        self.episodes: deque[Episode] = deque(maxlen=MAX_EPISODES)
        self.longest: Episode | None = None
        self.opened = 0
        """Positions opened from flat."""
        self.increased = 0
        """Fills that made an open position larger on the same side (a second entry on top of the first)."""
        self.observations = 0

    def observe(self, book: Book) -> None:
        now = self._clock()
        self.observations += 1
        stopped = {
            (a.symbol, a.side)
            for a in book.algo_book.open()
            if a.is_stop and (a.close_position or a.reduce_only)
        }
        for symbol, pos in book.positions.items():
            amount = pos.amount
            before = self._amounts.get(symbol, Decimal(0))
            if amount != before:
                if not before and amount:
                    self.opened += 1
                elif before and amount and (amount > 0) == (before > 0) and abs(amount) > abs(before):
                    self.increased += 1
                self._amounts[symbol] = amount
            closing = Side.SELL if amount > 0 else Side.BUY
            naked = bool(amount) and (symbol, closing) not in stopped
            since = self._since.get(symbol)
            if naked and since is None:
                self._since[symbol] = now
            elif not naked and since is not None:
                self._close(symbol, since, now, "stop" if amount else "flat")

    def _close(self, symbol: str, since: float, now: float, ended: str) -> None:
        del self._since[symbol]
        episode = Episode(symbol=symbol, start_s=since, end_s=now, ended=ended)
        self.episodes.append(episode)
        if self.longest is None or episode.seconds > self.longest.seconds:
            self.longest = episode

    def report(self, since_s: float = 0.0) -> dict[str, Any]:
        """Open episodes (seconds so far) and closed ones ending after ``since_s`` (wall seconds)."""
        now = self._clock()
        return {
            "now": now,
            "open": {s: {"since": t, "seconds": now - t} for s, t in self._since.items()},
            "episodes": [
                {"symbol": e.symbol, "start": e.start_s, "end": e.end_s, "ended": e.ended}
                for e in self.episodes
                if e.end_s >= since_s
            ],
            "longest": None
            if self.longest is None
            else {"symbol": self.longest.symbol, "seconds": self.longest.seconds, "end": self.longest.end_s},
            "opened": self.opened,
            "increased": self.increased,
        }
