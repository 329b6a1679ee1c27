"""Lock-step pacing of a replay at ``max`` speed, so replay decisions equal backtest decisions exactly.

The local exchange walks each 1m step as: intra-candle updates → fills of triggered stops/targets on the
user-data stream → a ``SIM_STEP`` marker on every user-data stream → closed klines; then it waits for our
ack. Two gates make the bot see a step exactly as the backtester does:

1. ``UserStreamGate``: a closed kline of step T is held back until the ledger has processed the marker
   of step T on every user-data stream, i.e. every fill of T is in the ledger and the portfolio view.
2. ``ReplayPacer``: once every signal-timeframe pair actor has processed its candle of T, a barrier goes
   through the executor and then the ledger (so entries decided at T are filled, protected and recorded),
   and only then is T acknowledged to the exchange.

``ReplayDriver`` runs a replay from the bot's side: it waits for the live subscriptions, registers as a
pacer at ``max`` speed, resumes the clock, routes each ``SIM_STEP`` marker, and reports progress and the end.
Only replay mode uses this module; live trading never waits for anything.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pykka
from loguru import logger

from ..domain.model import TIMEFRAME_MS, ContractType, Kline
from ..exchange.kline_frames import kline_stream
from ..exchange.parse import parse_user_event
from ..exchange.types import UserStreamStatus
from ..runtime.actor import Barrier

if TYPE_CHECKING:
    from ..exchange.types import UserEvent
    from .remote import RemoteExchange
    from .server import LocalExchange

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


@dataclass(frozen=True, slots=True, kw_only=True)
class SimStep:
    """The local exchange's lock-step marker on a user-data stream (replay only)."""

    step_open_ms: int
    symbols: tuple[str, ...] = ()
    """Symbols with a candle in this step (the others owe the pacer nothing)."""


def parse_with_marker(payload: Mapping[str, Any], contract: ContractType) -> UserEvent | SimStep | None:
    """``parse_user_event``, plus the local exchange's ``SIM_STEP`` marker."""
    data = payload.get("data", payload)
    if isinstance(data, Mapping) and data.get("e") == "SIM_STEP":
        return SimStep(step_open_ms=int(data["T"]), symbols=tuple(str(x) for x in data.get("s", ())))
    return parse_user_event(payload, contract)


class ReplayDriver:
    """The bot's side of a replay against the local exchange (lock-step when the replay runs at ``max``).

    ``barriers(then)`` runs ``then`` once the executors and the ledger drained; ``tell_ledger`` delivers a
    ``Barrier`` to the ledger; ``streamed`` lists the (symbol, timeframe) keys the market streams route.
    """

    def __init__(
        self,
        exchange: LocalExchange | RemoteExchange,
        *,
        speed: float,
        contracts: Iterable[ContractType],
        expected: Iterable[tuple[str, str]],
        barriers: Callable[[Callable[[], None]], None],
        tell_ledger: Callable[[Barrier], None],
        streamed: Callable[[], Iterable[tuple[str, str]]],
    ) -> None:
        self.exchange = exchange
        self._contracts = tuple(contracts)
        self._tell_ledger = tell_ledger
        self._streamed = streamed
        self._pacer_id: str | None = None
        self.subscriptions_timeout_s = 10.0
        """How long :meth:`begin` waits for the exchange to stream every routed kline to us."""
        self.gate: UserStreamGate | None = None
        self.pacer: ReplayPacer | None = None
        if math.isinf(speed):
            self.gate = UserStreamGate([c.value for c in self._contracts])
            self.pacer = ReplayPacer(ack=self._ack, expected=expected, barriers=barriers)

    def hold(self, kline: Kline) -> None:
        """For the market streams: in lock-step, hold a 1m candle until its step's fills are in the ledger."""
        if self.gate is not None and kline.timeframe == "1m":
            self.gate.wait_for_step(kline.open_time_ms + MINUTE_MS)

    def on_user_event(self, contract: ContractType, event: UserEvent | SimStep) -> None:
        """The replay's part of a user-data event: a reconnect resets the gate; a marker paces its step."""
        if isinstance(event, UserStreamStatus) and event.connected and self.gate is not None:
            self.gate.reconnected(contract.value)
        if not isinstance(event, SimStep):
            return
        if self.pacer is not None and contract is self._contracts[0]:
            self.pacer.step_symbols(event.step_open_ms, event.symbols)
        gate = self.gate
        if gate is not None:
            step = event.step_open_ms
            self._tell_ledger(Barrier(done=lambda: gate.step_processed(contract.value, step)))

    def begin(self) -> None:
        """Everything is warm: wait for the live subscriptions, register as a pacer, let the clock run."""
        self._await_subscriptions(self.subscriptions_timeout_s)
        if self.pacer is not None:
            self._pacer_id = self.exchange.register_pacer("1m")
        self.exchange.resume()

    def _await_subscriptions(self, timeout_s: float) -> None:
        """Start the clock only once the exchange streams every routed kline to us.

        Warm pairs do not mean live subscriptions: a candle sent before ours is live is lost, and in
        lock-step the clock then waits a whole pacer timeout for an ack that cannot come.
        """
        wanted = {kline_stream(symbol, tf) for symbol, tf in sorted(self._streamed())}
        deadline = time.monotonic() + timeout_s
        while not wanted <= set(self.exchange.status().get("clients", {}).get("streams", ())):
            if time.monotonic() >= deadline:
                logger.warning(f"replay starts before the exchange streams all of {sorted(wanted)}")
                return
            time.sleep(0.02)

    def finished(self, timeout_s: float) -> bool:
        """The data ran out and (in lock-step) the last step was acknowledged."""
        return self.exchange.wait_until_done(timeout_s)

    def log_progress(self) -> None:
        """One line: replayed candles and the simulated clock (replay runs can take minutes)."""
        try:
            status = self.exchange.status()
        except Exception as exc:
            logger.debug(f"replay status unavailable: {exc}")
            return
        done, left = int(status.get("processed", 0)), int(status.get("remaining", 0))
        clock = datetime.fromtimestamp(int(status.get("clockMs", 0)) / 1000, tz=UTC)
        share = done / (done + left) * 100 if done + left else 100.0
        logger.info(
            f"replay {share:5.1f}%: {done:,} of {done + left:,} candle steps, clock {clock:%Y-%m-%d %H:%M}"
        )

    def release(self) -> None:
        """Shutdown: hold no candle any more (the user streams are closing; no marker will come)."""
        if self.gate is not None:
            self.gate.release()

    def leave(self) -> None:
        """Unregister our pacer, so an external exchange runs on without us."""
        pacer_id, self._pacer_id = self._pacer_id, None
        if pacer_id is None:
            return
        try:
            self.exchange.unregister_pacer(pacer_id)
        except Exception as exc:
            logger.warning(f"pacer unregister failed: {exc}")

    def _ack(self, step_open_ms: int) -> None:
        if self._pacer_id is not None:
            self.exchange.ack(self._pacer_id, step_open_ms)
