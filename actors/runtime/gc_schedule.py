"""``GcSchedule``: CPython's full garbage collections kept away from the candle closes.

A warm bot at the full universe (590 symbols × 5 timeframes) holds 0.9–1.1 million objects the cyclic
collector tracks: candles, indicator buffers, actors, nearly all of them as old as the warm-up and as
long-lived as the process. CPython's automatic full collection walks every one of them while holding the
GIL: 511 ms of CPU (557 ms wall) measured at the end of ``bench/universe.py`` at 590 × 5. It runs when
allocations tip its counters, and allocations peak at the candle closes, so sooner or later the reader
and every pair about to decide stand still for half a second at a close.

``start`` (once the bot is READY):

- one full collection, then ``gc.freeze()``: everything alive moves to the permanent generation, which
  automatic collections never walk; a full collection then walks only what was made since (0.0 ms
  measured right after the freeze, against the 557 ms before it);
- every ``interval_s`` (an hour), at second ``at_second`` (30) of a wall-clock minute, half a minute from
  any candle close of any timeframe: ``gc.unfreeze()``, one full collection, ``gc.freeze()`` again. Cycles
  that became garbage while frozen (the old state of a restarted actor) are reclaimed there, so the freeze
  keeps nothing alive for longer than the interval, and the one long pause falls where nothing closes.

``stop`` ends the thread and unfreezes (another bot may start in the same process, as the tests do).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable

from loguru import logger

INTERVAL_S = 3600.0
"""Between two scheduled full collections."""
AT_SECOND = 30.0
"""Second of the minute they start at: 30 s from every candle close."""


class GcSchedule:
    """See the module docstring. ``at_second`` None: every ``interval_s``, wherever that falls (tests)."""

    def __init__(
        self,
        *,
        interval_s: float = INTERVAL_S,
        at_second: float | None = AT_SECOND,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.interval_s = interval_s
        self.at_second = at_second
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.collections = 0
        """Full collections made (the one at start included)."""
        self.last_pause_s: float | None = None
        """How long the last one held the GIL."""

    def start(self) -> threading.Thread:
        """Collect and freeze now, then run the schedule on a daemon thread (returned: the thread watch)."""
        self.refreeze()
        self._thread = threading.Thread(target=self._run, name="gc-schedule", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the schedule and give every frozen object back to the collector."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        gc.unfreeze()

    def next_at(self, now: float) -> float:
        """The first time at least ``interval_s`` after ``now`` that falls on second ``at_second``."""
        due = now + self.interval_s
        if self.at_second is None:
            return due
        return due + (self.at_second - due % 60.0) % 60.0

    def refreeze(self) -> float:
        """Unfreeze, collect everything, freeze again; returns the pause in seconds."""
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        pause = time.perf_counter() - started
        self.collections += 1
        self.last_pause_s = pause
        logger.info(
            f"gc: full collection in {pause * 1e3:.0f} ms ({found:,} unreachable objects freed); "
            f"{gc.get_freeze_count():,} objects frozen until the next one"
        )
        return pause

    def _run(self) -> None:
        due = self.next_at(self._clock())
        while not self._stop.wait(min(max(due - self._clock(), 0.0), 60.0)):
            if self._clock() >= due:
                try:
                    self.refreeze()
                except Exception:  # a finaliser may raise inside collect(); the schedule goes on
                    logger.exception("gc: scheduled collection failed")
                due = self.next_at(self._clock())
