"""``OrderPriority``: entries on their way to the exchange go first; the market-data reader steps aside.

CPython runs one thread at a time (the GIL) and has no thread priorities. At a candle close the
WebSocket thread reads a burst of frames (50–250 closed klines and their pairs' work with 50 pairs × 5
timeframes) while the executor told to open a position waits its turn for the GIL behind that burst.
Measured in ``bench/live_latency.py``, those waits are most of the signal → order tail.

So a pair calls ``begin(symbol)`` just before it tells its executor to enter, the executor calls
``end(symbol)`` once the entry request is about to go out (or the entry is refused), and the reader calls
``step_aside()`` before each frame: while an entry is pending it blocks (releasing the GIL) until the entry
is sent, for at most ``hold_ms`` after the latest ``begin()``. An executor about to place protective
orders for an earlier entry steps aside for the other symbols' entries (never for its own symbol's, which
wait in its own mailbox). Nothing waits on a lock it holds: ``step_aside`` only ever waits on this object.

A pending entry that never ends (an executor that died with the message in its mailbox) cannot stall
anything for longer than ``hold_ms``: past that the count is forgotten and counted as ``expired``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorityStats:
    """Counters for the shell and metrics (a copy)."""

    pending: int
    begun: int
    ended: int
    waits: int
    """``step_aside`` calls that blocked for a pending entry."""
    waited_s: float
    """Total time the callers of ``step_aside`` spent blocked."""
    expired: int
    """Pending entries forgotten after ``hold_ms`` without an ``end()``."""


class OrderPriority:
    """Pending-entry gate shared by the pairs, the executors and the market-data readers (module doc)."""

    def __init__(self, hold_ms: float = 2.0, *, clock: Callable[[], int] = time.perf_counter_ns) -> None:
        """``clock``: monotonic nanoseconds; the hold is measured on it (tests pass one they move by hand)."""
        if not 0 <= hold_ms <= 100:
            raise ValueError(f"OrderPriority: hold_ms must be within 0..100, got {hold_ms}")
        self.hold_ns = int(hold_ms * 1e6)
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._pending: dict[str, int] = {}
        self._total = 0
        self._until_ns = 0
        self._begun = 0
        self._ended = 0
        self._waits = 0
        self._waited_ns = 0
        self._expired = 0

    @property
    def enabled(self) -> bool:
        return self.hold_ns > 0

    def set_hold(self, hold_ms: float) -> None:
        """A reloaded ``entry_priority_hold_ms``; 0 turns the gate off and lets every waiter go at once
        (entries still pending then are counted as expired, so ``begun == ended + expired`` holds)."""
        if not 0 <= hold_ms <= 100:
            raise ValueError(f"OrderPriority: hold_ms must be within 0..100, got {hold_ms}")
        with self._cond:
            self.hold_ns = int(hold_ms * 1e6)
            if not self.hold_ns and self._total:
                self._expired += self._total
                self._pending.clear()
                self._total = 0
            self._cond.notify_all()

    def begin(self, symbol: str) -> None:
        """An entry on ``symbol`` is about to be told to its executor (the pair's thread)."""
        if not self.hold_ns:
            return
        with self._cond:
            self._pending[symbol] = self._pending.get(symbol, 0) + 1
            self._total += 1
            self._begun += 1
            self._until_ns = self._clock() + self.hold_ns

    def end(self, symbol: str) -> None:
        """The entry request on ``symbol`` is about to be sent, or the entry was refused (its executor)."""
        if not self.hold_ns:
            return
        with self._cond:
            count = self._pending.get(symbol, 0)
            if count:
                if count == 1:
                    del self._pending[symbol]
                else:
                    self._pending[symbol] = count - 1
                self._total -= 1
                self._ended += 1
                self._cond.notify_all()

    def step_aside(self, own: str | None = None) -> None:
        """Block while an entry is pending, for at most ``hold_ms`` after the latest ``begin()``.

        ``own``: the caller's symbol, whose pending entries are queued behind the caller itself (an executor
        must not wait for its own mailbox).
        """
        if not self._total:  # the common case, read without the lock: a stale read costs one frame
            return
        with self._cond:
            started = now = self._clock()
            while self._blocking(own):
                remaining = self._until_ns - now
                if remaining <= 0:
                    self._expired += self._total
                    self._pending.clear()
                    self._total = 0
                    break
                self._cond.wait(remaining / 1e9)
                now = self._clock()
            if now > started:
                self._waits += 1
                self._waited_ns += now - started

    def _blocking(self, own: str | None) -> int:
        return self._total - (self._pending.get(own, 0) if own is not None else 0)

    def stats(self) -> PriorityStats:
        with self._cond:
            return PriorityStats(
                pending=self._total,
                begun=self._begun,
                ended=self._ended,
                waits=self._waits,
                waited_s=self._waited_ns / 1e9,
                expired=self._expired,
            )


class CandleTurn:
    """One closed candle's hand-off from the market-data reader to its pair actor.

    At a candle close the reader tells up to 250 pair actors in a burst; each wakes and waits for the GIL,
    and CPython hands it to whichever waiting thread the OS picks, so a candle read early can be processed
    after candles read after it (a lottery measured in ``bench/live_latency.py``). With a turn, the reader
    tells one pair and waits (releasing the GIL) until that pair has finished the candle — decided, and
    told its executor if it entered — before reading the next frame: candles are decided in the order they
    arrived, with one pair thread runnable at a time. The wait is bounded (``wait(timeout_s)``), so a pair
    that is slow, restarting or dead holds the reader back by at most that long.

    Like a reply-to in a message, a turn is a one-shot token: the receiver calls ``done()`` once (a second
    call, or one after the reader gave up, is harmless); only the reader waits on it.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def done(self) -> None:
        """The candle is handled (the pair's thread; always, even when handling it failed)."""
        try:  # noqa: SIM105 - hot path: a bare try costs less than contextlib.suppress
            self._lock.release()
        except RuntimeError:  # already done
            pass

    def wait(self, timeout_s: float) -> bool:
        """Block until ``done()`` (True) or for ``timeout_s`` (False); the reader's thread."""
        return self._lock.acquire(timeout=timeout_s)
