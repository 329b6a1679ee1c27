"""PairTimeframe actor: one (symbol, timeframe), its talipp state, its pair's strategy (V1 or V2) and exits.

Life of an incarnation: the supervisor registers it in the router (so candles closing from now on reach it),
``start_actor`` asks the ``RestQueue`` for its history and returns at once; candles arriving before the
history are kept aside; the history (``HistoryFetched``) warms the strategy up, the candles kept aside follow,
then live candles flow through ``on_kline_closed``. A candle that is not the next one after the last seen
triggers an exact REST backfill first; if the exchange cannot supply the missing candles the gap stays
*unrepaired* and the pair refuses to open trades until the next restart rebuilds it from a clean window.

Its history is read in its turn: a cold start serves pairs by ``rank`` (their place in the config), so each
pair is warm, and trades, as soon as its own reads are done; a restarted incarnation goes first.

Only the signal timeframe trades: per closed candle, the pair's ``PairDecider`` may ask for a time or
reversal exit of the open position (told to the executor as ``ClosePosition``) and then decides the
crossover (``SubmitEntry``). Other timeframes keep the same bounded indicator state for inspection; those a
V2 pair follows also keep trend tracks and tell each closed candle's trend to the deciding actors
(``TrendUpdated``, ``trend_links``), after that candle is done here and before it is reported done.

A signal timeframe that a run before this one traded resumes where that run's decisions end
(:mod:`.decision_resume`): the candles that closed while no incarnation was deciding are decided now, once,
only the newest of them may trade, the others are recorded ``late``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import pykka

from ..domain.exits import EntryFacts, ExitParams, entry_candle_open
from ..domain.fills import ExitReason
from ..domain.model import (
    TIMEFRAME_MS,
    ContractType,
    Decision,
    HeldPosition,
    Kline,
    Outcome,
    PortfolioView,
    SkipReason,
)
from ..domain.strategies import AnyParams, PairDecider, make_strategy
from ..domain.strategy import StrategySnapshot
from ..domain.strategy_v2 import V2Params
from ..exchange.kline_pages import plan_weight
from ..messages import (
    ClosePosition,
    EntryRejected,
    HistoryFetched,
    KlineClosed,
    KlineGapUnrepaired,
    OrderExecutorInbox,
    PairTimeframeInbox,
    PositionLedgerInbox,
    SendTrend,
    SubmitEntry,
    TrendUpdated,
)
from ..runtime.actor import Actor, Address, Monitor
from ..runtime.scheduling import OrderPriority
from .decision_resume import DecidedThrough, resume_after, resumed
from .funding_watch import FundingSource, FundingWatch
from .rest_queue import COLD, URGENT, RestQueue
from .trend_links import Tell, TrendLinks, TrendPublisher

MAX_WARMUP = 1500
"""Binance's largest klines page: one REST call warms any actor up."""
WARMUP_EXTRA = 10
"""Candles read at warm-up beyond what the strategy needs: headroom for the talipp purge batches."""


