"""The executor's retry discipline: an order is placed once, by its client id, whatever the network does.

After a timeout or a 503 "unknown" the order is looked up by that id before anything is resent, and a
"client id already used" rejection means an earlier attempt landed: it is looked up instead of failing.
Rate limits are waited out within a budget; waits end early once shutdown begins. When no outcome can be
confirmed, ``GiveUpError`` says so and the caller decides (reconciliation will tell the truth).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ...exchange.errors import IpBanned, RateLimited, Rejected, TransientError, UnknownStatus
from ...exchange.types import OrderResult, OrderStatus

if TYPE_CHECKING:
    from loguru import Logger

T = TypeVar("T")

DUPLICATE_ID_CODES = frozenset({-4116, -4015})
"""Binance: client order id already used — the earlier attempt landed; find it instead of failing."""


class GiveUpError(Exception):
    """An order could not be placed or confirmed within the retry budget."""


class OrderRetries:
    """Places and looks up orders for one executor (see the module docstring)."""

    def __init__(
        self,
        *,
        lookup_attempts: int,
        delay_s: float,
        max_rate_limit_wait_s: float,
        stopping: threading.Event,
        sleep: Callable[[float], None],
        log: Logger,
    ) -> None:
        self._lookups = lookup_attempts
        self.delay_s = delay_s
        """The base delay between attempts (each caller scales it)."""
        self._max_wait = max_rate_limit_wait_s
        self._stopping = stopping
        self._sleep = sleep
        self._log = log

    def wait(self, seconds: float) -> None:
        """Back off between retries; returns early once shutdown begins (protective retries still run)."""
        if self._stopping.is_set():
            return
        self._sleep(seconds)

    def call(self, fn: Callable[[], T]) -> T:
        """One call with rate-limit waits; transient errors propagate to the caller's policy."""
        waited = 0.0
        while True:
            try:
                return fn()
            except (RateLimited, IpBanned) as exc:
                wait = max(exc.retry_after_s, self.delay_s)
                if waited + wait > self._max_wait:
                    raise GiveUpError(f"rate limited for {waited + wait:.0f}s: {exc}") from exc
                waited += wait
                self.wait(wait)

    def idempotent(self, place: Callable[[], T], lookup: Callable[[], T | None], *, what: str) -> T:
        """Place once; after an unknown outcome, look the order up by client id before any resend."""
        for attempt in range(self._lookups):
            try:
                return self.call(place)
            except Rejected as exc:
                if exc.code not in DUPLICATE_ID_CODES:
                    raise
                found = self.call(lookup)
                if found is None:
                    raise
                return found
            except (UnknownStatus, TransientError) as exc:
                self._log.warning(f"{what}: outcome unknown ({exc}); looking it up before any retry")
                self.wait(self.delay_s * (attempt + 1))
                try:
                    found = self.call(lookup)
                except (UnknownStatus, TransientError) as lookup_exc:
                    self._log.warning(f"{what}: lookup failed too ({lookup_exc})")
                    continue
                if found is not None:
                    return found
        raise GiveUpError(f"{what}: no confirmed outcome after {self._lookups} attempts")

    def await_fill(
        self, lookup: Callable[[], OrderResult | None], result: OrderResult, *, what: str
    ) -> OrderResult:
        """Look a MARKET order up until it shows FILLED; ``GiveUpError`` after the lookup budget."""
        for _ in range(self._lookups):
            self.wait(self.delay_s)
            found = self.call(lookup)
            if found is not None and found.status is OrderStatus.FILLED:
                return found
        raise GiveUpError(f"{what}: not filled after {self._lookups} checks (last status {result.status})")
