"""``MarketStream``: the shared market-data actor of one market (USDⓈ-M or COIN-M).

It owns the WebSocket connections (``actors.exchange.ws.MarketConnections``: one background thread and
event loop for all of them), a ``KlineSequencer`` and a REST gateway for backfill (:mod:`.kline_backfill`),
and routes every closed candle exactly once, in order, to the pair actor registered for (symbol, timeframe):

* fast path, on the ws thread: the frame is parsed, the sequencer says DELIVER and the candle is told to
  the pair actor at once (``router.tell``): one thread hop from the socket to the strategy. With candle
  hand-offs on, a deciding pair that is idle has the candle decided right here, on the ws thread
  (``router.run_here``: no thread hop at all), and a busy one is told and waited for;
* gap (a streamed candle is newer than last + timeframe): the ws thread hands the key over to this actor
  (``KlineReceived``), which fetches the missing closed candles over REST and tells them in order
  (``backfilled=True``) BEFORE the newer one; what the exchange itself lacks is recorded as an unrepaired
  gap (``KlineGapUnrepaired`` to the pair, and on the board) and never invented;
* after any reconnect or stall of a connection: every key on it is handed over the same way and
  backfilled from its last closed open time to the server's now, in order, before later frames.

A key handed over stays *held*: its later candles queue behind the repair in this actor's mailbox, in
order, until the actor has caught up; the other keys keep the fast path meanwhile. The sequencer and the
hold counts change only under one lock, and every delivery happens under it, so the fast path and the
repairs can never reorder a key's candles. The REST calls themselves run outside the lock.

Unclosed kline updates never reach the actors and never drive decisions: the ws thread writes their price
into the thread-safe ``PriceBoard`` (latest price per symbol and when it arrived), which is what unrealized
PnL and price staleness checks read.

Status for metrics and the shell is read from ``MarketStreamBoard.snapshot()`` from any thread, without
asking the actor; both boards are in :mod:`.market_stream_board`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable

import pykka

from ...domain.kline_sequencer import Accepted, Key, KlineSequencer, OpenRange, Verdict
from ...domain.model import TIMEFRAME_MS, ContractType, Kline
from ...exchange.kline_frames import kline_stream
from ...exchange.shard_connection import ConnectionEvent, WsConfig
from ...exchange.stream_sockets import StreamRoots
from ...exchange.ws import MarketConnections
from ...messages import (
    ConnectionStatusChanged,
    KlineClosed,
    KlineGapUnrepaired,
    KlineReceived,
    MarketStreamInbox,
    PairTimeframeInbox,
    SetCandleHandoff,
    Subscribe,
    Unsubscribe,
)
from ...runtime.actor import Actor, Monitor
from ...runtime.routing import Router
from ...runtime.scheduling import CandleTurn, OrderPriority
from .deciding_first import DecidingFirst
from .kline_backfill import KlineBackfill, KlineGateway
from .market_stream_board import MarketStreamBoard


class MarketStream(Actor[MarketStreamInbox]):
    """One per market; see the module docstring."""

    def __init__(
        self,
        *,
        contract: ContractType,
        router: Router[PairTimeframeInbox],
        gateway: KlineGateway,
        roots: StreamRoots,
        board: MarketStreamBoard | None = None,
        config: WsConfig | None = None,
        rest_attempts: int = 3,
        name: str | None = None,
        monitor: Monitor | None = None,
        generation: int = 0,
        gate: Callable[[Kline], object] | None = None,
        tap: Callable[[Kline], object] | None = None,
        priority: OrderPriority | None = None,
        handoff_ms: float = 0.0,
        decides: Callable[[str, str], bool] | None = None,
        event_time: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(
            name=name or f"market-stream-{contract.value}", monitor=monitor, generation=generation
        )
        self._handoff_s = handoff_ms / 1e3
        """> 0: after each streamed closed candle, wait up to this long for its pair to finish it."""
        self._decides = decides
        """Which (symbol, timeframe) pair actors make decisions (None: all). Only those are waited for: an
        indicator-only timeframe is told and left to run, so a close of every timeframe at once (1h and 4h
        together) does not hold the reader behind thousands of candles nobody trades on."""
        self._gate = gate
        self._tap = tap
        self.contract = contract
        self.board = board or MarketStreamBoard(contract)
        self._router = router
        self._seq = KlineSequencer()
        self._lock = threading.Lock()
        """Guards the sequencer, the keys and the holds; every delivery to a pair happens under it."""
        self._held: dict[Key, int] = {}
        """Keys whose candles go through this actor (repair pending or queued behind one), with counts."""
        self._key_of: dict[str, Key] = {}
        self._keys: set[Key] = set()
        self._prices = self.board.prices
        self._latencies = self.board.latencies_ns
        self._ws = MarketConnections(
            contract=contract,
            roots=roots,
            on_kline=self._from_ws,
            on_status=self._status_from_ws,
            config=config,
            name=f"{self.name}-ws",
            # paper trading follows every update of the market; otherwise an update is only a price
            on_price=self._prices.update if tap is None else None,
            before_frame=priority.step_aside if priority is not None and priority.enabled else None,
            on_event_time=event_time,
        )
        self._first = (
            DecidingFirst(
                lambda close_ms: self._deciding_at(close_ms, decides),
                schedule=lambda s: self._ws.call_later(s, self._tell_overdue),
            )
            if decides is not None and gate is None  # lock-step replay: every candle in its step anyway
            else None
        )
        """Indicator-only candles of a close wait for its deciding ones (``deciding_first``)."""
        self.board.attach(self._ws, self._seq, self._held)
        self._backfill = KlineBackfill(
            gateway=gateway,
            contract=contract,
            attempts=rest_attempts,
            board=self.board,
            name=self.name,
            log=self.log,
        )

    def start_actor(self) -> None:
        self._ws.start()

    def stop_actor(self) -> None:
        self._ws.stop()

    # --- called on the ws thread (must only tell / touch thread-safe state) ---------------------------

    def _from_ws(self, kline: Kline, received_ns: int) -> None:
        self._prices.update(kline.symbol, kline.close, received_ns)
        if self._tap is not None:  # paper trading: the simulated broker follows the real market
            self._tap(kline)
        if not kline.closed:
            return
        if self._gate is not None:  # replay lock-step only: wait until the step's fills are in
            self._gate(kline)
        key = (kline.symbol, kline.timeframe)
        handoff: KlineReceived | None = None
        handoff_s = self._handoff_s  # read once: a reload may change it meanwhile
        decides, first = self._decides, self._first
        deciding = decides is None or decides(*key)
        turn = CandleTurn() if handoff_s and deciding else None
        handed = False
        due: list[tuple[Kline, int]] = []
        with self._lock:
            if key not in self._keys:
                return  # in flight when unsubscribed
            if key in self._held:  # queued behind a repair: the actor delivers it, in order
                handoff = KlineReceived(kline=kline, received_ns=received_ns)
            else:
                accepted = self._seq.accept(kline)
                if accepted.verdict is Verdict.DUPLICATE:
                    return
                if accepted.verdict is Verdict.GAP:
                    handoff = KlineReceived(kline=kline, received_ns=received_ns, missing=accepted.missing)
                elif first is None:
                    handed = self._tell_streamed(kline, received_ns, turn)
                elif deciding:
                    self._tell_held(first.take((key,)))  # held while indicator-only (before a reload)
                    handed = self._tell_streamed(kline, received_ns, turn)
                    due = first.told(kline)  # the close's last deciding candle releases the rest
                else:
                    admitted = first.admit(kline, received_ns)
                    if admitted:
                        self._tell_held(admitted, received_ns)
                    else:
                        self.board.candles_held_back += 1
            if handoff is not None:
                self._hold((key,))
        if handoff is None:
            # Hand the GIL to the pair actor just woken, now: otherwise it waits behind the rest of the
            # burst this thread is reading (250 frames at a minute close with 50 pairs × 5 timeframes).
            # With a turn, wait (bounded) until that pair has decided, so candles are decided in arrival
            # order (a pair that was idle has decided already, on this thread); without hand-offs,
            # sleep(0) lets it run now unless another woken thread wins the GIL first. An indicator-only
            # timeframe (no turn while hand-offs are on) runs when the GIL is free.
            # Measured in bench/live_latency.py: see the README's live-pipeline table.
            if handed and turn is not None:
                waited = time.perf_counter_ns()
                if not turn.wait(handoff_s):
                    self.board.handoff_timeouts += 1
                self.board.handoff_wait_ns += time.perf_counter_ns() - waited
                self.board.handoffs += 1
            elif not handoff_s:
                time.sleep(0)
            if due:  # after the last deciding pair's turn; only this thread starts a repair, so none began
                with self._lock:
                    self._tell_held(due)
            return
        try:  # noqa: SIM105 - hot path: a bare try costs less than contextlib.suppress
            self.actor_ref.tell(handoff)
        except pykka.ActorDeadError:
            pass

    def _status_from_ws(self, event: ConnectionEvent) -> None:
        held: frozenset[Key] = frozenset()
        if event.connected and event.resumed:  # frames may be lost: hold the keys until backfilled
            with self._lock:
                held = frozenset(self._key_of[s] for s in event.streams if s in self._key_of)
                self._hold(held)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(ConnectionStatusChanged(event=event, held=held))

    # --- handlers ----------------------------------------------------------------------------------------

    def on_set_candle_handoff(self, msg: SetCandleHandoff) -> None:
        self._handoff_s = max(0.0, msg.ms) / 1e3  # one float, read by the reader before each candle

    def on_subscribe(self, msg: Subscribe) -> None:
        with self._lock:
            fresh = [key for key in dict.fromkeys(msg.keys) if key not in self._keys]
        if not fresh:
            return
        now = self._backfill.server_time_ms()  # tracked (no request), else asked once for all these keys
        streams = []
        with self._lock:
            for symbol, tf in fresh:
                if tf not in TIMEFRAME_MS:
                    self.log.error(f"unknown timeframe {tf!r} for {symbol}; not subscribed")
                    continue
                if now is not None:  # the first streamed candle must then prove continuity from here
                    step = TIMEFRAME_MS[tf]
                    self._seq.track(symbol, tf, now // step * step - step)
                self._keys.add((symbol, tf))
                self._key_of[kline_stream(symbol, tf)] = (symbol, tf)
                streams.append(kline_stream(symbol, tf))
        self._ws.subscribe(streams)

    def on_unsubscribe(self, msg: Unsubscribe) -> None:
        with self._lock:
            gone = [key for key in dict.fromkeys(msg.keys) if key in self._keys]
            if self._first is not None:
                self._first.take(gone)  # held candles of keys nobody reads any more
            for symbol, tf in gone:
                self._keys.discard((symbol, tf))
                self._key_of.pop(kline_stream(symbol, tf), None)
                self._seq.forget(symbol, tf)
        if gone:
            self._ws.unsubscribe(kline_stream(s, tf) for s, tf in gone)

    def on_kline_received(self, msg: KlineReceived) -> None:
        """A closed kline of a held key: repair the gap before it if there is one, then deliver it."""
        kline = msg.kline
        key = (kline.symbol, kline.timeframe)
        try:
            with self._lock:
                if key not in self._keys:
                    return  # unsubscribed meanwhile
                accepted = self._judge(msg)
                if accepted.verdict is Verdict.GAP and accepted.missing is not None:
                    missing = accepted.missing
                else:
                    if accepted.verdict is Verdict.DELIVER:
                        self._tell_streamed(kline, msg.received_ns)
                    return
            fetched = self._backfill.fetch(missing) or []  # REST, outside the lock: the fast path goes on
            with self._lock:
                for candle in fetched:
                    self._deliver_backfilled(candle)
                self._settle(missing)
                if self._seq.accept(kline).verdict is Verdict.DELIVER:
                    self._tell_streamed(kline, msg.received_ns)
        finally:
            self._release((key,))

    def on_connection_status_changed(self, msg: ConnectionStatusChanged) -> None:
        event = msg.event
        self.log.info(
            f"connection #{event.conn_id} {'up' if event.connected else 'down'}"
            f"{' (resumed)' if event.resumed else ''} {event.reason}".rstrip()
        )
        try:
            if not msg.held:
                return
            now = self._backfill.server_time_ms(fresh=True)
            if now is None:
                return  # the next streamed candle of each key shows the gap and repairs it
            with self._lock:
                ranges = self._seq.after_reconnect(now, msg.held & self._keys)
            for missing in ranges:
                fetched = self._backfill.fetch(missing) or []
                with self._lock:
                    for candle in fetched:
                        self._deliver_backfilled(candle)
        finally:
            self._release(msg.held)

    # --- delivery (under self._lock) ------------------------------------------------------------------

    def _judge(self, msg: KlineReceived) -> Accepted:
        """The ws thread's GAP verdict if nothing moved the key since (it counted the gap), else a new one."""
        gap = msg.missing
        if gap is not None:
            step = TIMEFRAME_MS[gap.timeframe]
            if self._seq.last_open(gap.symbol, gap.timeframe) == gap.start_ms - step:
                return Accepted(Verdict.GAP, gap)
        return self._seq.accept(msg.kline)

    def _hold(self, keys: Iterable[Key]) -> None:
        """Under the lock: route these keys' candles through the actor until released (counted). A candle
        of theirs held back for the deciding ones goes first: it is older than anything the repair brings."""
        keys = tuple(keys)
        if self._first is not None:
            self._tell_held(self._first.take(keys))
        for key in keys:
            self._held[key] = self._held.get(key, 0) + 1

    def _release(self, keys: Iterable[Key]) -> None:
        with self._lock:
            for key in keys:
                left = self._held.get(key, 0) - 1
                if left > 0:
                    self._held[key] = left
                else:
                    self._held.pop(key, None)

    def _tell_streamed(self, kline: Kline, received_ns: int, turn: CandleTurn | None = None) -> bool:
        """Deliver a streamed candle; True when it went to its pair's thread (then ``turn`` is out there).

        With a ``turn`` (hand-offs on, a deciding pair) an idle pair decides it here and now, on this
        thread; the latency sample is taken before, so it stays frame read → candle delivered."""
        message = KlineClosed(kline=kline, received_ns=received_ns, turn=turn)
        symbol, timeframe = kline.symbol, kline.timeframe
        self._latencies.append(time.perf_counter_ns() - received_ns)
        if turn is not None and self._router.run_here(symbol, timeframe, message):
            self.board.handoffs += 1
            self.board.handoffs_here += 1
            return False
        return self._router.tell(symbol, timeframe, message)

    def _tell_held(self, candles: list[tuple[Kline, int]], now_read: int = 0) -> None:
        """Tell candles ``DecidingFirst`` let go, in order; their wait is not the reader's pace, so only the
        one read just now (``now_read``: its frame's read time) is sampled as the fast path's latency."""
        for kline, received_ns in candles:
            if (kline.symbol, kline.timeframe) not in self._keys:
                continue  # unsubscribed while held
            if received_ns == now_read:
                self._tell_streamed(kline, received_ns)
            else:
                self._router.tell(
                    kline.symbol, kline.timeframe, KlineClosed(kline=kline, received_ns=received_ns)
                )

    def _tell_overdue(self) -> None:
        """On the reader's loop, ``MAX_HOLD_S`` after a close first held a candle: what is still held goes."""
        if self._first is not None:
            with self._lock:
                self._tell_held(self._first.overdue())

    def _deciding_at(self, close_ms: int, decides: Callable[[str, str], bool]) -> int:
        """Under the lock: subscribed keys whose pair decides and whose candle closes at ``close_ms``."""
        return sum(1 for s, tf in self._keys if close_ms % TIMEFRAME_MS[tf] == 0 and decides(s, tf))

    def _settle(self, missing: OpenRange) -> None:
        hole = self._seq.settle_gap(missing)
        if hole is None:
            return
        self.log.error(
            f"{hole.symbol} {hole.timeframe}: {hole.count} candle(s) from {hole.start_ms} "
            f"to {hole.end_ms} missing on the exchange; not invented, pair told"
        )
        self._tell_unrepaired(hole)

    def _tell_unrepaired(self, hole: OpenRange) -> None:
        self._router.tell(
            hole.symbol,
            hole.timeframe,
            KlineGapUnrepaired(
                symbol=hole.symbol,
                timeframe=hole.timeframe,
                start_open_ms=hole.start_ms,
                end_open_ms=hole.end_ms,
            ),
        )

    def _deliver_backfilled(self, kline: Kline) -> None:
        before = self._seq.unrepaired_gaps
        if self._seq.accept(kline, backfilled=True).verdict is not Verdict.DELIVER:
            return
        if self._seq.unrepaired_gaps != before:
            self._tell_unrepaired(self._seq.unrepaired(kline.symbol, kline.timeframe)[-1])
        self._router.tell(kline.symbol, kline.timeframe, KlineClosed(kline=kline, backfilled=True))
