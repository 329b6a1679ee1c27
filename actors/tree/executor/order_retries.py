"""The executor's retry discipline: an order is placed once, by its client id, whatever the network does.

After a timeout, a 503 "unknown", a reset or a damaged answer the order is looked up by that id before
anything is resent, and a "client id already used" rejection means an earlier attempt landed: it is looked up
instead of failing. A lookup that fails is only a lookup that failed: it is retried, never raised. Rate limits
are waited out within a budget; waits end early once shutdown begins. When no outcome can be confirmed,
``GiveUpError`` says so and the caller decides (reconciliation will tell the truth). Nothing from the venue
boundary escapes but ``Rejected`` (a business answer) and ``GiveUpError``.

Each caller picks a ``Pace``: an entry can afford to look up patiently; a stop cannot (every moment without
it is a moment unprotected), so its lookups are quick and its caller flattens once its deadline passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ...exchange.errors import ExchangeError, IpBanned, RateLimited, Rejected
from ...exchange.parse import MalformedPayload
from ...exchange.types import OrderResult, OrderStatus

if TYPE_CHECKING:
    from loguru import Logger

T = TypeVar("T")

DUPLICATE_ID_CODES = frozenset({-4116, -4015})
"""Binance: client order id already used — the earlier attempt landed; find it instead of failing."""


class GiveUpError(Exception):
    """An order could not be placed or confirmed within the retry budget."""


class LandedError(GiveUpError):
    """The exchange says the order exists (its client id is taken), but it could not be looked up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pace:
    """How patiently one kind of order is placed and looked up."""

    attempts: int
    """Place-or-look-up rounds before giving up."""
    delay_s: float
    """Wait before the first lookup; each later one waits one more ``delay_s`` (linear back-off)."""
    deadline_s: float | None = None
    """Give up once this long has passed since the first attempt, whatever ``attempts`` says."""


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.patient = Pace(attempts=lookup_attempts, delay_s=delay_s)
        """Entries and closes: the outcome matters more than the wait."""
        self.delay_s = delay_s
        """The base delay between attempts (each caller scales it)."""
        self._max_wait = max_rate_limit_wait_s
        self._stopping = stopping
        self._sleep = sleep
        self._clock = clock
        self._log = log

    def wait(self, seconds: float) -> None:
        """Back off between retries; returns early once shutdown begins (protective retries still run)."""
        if self._stopping.is_set():
            return
        self._sleep(seconds)

    def call(self, fn: Callable[[], T]) -> T:
        """One call with rate-limit waits; other venue errors propagate to the caller's policy."""
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

    def _look_up(self, lookup: Callable[[], T | None], what: str) -> T | None:
        """One lookup; a failure of the lookup itself is logged and answers None (try again later)."""
        try:
            return self.call(lookup)
        except (ExchangeError, MalformedPayload, GiveUpError) as exc:
            self._log.warning(f"{what}: lookup failed ({exc})")
            return None

    def idempotent(
        self, place: Callable[[], T], lookup: Callable[[], T | None], *, what: str, pace: Pace | None = None
    ) -> T:
        """Place once; after an unknown outcome, look the order up by client id before any resend."""
        pace = pace or self.patient
        started = self._clock()
        for attempt in range(pace.attempts):
            if attempt and pace.deadline_s is not None and self._clock() - started > pace.deadline_s:
                break
            try:
                return self.call(place)
            except Rejected as exc:
                if exc.code not in DUPLICATE_ID_CODES:
                    raise
                self._log.warning(f"{what}: client id already used: an earlier attempt landed; looking it up")
                found = self._look_up(lookup, what)
                if found is not None:
                    return found
                raise LandedError(
                    f"{what}: it landed (client id already used) but cannot be looked up"
                ) from exc
            except (ExchangeError, MalformedPayload) as exc:
                self._log.warning(f"{what}: outcome unknown ({exc}); looking it up before any retry")
                self.wait(pace.delay_s * (attempt + 1))
            except GiveUpError as exc:
                self._log.warning(f"{what}: {exc}")
                continue
            found = self._look_up(lookup, what)
            if found is not None:
                return found
        raise GiveUpError(f"{what}: no confirmed outcome after {attempt + 1} attempts")

    def await_fill(
        self, lookup: Callable[[], OrderResult | None], result: OrderResult, *, what: str
    ) -> OrderResult:
        """Look a MARKET order up until it shows FILLED; ``GiveUpError`` after the lookup budget."""
        for _ in range(self.patient.attempts):
            self.wait(self.delay_s)
            found = self._look_up(lookup, what)
            if found is not None and found.status is OrderStatus.FILLED:
                return found
        raise GiveUpError(f"{what}: not filled after {self.patient.attempts} checks (last {result.status})")