def history_weight(params: AnyParams, extra: int = WARMUP_EXTRA) -> int:
    """Request weight of one pair actor's warm-up read (the cheapest pages for its history)."""
    return plan_weight(min(MAX_WARMUP, params.warmup_candles() + extra))


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
    """Runs its pair's strategy and exits on one (symbol, timeframe) (see the module docstring)."""

    def __init__(
        self,
        *,
        symbol: str,
        timeframe: str,
        contract: ContractType,
        params: AnyParams,
        trading: bool,
        rest: RestQueue,
        portfolio: Callable[[], PortfolioView],
        executor: Address[OrderExecutorInbox] | None,
        ledger: Address[PositionLedgerInbox] | None,
        exits: ExitParams | None = None,
        links: TrendLinks | None = None,
        tell_pair: Tell | None = None,
        funding: FundingSource | None = None,
        monitor: Monitor | None = None,
        generation: int = 0,
        on_processed: Callable[[str, str, int], None] | None = None,
        on_status: Callable[[PairStatus], None] | None = None,
        observe: Callable[[Kline, float, Decision | None], None] | None = None,
        warmup_extra: int = WARMUP_EXTRA,
        priority: OrderPriority | None = None,
        decided_through: DecidedThrough | None = None,
        on_decided: Callable[[str, str, int], None] | None = None,
        rank: int = 0,
    ) -> None:
        """``rank``: the pair's place in the config; a cold start reads history in that order."""
        super().__init__(name=f"pair:{symbol}:{timeframe}", monitor=monitor, generation=generation)
        self.symbol = symbol
        self.timeframe = timeframe
        self.contract = contract
        self.params = params
        self.trading = trading
        self._rest = rest
        self._portfolio = portfolio
        self._executor = executor
        self._ledger = ledger
        self._on_processed = on_processed
        self._on_status = on_status
        self._observe = observe
        self._priority = priority
        """Told before each entry, so the market-data reader steps aside until it is sent."""
        self._decided_through = decided_through
        self._on_decided = on_decided
        """Told each decision's candle before the ledger is (``DecisionMarks.note``)."""
        self._links = links or TrendLinks()
        self._tell_pair = tell_pair
        periods = [period for period, _ in self._links.publish]
        self._warmup = min(
            MAX_WARMUP, max([params.warmup_candles(), *(5 * p for p in periods)]) + warmup_extra
        )
        self._tf_ms = TIMEFRAME_MS[timeframe]
        self.decider = PairDecider(make_strategy(symbol, timeframe, params), exits or ExitParams())
        self.strategy = self.decider.strategy
        self._trends = TrendPublisher(symbol, timeframe, self._links, tell_pair) if tell_pair else None
        filtered = isinstance(params, V2Params) and params.max_funding_rate is not None
        self._funding = (
            FundingWatch(symbol, contract, funding, self.log) if trading and filtered and funding else None
        )
        self._exited: tuple[int | None, int] | None = None
        """(signal, opened at) of the position a close was last told for: not told twice."""
        self._warm = False
        self._unrepaired = False
        self._gaps_backfilled = 0
        self._decisions = 0
        self._last_decision: Decision | None = None
        self._decided_mark: int | None = None
        """The last candle a predecessor decided: a candle up to it reaching this incarnation again (kept
        aside before the history, or repaired after a reconnect) is fed, not decided a second time."""
        self._rank = (URGENT,) if generation > 1 else (COLD, rank, self._tf_ms)
        self._early: list[KlineClosed] = []
        """Candles that arrived before the history: fed right after it (bounded by the warm-up's length)."""

    def start_actor(self) -> None:
        count = self._warmup
        future = self._rest.submit(
            lambda source: source.recent_closed_klines(self.symbol, self.contract, self.timeframe, count),
            rank=self._rank,
        )
        future.add_done_callback(self._history_read)
        self._publish()

    def _history_read(self, future: Future[list[Kline]]) -> None:
        """On a queue worker's thread: hand the history (or why there is none) to the actor."""
        try:
            message = HistoryFetched(klines=tuple(future.result()))
        except Exception as exc:
            message = HistoryFetched(klines=(), error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(message)

    def on_history_fetched(self, message: HistoryFetched) -> None:
        """The warm-up history: feed it, then the candles that arrived meanwhile. A failed read fails the
        actor, and its supervisor starts a fresh one (with backoff, within the pair's restart budget)."""
        if message.error is not None:
            raise RuntimeError(f"{self.name}: history unavailable: {message.error}")
        if self.trading and self._decided_through is not None:
            self._decided_mark = self._decided_through(self.symbol, self.timeframe)
        history = self._warm_up(list(message.klines))
        if self._trends is not None:
            self._trends.publish_latest()
        if self._funding is not None:
            self._funding.refresh(history[-1].open_time_ms + self._tf_ms if history else 0)
        if self._tell_pair is not None:  # a reading comes once per candle of its timeframe: ask now
            for symbol, timeframe in self._links.follows:
                self._tell_pair(
                    symbol, timeframe, SendTrend(to_symbol=self.symbol, to_timeframe=self.timeframe)
                )
        self._warm = True
        if self._on_processed is not None and history:  # replay lock-step: warm-up covered these steps
            self._on_processed(self.symbol, self.timeframe, history[-1].open_time_ms)
        self.log.info(f"warm with {len(history)} candles")
        early, self._early = self._early, []
        for candle in early:
            self._on_candle(candle)
        self._publish()

    def _warm_up(self, history: list[Kline]) -> list[Kline]:
        """Feed the warm-up; a pair resuming a previous run's decisions decides what it missed."""
        resume = resume_after(self._decided_mark, history)  # read once, in on_history_fetched
        if resume is None:
            self._feed(history, live=False)
            return history
        split = resumed(
            resume,
            history,
            warmup=self._warmup,
            tf_ms=self._tf_ms,
            read_range=self._range,
            warn=self.log.warning,
        )
        self._feed(split.known, live=False)
        self._feed(split.missed[:-1], live=True, late=True)
        self._feed(split.missed[-1:], live=True)
        self.log.info(f"resumed after {resume}: {len(split.missed)} candles decided on warm-up")
        return [*split.known, *split.missed]

    def _range(self, first_ms: int, last_ms: int) -> list[Kline]:
        return self._rest.run(
            lambda source: source.closed_klines_range(
                self.symbol, self.contract, self.timeframe, first_ms, last_ms
            ),
            rank=(URGENT,),
        )

    def on_kline_closed(self, message: KlineClosed) -> None:
        """A closed candle from the stream (or its backfill); older or duplicate ones are ignored.

        The reader waits for ``message.turn`` (when set) before reading on: it is done once the candle is
        decided and any entry told, and in every case, so a failing candle never holds the reader longer.
        Before the history has arrived the candle is kept aside (and the reader released at once).
        """
        if not self._warm:
            if message.turn is not None:
                message.turn.done()
            self._early.append(message)
            return
        self._on_candle(message)

    def takes_here(self, message: object) -> bool:
        """The market-data reader may decide a streamed candle on its own thread (``Actor.run_here``) when
        nothing in that can block it: the pair is warm, the candle is the next one (no backfill), and no
        funding rate read is due after it."""
        if type(message) is not KlineClosed or not self._warm:
            return False
        opened, last = message.kline.open_time_ms, self.strategy.last_open_time_ms
        if last is None or opened != last + self._tf_ms:
            return False
        return self._funding is None or not self._funding.due(opened + self._tf_ms)

    def _on_candle(self, message: KlineClosed) -> None:
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

    def on_trend_updated(self, message: TrendUpdated) -> None:
        """A trend this pair follows: its timeframe's candle closed (kept for the decisions it serves)."""
        self.strategy.on_trend(message.reading)

    def on_send_trend(self, message: SendTrend) -> None:
        """A deciding actor (re)started and asks for the trends it follows from here."""
        if self._trends is not None:
            self._trends.publish_latest(message)

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
        fetched = self._range(start_ms, end_ms)
        self._gaps_backfilled += 1
        if len(fetched) < missing:
            self._unrepaired = True
            self.log.warning(
                f"exchange returned {len(fetched)} of {missing} missing candles "
                f"{start_ms}..{end_ms}; no new entries until this pair restarts"
            )
        self._feed(fetched, live=True)

    def _feed(self, klines: Sequence[Kline], *, live: bool, received_ns: int = 0, late: bool = False) -> None:
        mark = self._decided_mark if self._decided_mark is not None else -1
        for kline in klines:
            acting = live and self.trading and kline.open_time_ms > mark
            view = self._portfolio()
            held = view.position(self.symbol) if acting else None
            started = time.perf_counter()
            outcome = self.decider.on_closed_kline(
                kline,
                position=self._entry_facts(held),
                position_open=self.symbol in view.open_symbols,
                open_positions=view.open_positions,
                funding=None if self._funding is None else self._funding.rate_for(kline.open_time_ms),
            )
            decision = outcome.decision
            if live and self._observe is not None:
                self._observe(kline, time.perf_counter() - started, decision if self.trading else None)
            if acting and outcome.exit is not None and held is not None:
                self._close(held, outcome.exit, kline)
            if acting and decision is not None:
                self._decisions += 1
                if decision.taken and (self._unrepaired or late):
                    reason = SkipReason.GAP_UNREPAIRED if self._unrepaired else SkipReason.LATE
                    decision = replace(decision, outcome=Outcome.SKIPPED, reason=reason)
                    self.strategy.record_rejection(decision)
                self._last_decision = decision
                self._emit(decision, received_ns)
            if self._trends is not None:
                self._trends.feed(kline, publish=live)
            if acting and self._funding is not None:
                self._funding.after_candle(kline.open_time_ms + self._tf_ms)
        self._publish()

    def _entry_facts(self, held: HeldPosition | None) -> EntryFacts | None:
        """The ledger's position as the exits see it (None once a close was told for it)."""
        if held is None or self._exited == (held.signal_open_time_ms, held.opened_at_ms):
            return None
        return EntryFacts(
            direction=held.direction, entry_open_time_ms=entry_candle_open(held.opened_at_ms, self._tf_ms)
        )

    def _close(self, held: HeldPosition, reason: ExitReason, kline: Kline) -> None:
        self._exited = (held.signal_open_time_ms, held.opened_at_ms)
        if self._executor is not None:
            self._executor.tell(
                ClosePosition(
                    symbol=self.symbol,
                    direction=held.direction,
                    quantity=held.quantity,
                    signal_open_time_ms=held.signal_open_time_ms,
                    reason=reason,
                    candle_open_time_ms=kline.open_time_ms,
                )
            )

    def _emit(self, decision: Decision, received_ns: int) -> None:
        if self._on_decided is not None:
            self._on_decided(self.symbol, self.timeframe, decision.decided_open_time_ms)
        if decision.taken and self._executor is not None:
            if self._priority is not None:
                self._priority.begin(self.symbol)
            self._executor.tell(SubmitEntry(decision=decision, received_ns=received_ns))
            if self._priority is not None:  # the entry goes out before this pair's bookkeeping
                self._priority.step_aside()
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
