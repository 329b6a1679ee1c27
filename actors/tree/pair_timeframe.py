"""PairTimeframe actor: one (symbol, timeframe), its talipp state and the V1 strategy, unchanged.

Life of an incarnation: the supervisor registers it in the router (so candles closing from now on queue in
its mailbox), ``start_actor`` warms the strategy up from REST, then queued and live candles flow through
``on_kline_closed``. A candle that is not the next one after the last seen triggers an exact REST backfill
first; if the exchange cannot supply the missing candles the gap stays *unrepaired* and the pair refuses to
open trades until the next restart rebuilds it from a clean window.

A signal timeframe that a run before this one traded resumes where that run's decisions end
(``decided_through``, read from the ledger): the candles that closed while no incarnation was deciding are
decided now, in order, so a restart (kill -9 included) loses no crossover and decides none twice; only the
newest of them may trade, the others are recorded ``late``.

Only the signal timeframe trades; other timeframes keep the same bounded indicator state for inspection.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..domain.model import TIMEFRAME_MS, ContractType, Decision, Kline, Outcome, PortfolioView, SkipReason
from ..domain.strategy import PairStrategy, StrategyParams, StrategySnapshot
from ..exchange.errors import RateLimited
from ..messages import (
    EntryRejected,
    KlineClosed,
    KlineGapUnrepaired,
    OrderExecutorInbox,
    PairTimeframeInbox,
    PositionLedgerInbox,
    SubmitEntry,
)
from ..runtime.actor import Actor, Address, Monitor
from ..runtime.scheduling import OrderPriority

MAX_CATCH_UP = 1500
"""Candles a restarted pair reads back to decide what closed while it was down (one klines request)."""


class KlineSource(Protocol):
    """The REST calls a pair actor needs (satisfied by ``BinanceGateway``)."""

    def recent_closed_klines(
        self, symbol: str, contract: ContractType, interval: str, count: int
    ) -> list[Kline]:
        """The last ``count`` closed candles, oldest first."""
        ...

    def closed_klines_range(
        self, symbol: str, contract: ContractType, interval: str, start_open_ms: int, end_open_ms: int
    ) -> list[Kline]:
        """Closed candles with open time in [start, end], oldest first."""
        ...


class KlinePool:
    """Several ``KlineSource``s taken in turn, so pair actors warming up side by side (a pair restart
    starts its timeframes together) do not queue behind one gateway's lock for their REST reads."""

    def __init__(self, sources: Sequence[KlineSource]) -> None:
        if not sources:
            raise ValueError("KlinePool needs at least one source")
        self._sources = tuple(sources)
        self._next = itertools.cycle(range(len(self._sources)))
        self._lock = threading.Lock()

    def _pick(self) -> KlineSource:
        with self._lock:
            return self._sources[next(self._next)]

    def recent_closed_klines(
        self, symbol: str, contract: ContractType, interval: str, count: int
    ) -> list[Kline]:
        return self._pick().recent_closed_klines(symbol, contract, interval, count)

    def closed_klines_range(
        self, symbol: str, contract: ContractType, interval: str, start_open_ms: int, end_open_ms: int
    ) -> list[Kline]:
        return self._pick().closed_klines_range(symbol, contract, interval, start_open_ms, end_open_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class PairStatus:
    """What the shell's ``inspect`` shows for one pair actor."""

    symbol: str
    timeframe: str
    trading: bool
    warm: bool
    unrepaired_gap: bool
    strategy: StrategySnapshot
    gaps_backfilled: int
    decisions: int
    last_decision: Decision | None = None
    """The last decision this actor made on a live candle (warm-up replays history and decides nothing)."""


@dataclass(slots=True)
class PairBoard:
    """Latest ``PairStatus`` per (symbol, timeframe): written under a lock, read lock-free by the shell."""

    statuses: dict[tuple[str, str], PairStatus] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, status: PairStatus) -> None:
        """A known key's value is replaced in place (readers iterating see the old or the new status, and the
        size does not change); a new key swaps in a copy, so no reader's iteration ever sees a resize."""
        key = (status.symbol, status.timeframe)
        with self.lock:
            current = self.statuses
            if key in current:
                current[key] = status
            else:
                self.statuses = {**current, key: status}

    def drop(self, symbol: str) -> None:
        with self.lock:
            self.statuses = {k: v for k, v in self.statuses.items() if k[0] != symbol}

    def warm(self, keys: set[tuple[str, str]]) -> bool:
        current = self.statuses
        return all(k in current and current[k].warm for k in keys)

    def wait_warm(self, keys: set[tuple[str, str]], timeout_s: float, poll_s: float = 0.05) -> bool:
        """Poll until every key is warm or ``timeout_s`` passed; True when all are."""
        deadline = time.monotonic() + timeout_s
        while not self.warm(keys):
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
        return True


