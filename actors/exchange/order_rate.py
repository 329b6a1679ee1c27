"""``OrderBudget``: the account's new-order rate, counted as Binance counts it, apart from the IP weight.

On Binance Futures a new order (``POST /fapi/v1/order``, ``POST /fapi/v1/algoOrder``) costs no IP request
weight: it counts against the account's ``ORDERS`` limits, 300 per 10 s and 1,200 per minute, reported in
``X-MBX-ORDER-COUNT-10S`` and ``X-MBX-ORDER-COUNT-1M``; going over earns HTTP 429 -1015. So orders never
wait behind market-data reads (``WeightBudget``): they wait only for an IP ban (429/418, checked by the
transport) and for their own limits. Entries keep ``reserve`` of each window free, so a burst of entries can
never leave the stops and closes of the positions they open without room.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import RateLimited

DEFAULT_ORDERS_10S = 300
DEFAULT_ORDERS_1M = 1200
_SLACK_S = 0.05
"""Wait a little past a window's end: the venue's clock may lag ours by a few milliseconds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderBudgetSnapshot:
    """Counters for metrics."""

    limit_10s: int
    limit_1m: int
    used_10s: int
    used_1m: int
    waits: int
    """Orders that had to wait for a window to roll over."""
    refused: int
    """429 -1015 answers (the venue counted more than we did)."""


class _Window:
    """One fixed window (Binance's are aligned to the wall clock) with its count."""

    def __init__(self, seconds: float, limit: int) -> None:
        self.seconds = seconds
        self.limit = limit
        self.index = 0
        self.used = 0

    def roll(self, now: float) -> None:
        index = int(now // self.seconds)
        if index != self.index:
            self.index, self.used = index, 0

    def wait(self, now: float, room: int) -> float:
        """Seconds until one more order fits below ``room``."""
        return 0.0 if self.used < room else (self.index + 1) * self.seconds - now + _SLACK_S


class OrderBudget:
    """Thread-safe new-order budget of one account; share one per process per venue (module docstring)."""

    def __init__(
        self,
        limit_10s: int = DEFAULT_ORDERS_10S,
        limit_1m: int = DEFAULT_ORDERS_1M,
        *,
        reserve: float = 0.2,
        max_wait_s: float = 65.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lock = threading.Lock()
        self._ten = _Window(10.0, limit_10s)
        self._minute = _Window(60.0, limit_1m)
        self._reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self.max_wait_s = max_wait_s
        self._waits = 0
        self._refused = 0

    def set_limits(self, limit_10s: int | None, limit_1m: int | None) -> None:
        """Adopt the ``ORDERS`` limits from exchangeInfo ``rateLimits``."""
        with self._lock:
            if limit_10s:
                self._ten.limit = limit_10s
            if limit_1m:
                self._minute.limit = limit_1m

    def _room(self, window: _Window, *, protective: bool) -> int:
        return window.limit if protective else max(1, int(window.limit * (1.0 - self._reserve)))

    def acquire(self, *, protective: bool) -> float:
        """Count one new order, waiting while a window is full; returns seconds waited. ``protective``
        (stops, take-profits, closes) may use the whole window; entries leave ``reserve`` of it free.
        Raises ``RateLimited`` at once when the wait would exceed ``max_wait_s``."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                windows = (self._ten, self._minute)
                for window in windows:
                    window.roll(now)
                wait = max(w.wait(now, self._room(w, protective=protective)) for w in windows)
                if wait <= 0.0:
                    self._ten.used += 1
                    self._minute.used += 1
                    if waited:
                        self._waits += 1
                    return waited
                if waited + wait > self.max_wait_s:
                    raise RateLimited(
                        "order budget",
                        f"new orders: {self._ten.used}/{self._ten.limit} per 10 s, "
                        f"{self._minute.used}/{self._minute.limit} per minute",
                        retry_after_s=round(wait, 3),
                    )
            self._sleep(wait)
            waited += wait

    def record_counts(self, ten_s: int | None, minute: int | None) -> None:
        """Adopt the venue's ``X-MBX-ORDER-COUNT-10S`` / ``-1M`` when above the local counts."""
        with self._lock:
            now = self._clock()
            for window, reported in ((self._ten, ten_s), (self._minute, minute)):
                window.roll(now)
                if reported is not None:
                    window.used = max(window.used, reported)

    def record_refused(self) -> None:
        """A 429 -1015: the venue's count is past the limit; treat the current windows as full."""
        with self._lock:
            self._refused += 1
            now = self._clock()
            for window in (self._ten, self._minute):
                window.roll(now)
            self._ten.used = max(self._ten.used, self._ten.limit)

    def snapshot(self) -> OrderBudgetSnapshot:
        with self._lock:
            now = self._clock()
            for window in (self._ten, self._minute):
                window.roll(now)
            return OrderBudgetSnapshot(
                limit_10s=self._ten.limit,
                limit_1m=self._minute.limit,
                used_10s=self._ten.used,
                used_1m=self._minute.used,
                waits=self._waits,
                refused=self._refused,
            )
