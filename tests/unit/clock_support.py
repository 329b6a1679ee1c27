"""A test-held clock (no tests here): time moves only when the test says so.

``FakeClock`` stands in for ``time.perf_counter_ns`` where code measures a time window (``OrderPriority``'s
hold). Code that blocks on a real condition variable meanwhile still wakes on its own real timeout, reads
the clock again and sees the time the test has set, so a test decides exactly how much time passed. The
clock also tells which threads have read it: a read made under the code's lock means that thread is inside
the call (``started_in``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

WAIT_S = 5.0
"""Real-time bound on any wait here: a hang becomes a failure."""


class FakeClock:
    """Monotonic nanoseconds, advanced by the test; remembers the last value each thread read."""

    def __init__(self) -> None:
        self.now_ns = 0
        self._cond = threading.Condition()
        self._last_read: dict[int, int] = {}

    def __call__(self) -> int:
        with self._cond:
            self._last_read[threading.get_ident()] = self.now_ns
            self._cond.notify_all()
            return self.now_ns

    def advance_ms(self, ms: float) -> None:
        with self._cond:
            self.now_ns += round(ms * 1_000_000)

    def wait_read(self, thread: threading.Thread, at_least_ns: int | None = None) -> None:
        """Until ``thread`` has read the clock at ``at_least_ns`` or later (default: its current time)."""
        with self._cond:
            floor = self.now_ns if at_least_ns is None else at_least_ns
            read = self._cond.wait_for(lambda: self._last_read.get(thread.ident or -1, -1) >= floor, WAIT_S)
        assert read, f"{thread.name} did not read the clock at {floor} ns within {WAIT_S:g}s"


def started_in(clock: FakeClock, call: Callable[[], object]) -> threading.Thread:
    """Run ``call`` on its own thread and return once it has read ``clock`` (it is then inside the call)."""
    thread = threading.Thread(target=call, name="reader", daemon=True)
    thread.start()
    clock.wait_read(thread)
    return thread


def finished(thread: threading.Thread) -> bool:
    """Whether ``thread`` ends within the real-time bound."""
    thread.join(WAIT_S)
    return not thread.is_alive()


def returns_while_time_stands_still(clock: FakeClock, call: Callable[[], object]) -> bool:
    """Whether ``call`` returns although ``clock`` never moves (so it waited for nothing time-bound)."""
    thread = threading.Thread(target=call, name="caller", daemon=True)
    thread.start()
    thread.join(WAIT_S)
    if thread.is_alive():  # let it out before failing the test: far past any hold
        clock.advance_ms(60_000)
        thread.join(WAIT_S)
        return False
    return True
