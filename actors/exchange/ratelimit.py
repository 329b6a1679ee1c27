"""``WeightBudget``: the process-wide REQUEST_WEIGHT budget of one venue (one IP), shared by every caller.

Binance counts request weight per IP over the wall-clock minute and reports the running total in
``X-MBX-USED-WEIGHT-1M``; exceeding the limit earns HTTP 429 with ``Retry-After``, ignoring 429s earns an
IP ban (418). The budget keeps a conservative local estimate (the larger of what it charged and what the
venue reported in the current minute), makes callers wait for the next minute when a request would take
the estimate into the safety margin, and stops everyone until ``Retry-After`` after a 429/418.

Bulk reads (the klines of warm-ups and gap repairs: thousands of them at a cold start) may only fill the
minute up to ``bulk_share`` of the limit; the rest is kept for everything else (order lookups, balances,
reconciliation, listenKeys), so a warm-up that spends every minute it can never starve the reads that keep
positions protected. New orders cost no IP weight (``order_rate.OrderBudget`` counts them): they pass
``admit``, which holds them only during a ban.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import BudgetSpent, RateLimited

DEFAULT_WEIGHT_LIMIT = 2400
"""USDⓈ-M REQUEST_WEIGHT per minute; exchangeInfo's ``rateLimits`` overrides it."""
_MINUTE_S = 60.0
_BOUNDARY_SLACK_S = 0.05
"""Wait a little past the minute boundary: the venue's clock may lag ours by a few milliseconds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetSnapshot:
    """Counters for metrics."""

    limit: int
    used_weight: int
    """Estimated weight used in the current minute."""
    responses_429: int
    responses_418: int
    blocked_until: float
    """Clock time until which a Retry-After holds every request (0 when none)."""
    waits: int
    """Acquisitions that had to wait."""
    waited_s: float
    charged: int = 0
    """Weight charged since start, all requests."""
    charged_bulk: int = 0
    """Of that, by bulk reads (klines)."""


class WeightBudget:
    """Thread-safe request-weight budget; create one per process per venue and share it.

    ``clock`` returns wall-clock seconds (the window is Binance's wall-clock minute); ``sleep`` is
    injectable so tests can drive a fake clock. ``safety`` is the fraction of the limit kept unused.
    """

    def __init__(
        self,
        limit: int = DEFAULT_WEIGHT_LIMIT,
        *,
        safety: float = 0.02,
        bulk_share: float = 0.9,
        max_wait_s: float = 65.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit <= 0 or not 0.0 <= safety < 1.0:
            raise ValueError(f"WeightBudget: need limit > 0 and 0 <= safety < 1, got {limit}, {safety}")
        if not 0.0 < bulk_share <= 1.0:
            raise ValueError(f"WeightBudget: need 0 < bulk_share <= 1, got {bulk_share}")
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._limit = limit
        self._safety = safety
        self._bulk_share = bulk_share
        self.max_wait_s = max_wait_s
        self._minute = self._minute_of(clock())
        self._used = 0
        self._blocked_until = 0.0
        self._429 = 0
        self._418 = 0
        self._waits = 0
        self._waited_s = 0.0
        self._charged = 0
        self._charged_bulk = 0

    @staticmethod
    def _minute_of(now: float) -> int:
        return int(now // _MINUTE_S)

    def _roll(self, now: float) -> None:
        minute = self._minute_of(now)
        if minute != self._minute:
            self._minute, self._used = minute, 0

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def usable(self) -> int:
        """Weight per minute callers may spend: the limit minus the safety margin."""
        return max(1, int(self._limit * (1.0 - self._safety)))

    @property
    def bulk_usable(self) -> int:
        """Weight per minute bulk reads may fill: ``bulk_share`` of the limit (at most ``usable``)."""
        return max(1, min(self.usable, int(self._limit * self._bulk_share)))

    def set_limit(self, limit: int) -> None:
        """Adopt the REQUEST_WEIGHT limit from exchangeInfo ``rateLimits``."""
        if limit > 0:
            with self._lock:
                self._limit = limit

    def _wait_needed(self, weight: int, now: float, *, bulk: bool) -> float:
        self._roll(now)
        if self._blocked_until > now:
            return self._blocked_until - now
        ceiling = self.bulk_usable if bulk else self.usable
        if self._used + weight > ceiling and self._used > 0:
            return (self._minute + 1) * _MINUTE_S - now + _BOUNDARY_SLACK_S
        return 0.0

    def acquire(self, weight: int, *, bulk: bool = False, max_wait_s: float | None = None) -> float:
        """Charge ``weight``, waiting if the minute is spent or a Retry-After holds; returns seconds waited.

        ``bulk``: a bulk read, held to the bulk share of the minute. Raises ``RateLimited`` at once (without
        waiting) when the wait would exceed ``max_wait_s``.
        """
        limit_s = self.max_wait_s if max_wait_s is None else max_wait_s
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(weight, now, bulk=bulk)
                if wait <= 0.0:
                    self._used += weight
                    self._charged += weight
                    if bulk:
                        self._charged_bulk += weight
                    if waited:
                        self._waits += 1
                        self._waited_s += waited
                    return waited
                if waited + wait > limit_s:
                    if self._blocked_until > now:  # the venue's own Retry-After (a 429 or a ban)
                        raise RateLimited(
                            "weight budget", f"held back {wait:.1f} s more by the exchange's Retry-After",
                            retry_after_s=round(wait, 3),
                        )  # fmt: skip
                    raise BudgetSpent(
                        "weight budget",
                        f"{weight} weight would wait {wait:.1f} s (used {self._used}/{self._limit})",
                        retry_after_s=round(wait, 3),
                    )
            self._sleep(wait)
            waited += wait

    def admit(self, weight: int = 0, *, max_wait_s: float | None = None) -> float:
        """Let a request through whatever the minute's count (a new order: 0 weight; a time sync an order
        needs): it waits only while a 429/418's Retry-After holds. Returns seconds waited."""
        limit_s = self.max_wait_s if max_wait_s is None else max_wait_s
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._roll(now)
                wait = self._blocked_until - now
                if wait <= 0.0:
                    self._used += weight
                    return waited
                if waited + wait > limit_s:
                    raise RateLimited(
                        "weight budget", f"banned for {wait:.1f} s more", retry_after_s=round(wait, 3)
                    )
            self._sleep(wait)
            waited += wait

    def record_used(self, used_weight: int | None) -> None:
        """Adopt the venue's ``X-MBX-USED-WEIGHT-1M`` when it exceeds the local estimate."""
        if used_weight is None:
            return
        with self._lock:
            self._roll(self._clock())
            self._used = max(self._used, used_weight)

    def record_rate_limited(self, retry_after_s: float, *, banned: bool = False) -> None:
        """A 429 (``banned=False``) or 418 arrived: hold every request for ``retry_after_s``."""
        with self._lock:
            now = self._clock()
            self._blocked_until = max(self._blocked_until, now + retry_after_s)
            if banned:
                self._418 += 1
            else:
                self._429 += 1

    @property
    def used_weight(self) -> int:
        with self._lock:
            self._roll(self._clock())
            return self._used

    @property
    def responses_429(self) -> int:
        return self._429

    @property
    def responses_418(self) -> int:
        return self._418

    def snapshot(self) -> BudgetSnapshot:
        with self._lock:
            now = self._clock()
            self._roll(now)
            return BudgetSnapshot(
                limit=self._limit,
                used_weight=self._used,
                responses_429=self._429,
                responses_418=self._418,
                blocked_until=self._blocked_until if self._blocked_until > now else 0.0,
                waits=self._waits,
                waited_s=self._waited_s,
                charged=self._charged,
                charged_bulk=self._charged_bulk,
            )