class PairTimeframe(Actor[PairTimeframeInbox]):
    """Runs ``PairStrategy`` on one (symbol, timeframe)."""

    def __init__(
        self,
        *,
        symbol: str,
        timeframe: str,
        contract: ContractType,
        params: StrategyParams,
        trading: bool,
        klines: KlineSource,
        portfolio: Callable[[], PortfolioView],
        executor: Address[OrderExecutorInbox] | None,
        ledger: Address[PositionLedgerInbox] | None,
        monitor: Monitor | None = None,
        generation: int = 0,
        on_processed: Callable[[str, str, int], None] | None = None,
        on_status: Callable[[PairStatus], None] | None = None,
        observe: Callable[[Kline, float, Decision | None], None] | None = None,
        warmup_extra: int = 10,
        priority: OrderPriority | None = None,
        decided_through: Callable[[str, str], int | None] | None = None,
    ) -> None:
        super().__init__(name=f"pair:{symbol}:{timeframe}", monitor=monitor, generation=generation)
        self.symbol = symbol
        self.timeframe = timeframe
        self.contract = contract
        self.params = params
        self.trading = trading
        self._klines = klines
        self._portfolio = portfolio
        self._executor = executor
        self._ledger = ledger
        self._on_processed = on_processed
        self._on_status = on_status
        self._observe = observe
        self._priority = priority
        """Told before each entry, so the market-data reader steps aside until it is sent."""
        self._decided_through = decided_through
        self._warmup = params.warmup_candles() + warmup_extra
        self._tf_ms = TIMEFRAME_MS[timeframe]
        self.strategy = PairStrategy(symbol, timeframe, params)
        self._warm = False
        self._unrepaired = False
        self._gaps_backfilled = 0
        self._decisions = 0
        self._last_decision: Decision | None = None

    def start_actor(self) -> None:
        history = self._rest(
            lambda: self._klines.recent_closed_klines(
                self.symbol, self.contract, self.timeframe, self._warmup
            )
        )
        resume = self._resume_after(history)
        if resume is None:
            self._feed(history, live=False)
        else:
            history = self._since(resume, history)
            missed = [k for k in history if k.open_time_ms > resume]
            self._feed([k for k in history if k.open_time_ms <= resume], live=False)
            self._feed(missed[:-1], live=True, late=True)
            self._feed(missed[-1:], live=True)
            self.log.info(f"{self.name}: resumed after {resume}: {len(missed)} candles decided on warm-up")
        self._warm = True
        if self._on_processed is not None and history:  # replay lock-step: warm-up covered these steps
            self._on_processed(self.symbol, self.timeframe, history[-1].open_time_ms)
        self.log.info(f"warm with {len(history)} candles")
        self._publish()

    def _resume_after(self, history: Sequence[Kline]) -> int | None:
        """The last candle a previous run decided, when candles closed after it (else None)."""
        if not self.trading or self._decided_through is None or not history:
            return None
        last = self._decided_through(self.symbol, self.timeframe)
        return last if last is not None and last < history[-1].open_time_ms else None

    def _since(self, resume: int, history: list[Kline]) -> list[Kline]:
        """``history`` reaching back to a warm-up's length before ``resume`` (at most ``MAX_CATCH_UP``)."""
        start = resume - self._warmup * self._tf_ms
        if not history or history[0].open_time_ms <= start:
            return history
        first = max(start, history[0].open_time_ms - MAX_CATCH_UP * self._tf_ms)
        if first > resume:
            self.log.warning(f"{self.name}: candles after {resume} until {first} are beyond the catch-up")
        older = self._rest(
            lambda: self._klines.closed_klines_range(
                self.symbol, self.contract, self.timeframe, first, history[0].open_time_ms - self._tf_ms
            )
        )
        return [*older, *history]

    def on_kline_closed(self, message: KlineClosed) -> None:
        """A closed candle from the stream (or its backfill); older or duplicate ones are ignored.

        The reader waits for ``message.turn`` (when set) before reading on: it is done once the candle is
        decided and any entry told, and in every case, so a failing candle never holds the reader longer.
        """
        kline = message.kline
        try:
            if self._priority is not None:  # another symbol's entry, told just now, goes out first
                self._priority.step_aside(own=self.symbol)
            last = self.strategy.last_open_time_ms
            if last is not None and kline.open_time_ms > last + self._tf_ms:
                self._backfill(last + self._tf_ms, kline.open_time_ms - self._tf_ms)
            self._feed((kline,), live=True, received_ns=message.received_ns)
        finally:
            if message.turn is not None:
                message.turn.done()
        if self._on_processed is not None:
            self._on_processed(self.symbol, self.timeframe, kline.open_time_ms)

    def on_entry_rejected(self, message: EntryRejected) -> None:
        """The executor refused our taken decision: it no longer counts for ``min_interval``."""
        snap = self.strategy.snapshot()
        last = snap.last_decision
        if last is not None and last.signal_open_time_ms == message.signal_open_time_ms:
            self.strategy.record_rejection(last)

    def on_kline_gap_unrepaired(self, message: KlineGapUnrepaired) -> None:
        """The market stream could not get candles the exchange should have: refuse new entries."""
        self._unrepaired = True
        self.log.warning(
            f"unrepaired gap {message.start_open_ms}..{message.end_open_ms}; "
            "no new entries until this pair restarts"
        )
        self._publish()

    def _backfill(self, start_ms: int, end_ms: int) -> None:
        missing = (end_ms - start_ms) // self._tf_ms + 1
        fetched = self._rest(
            lambda: self._klines.closed_klines_range(
                self.symbol, self.contract, self.timeframe, start_ms, end_ms
            )
        )
        self._gaps_backfilled += 1
        if len(fetched) < missing:
            self._unrepaired = True
            self.log.warning(
                f"exchange returned {len(fetched)} of {missing} missing candles "
                f"{start_ms}..{end_ms}; no new entries until this pair restarts"
            )
        self._feed(fetched, live=True)

    def _rest(self, call: Callable[[], list[Kline]], attempts: int = 5) -> list[Kline]:
        """A REST read that waits out a 429/418 instead of crashing (which would spend the restart budget).

        The shared weight budget holds the next request until Retry-After has passed, so retrying is waiting.
        """
        for attempt in range(1, attempts):
            try:
                return call()
            except RateLimited as exc:
                self.log.warning(f"rate limited ({exc.retry_after_s:g}s), attempt {attempt}")
        return call()

    def _feed(self, klines: Sequence[Kline], *, live: bool, received_ns: int = 0, late: bool = False) -> None:
        for kline in klines:
            view = self._portfolio()
            started = time.perf_counter()
            decision = self.strategy.on_closed_kline(
                kline, position_open=self.symbol in view.open_symbols, open_positions=view.open_positions
            )
            if live and self._observe is not None:
                self._observe(kline, time.perf_counter() - started, decision if self.trading else None)
            if decision is None or not live or not self.trading:
                continue
            self._decisions += 1
            if decision.taken and (self._unrepaired or late):
                reason = SkipReason.GAP_UNREPAIRED if self._unrepaired else SkipReason.LATE
                decision = replace(decision, outcome=Outcome.SKIPPED, reason=reason)
                self.strategy.record_rejection(decision)
            self._last_decision = decision
            self._emit(decision, received_ns)
        self._publish()

    def _emit(self, decision: Decision, received_ns: int) -> None:
        if decision.taken and self._executor is not None:
            if self._priority is not None:
                self._priority.begin(self.symbol)
            self._executor.tell(SubmitEntry(decision=decision, received_ns=received_ns))
        if self._ledger is not None:
            self._ledger.tell(decision)

    def _publish(self) -> None:
        if self._on_status is not None:
            self._on_status(self.status())

    def status(self) -> PairStatus:
        """Immutable snapshot for the shell and metrics."""
        return PairStatus(
            symbol=self.symbol,
            timeframe=self.timeframe,
            trading=self.trading,
            warm=self._warm,
            unrepaired_gap=self._unrepaired,
            strategy=self.strategy.snapshot(),
            gaps_backfilled=self._gaps_backfilled,
            decisions=self._decisions,
            last_decision=self._last_decision,
        )
