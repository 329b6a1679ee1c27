"""Lock-step pacing of a replay at ``max`` speed, so replay decisions equal backtest decisions exactly.

The local exchange walks each 1m step as: intra-candle updates → fills of triggered stops/targets on the
user-data stream → a ``SIM_STEP`` marker on every user-data stream → closed klines; then it waits for our
ack. Two gates make the bot see a step exactly as the backtester does:

1. ``UserStreamGate``: a closed kline of step T is held back until the ledger has processed the marker
   of step T on every user-data stream, i.e. every fill of T is in the ledger and the portfolio view.
2. ``ReplayPacer``: once every signal-timeframe pair actor has processed its candle of T, a barrier goes
   through the executor and then the ledger (so entries decided at T are filled, protected and recorded),
   and only then is T acknowledged to the exchange.

Only replay mode uses this module; live trading never waits for anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import pykka
from loguru import logger

from ..domain.model import TIMEFRAME_MS
from ..runtime.actor import Barrier

MINUTE_MS = 60_000


class UserStreamGate:
    """Holds closed klines until the user-data streams have delivered the step's fills to the ledger."""

    def __init__(self, streams: Iterable[str], *, timeout_s: float = 10.0) -> None:
        self._streams = frozenset(streams)
        self._done: dict[str, int] = dict.fromkeys(self._streams, -1)
        self._cond = threading.Condition()
        self._timeout = timeout_s
        self._released = False
        self._waiting = -1
        self.timeouts = 0

    def step_processed(self, stream: str, step_open_ms: int) -> None:
        """The ledger processed the ``SIM_STEP`` marker of ``step_open_ms`` from ``stream``."""
        with self._cond:
            if step_open_ms > self._done.get(stream, -1):
                self._done[stream] = step_open_ms
                self._cond.notify_all()

    def reconnected(self, stream: str) -> None:
        """``stream`` reconnected: markers sent while it was down are lost, so stop waiting for them.

        The fills of those steps reach the ledger through the reconciliation a reconnect triggers.
        """
        with self._cond:
            self._done[stream] = max(self._done.get(stream, -1), self._waiting)
            self._cond.notify_all()

    def release(self) -> None:
        """Hold nothing from now on (shutdown: the user streams are closed, no marker will come)."""
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def wait_for_step(self, close_time_ms: int) -> bool:
        """Block until every stream has processed the 1m step ending at ``close_time_ms``."""
        step = close_time_ms - MINUTE_MS
        with self._cond:
            self._waiting = max(self._waiting, step)
            ok = self._cond.wait_for(
                lambda: self._released or min(self._done.values(), default=step) >= step, self._timeout
            )
        if not ok:
            self.timeouts += 1
            logger.warning(f"replay gate: user streams did not reach step {step} in {self._timeout}s")
        return ok


class ReplayPacer:
    """Acknowledges a step to the exchange once the bot has fully reacted to it."""

    def __init__(
        self,
        *,
        ack: Callable[[int], None],
        expected: Iterable[tuple[str, str]],
        barriers: Callable[[Callable[[], None]], None],
    ) -> None:
        """``ack(open_ms)`` tells the exchange; ``barriers(then)`` runs ``then`` once actors drain."""
        self._ack = ack
        self._barriers = barriers
        self._lock = threading.Lock()
        self._expected: frozenset[tuple[str, str]] = frozenset(expected)
        self._pending: dict[int, set[tuple[str, str]]] = {}
        self._present: dict[int, frozenset[str]] = {}
        self.acked = -1

    def set_expected(self, expected: Iterable[tuple[str, str]]) -> None:
        """The (symbol, signal timeframe) actors whose candles gate each step (changes on reload)."""
        with self._lock:
            self._expected = frozenset(expected)

    def step_symbols(self, step_open_ms: int, symbols: Iterable[str]) -> None:
        """The exchange's marker for a step: which symbols have a candle in it (others owe no ack).

        A symbol whose data has a gap (or has ended) is then not waited for; a step in which no traded
        symbol closes a candle is acknowledged at once.
        """
        close = step_open_ms + MINUTE_MS
        with self._lock:
            self._present[close] = frozenset(symbols)
            for stale in [c for c in self._present if c < close - 10 * MINUTE_MS]:
                del self._present[stale]
            complete = self._complete(close)
        if complete:
            self._barriers(lambda: self._send(step_open_ms))

    def processed(self, symbol: str, timeframe: str, open_time_ms: int) -> None:
        """A pair actor finished the candle opened at ``open_time_ms`` (any thread)."""
        close = open_time_ms + TIMEFRAME_MS[timeframe]
        key = (symbol, timeframe)
        with self._lock:
            if key not in self._expected:
                return
            self._pending.setdefault(close, set()).add(key)
            complete = self._complete(close)
        if complete:
            step_open = close - MINUTE_MS
            self._barriers(lambda: self._send(step_open))

    def _complete(self, close: int) -> bool:
        """Under the lock: every actor that owes this close has reported; if so, forget the close."""
        present = self._present.get(close)
        required = {
            (s, tf)
            for s, tf in self._expected
            if close % TIMEFRAME_MS[tf] == 0 and (present is None or s in present)
        }
        if present is None and not self._pending.get(close):
            return False  # nothing known about this close yet
        if not required <= self._pending.get(close, set()):
            return False
        self._pending.pop(close, None)
        for stale in [c for c in self._pending if c < close]:
            del self._pending[stale]
        return True

    def _send(self, step_open: int) -> None:
        try:
            self._ack(step_open)
        except Exception as exc:  # the exchange may be gone at the very end of a replay
            logger.warning(f"replay pacer: ack of {step_open} failed: {exc}")
            return
        self.acked = max(self.acked, step_open)


def chain_barriers(*refs: Any) -> Callable[[Callable[[], None]], None]:
    """Barrier through each actor ref in turn (executor, then ledger), then call ``then``."""

    def run(then: Callable[[], None]) -> None:
        def step(i: int) -> None:
            if i == len(refs):
                then()
                return
            try:
                refs[i].tell(Barrier(done=lambda: step(i + 1)))
            except pykka.ActorDeadError:  # stopped by a reload meanwhile: nothing of it to wait for
                step(i + 1)

        step(0)

    return run
