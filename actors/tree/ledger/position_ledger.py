"""PositionLedger actor: the durable record of decisions, orders and positions, and the exchange's mirror.

It persists everything it hears (SQLite, :mod:`.ledger_store`, through :mod:`.ledger_trades`), closes a
trade when the exchange says it is flat, cancels the sibling protective order, and reconciles with the
exchange (:mod:`.reconciliation_runner`) at start, every ``reconcile_interval_s``, after a user-stream
reconnect, when an executor finishes an entry it could not see through, when a stop of an open position
ends without filling, and on demand. While a reconciliation leaves something unsettled (a naked position,
the exchange unavailable, a close not yet seen) the next one runs within ``UNSETTLED_RETRY_S``.

An executor owns its entry until it says ``EntryFinished``; meanwhile reconciliation leaves the symbol
alone, so it never races the executor's stop or its close at market. After each complete reconciliation
the ledger tells ``on_settled`` which symbols are open, so entry slots of symbols the exchange shows flat
are freed whatever happened to the executor that claimed them.

Closing is driven by whichever of these arrives first, so any order and any duplicate of them is fine:
exit fills (ORDER_TRADE_UPDATE on the closing side) that add up to the position's quantity, an
ACCOUNT_UPDATE showing the symbol flat, the algo update FINISHED of our stop/take-profit/trailing stop,
or the executor's report that its time or reversal close filled (it comes before the executor's next
entry on the symbol, which a reversal may make at once). Exit fills are stored per order with their
cumulative quantity, so a duplicated fill is ignored and a fill that arrives after the close — or after
the next trade of the symbol opened — amends the trade's exit price and PnL. An ACCOUNT_UPDATE older
than the position it would close is a report on the previous one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pykka

from ...config import ExecutionSettings
from ...domain.model import ContractType, Decision, Leg, PortfolioView
from ...exchange.types import (
    AccountUpdate,
    AlgoStatus,
    AlgoUpdate,
    ListenKeyExpired,
    OrderUpdate,
    UserStreamStatus,
)
from ...messages import (
    Alert,
    EntryFinished,
    EntryRejected,
    OrderStateChanged,
    PositionLedgerInbox,
    PositionOpened,
    Reconcile,
)
from ...runtime.actor import Actor, Monitor
from ...runtime.scheduling import OrderPriority
from .entry_intents import EntryIntents
from .ledger_records import PositionRecord
from .ledger_snapshots import LedgerGateway, LedgerSnapshots, margin_asset_of
from .ledger_store import LedgerStore
from .ledger_trades import EXIT_REASON, PROTECTIVE, LedgerTrades
from .reconciliation import closing_side, is_ours, parse_client_id
from .reconciliation_runner import ReconciliationRunner

if TYPE_CHECKING:
    from ...runtime.thread_watch import ThreadWatch

_CLOSE_TIME_LEGS = frozenset({Leg.TIME_EXIT, Leg.REVERSAL})
_ENTRY_GRACE_S = 120.0
"""How long an entry may stay in flight (no EntryFinished yet) before reconciliation judges its symbol: a
fallback only, for an executor that hangs (one that fails tells ``EntryFinished`` as it goes)."""
_FULL_READS = frozenset({"startup", "periodic"})
"""Reconciliations that read every open order of the account (the others read the held symbols' only)."""
UNSETTLED_RETRY_S = 1.0
"""The next reconciliation's delay while the last one left something unsettled."""


def _guess_contract(symbol: str) -> ContractType:
    # BTCUSD_PERP, ETHUSD_250926 are COIN-M; BTCUSDT, BTCUSDT_250926 USDⓈ-M.
    return ContractType.COIN_M if symbol.split("_", maxsplit=1)[0].endswith("USD") else ContractType.USDT_M


class PositionLedger(Actor[PositionLedgerInbox]):
    """The shared position ledger (see the module docstring). Opening the store happens in the
    constructor, so a corrupt or unreadable ledger fails ``PositionLedger.start(...)`` in the caller."""

    def __init__(
        self,
        *,
        store_path: Path,
        gateways: Mapping[ContractType, LedgerGateway],
        execution: ExecutionSettings,
        publish_portfolio: Callable[[PortfolioView], None],
        alert: Callable[[Alert], None],
        listeners: Callable[[object], None],
        contracts: Mapping[str, ContractType] | None = None,
        margin_assets: Mapping[str, str] | None = None,
        snapshots: LedgerSnapshots | None = None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monitor: Monitor | None = None,
        generation: int = 0,
        name: str = "ledger",
        priority: OrderPriority | None = None,
        threads: ThreadWatch | None = None,
        ticks: Mapping[str, Decimal] | None = None,
        on_settled: Callable[[frozenset[str], float], None] | None = None,
    ) -> None:
        """``ticks``: price tick per symbol (levels of entries settled by reconciliation are rounded to it);
        ``on_settled(open_symbols, since)``: after each complete reconciliation that began at ``since``
        (``time.monotonic()``), the symbols open on the exchange, in the ledger or in flight."""
        super().__init__(name=name, monitor=monitor, generation=generation)
        self._priority = priority
        self._threads = threads
        """Watches the reconcile timer: if it dies, the naked-position check stops and the process says so."""
        self.store = LedgerStore(store_path)
        self._execution = execution
        self._listeners = listeners
        self._contracts = dict(contracts or {})
        self._margin_assets = dict(margin_assets or {})
        self.snapshots = snapshots or LedgerSnapshots()
        self._clock_ms = clock_ms
        self._trades = LedgerTrades(
            store=self.store,
            gateways=gateways,
            snapshots=self.snapshots,
            publish_portfolio=publish_portfolio,
            listeners=listeners,
            clock_ms=clock_ms,
        )
        self._intents = EntryIntents(self.store, ticks or {})
        self._on_settled = on_settled
        self._reconciler = ReconciliationRunner(
            trades=self._trades,
            intents=self._intents,
            gateways=gateways,
            execution=execution,
            snapshots=self.snapshots,
            alert=alert,
            margin_assets=self._margin_assets,
            contract_of=lambda symbol: self._contracts.get(symbol) or _guess_contract(symbol),
            clock_ms=clock_ms,
            log=self.log,
        )
        self._in_flight: dict[str, float] = {}
        """Symbols whose entry an executor still holds (no EntryFinished yet), since ``time.monotonic()``."""
        self._doubtful: set[str] = set()
        """Symbols whose entry's outcome was never confirmed: the next complete reconciliation settles it."""
        self._stop_lost: set[str] = set()
        """In-flight symbols whose stop ended without filling: reconcile as soon as their entry finishes."""
        self._unsettled = False
        self._timer_stop = threading.Event()
        self._queued = threading.Event()
        self._timer: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        """Every message waits, at most ``hold_ms``, for an entry on its way out (``OrderPriority``): the
        ledger's bookkeeping never delays an order (nothing on the entry path waits for the ledger)."""
        if self._priority is not None:
            self._priority.step_aside()
        return super().on_receive(message)

    def start_actor(self) -> None:
        self._trades.load()
        self._doubtful = self._intents.doubtful()
        self._reconcile("startup")
        self._timer = threading.Thread(target=self._tick, name=f"{self.name}-reconcile", daemon=True)
        if self._threads is not None:
            self._threads.watch(self._timer, role="periodic reconciliation (naked positions)", essential=True)
        self._timer.start()

    def stop_actor(self) -> None:
        self._timer_stop.set()
        self.store.close()

    def _tick(self) -> None:
        last = time.monotonic()
        while not self._timer_stop.wait(min(UNSETTLED_RETRY_S, self._execution.reconcile_interval_s)):
            due = time.monotonic() - last >= self._execution.reconcile_interval_s
            if not (due or self._unsettled) or self._queued.is_set():
                continue  # not yet; or the previous one has not run yet: never pile reconciliations up
            last = time.monotonic()
            self._queued.set()
            try:
                self.actor_ref.tell(Reconcile(reason="periodic" if due else "unsettled"))
            except pykka.ActorDeadError:
                break
        if self._threads is not None:  # ended on purpose (this incarnation stopped): not a death
            self._threads.forget(threading.current_thread().name)

    # ---- executor and strategy events --------------------------------------------------------------

    def on_decision(self, decision: Decision) -> None:
        if not self.store.record_decisions([decision], at_ms=self._clock_ms()):
            detail = f"{decision.timeframe} signal {decision.signal_open_time_ms} decided again"
            self._trades.event("decision_repeated", decision.symbol, detail)

    def on_order_state_changed(self, m: OrderStateChanged) -> None:
        if m.leg is Leg.ENTRY:
            if m.status in {"submitted", "new", "unknown", "filled"}:
                self._in_flight.setdefault(m.symbol, time.monotonic())
            else:
                self._in_flight.pop(m.symbol, None)
        self._trades.merge_order(
            m.client_id, m.symbol, status=m.status, leg=m.leg.value, side=m.side, qty=m.quantity,
            price=m.price, exchange_id=m.exchange_id, detail=m.detail, at_ms=m.at_ms or self._clock_ms(),
        )  # fmt: skip
        held = self._trades.held(m.symbol)
        parsed = parse_client_id(m.client_id)
        ours = held is not None and parsed is not None and held.signal_open_time_ms in {parsed[1], None}
        if (
            m.leg in _CLOSE_TIME_LEGS and m.status == "filled" and ours
        ):  # a time or reversal exit of this trade
            self._trades.note_exit(m.symbol, m.leg)
            self._trades.close(m.symbol, EXIT_REASON[m.leg], at_ms=m.at_ms, exit_price=m.price)

    def on_entry_rejected(self, m: EntryRejected) -> None:
        self._in_flight.pop(m.symbol, None)
        self._trades.event("entry_rejected", m.symbol, f"signal {m.signal_open_time_ms}: {m.reason}")

    def on_entry_finished(self, m: EntryFinished) -> None:
        """The executor let go of the entry: from now on what the exchange holds decides."""
        self._in_flight.pop(m.symbol, None)
        lost = m.symbol in self._stop_lost
        self._stop_lost.discard(m.symbol)
        if m.outcome == "protected" and not lost:
            return
        self._trades.event(f"entry_{m.outcome}", m.symbol, f"signal {m.signal_open_time_ms} {m.detail}")
        if m.outcome in {"unconfirmed", "failed"}:
            self._doubtful.add(m.symbol)
        self._reconcile(f"entry {m.outcome}" if not lost else "stop lost during the entry")

    def on_alert(self, m: Alert) -> None:
        self._trades.event(f"alert:{m.kind}", m.symbol, m.detail)

    def on_position_opened(self, m: PositionOpened) -> None:
        held = self._trades.held(m.symbol)
        if held is not None and held.signal_open_time_ms == m.signal_open_time_ms:
            return  # a duplicate
        contract = self._contracts.get(m.symbol) or _guess_contract(m.symbol)
        record = PositionRecord(
            symbol=m.symbol, direction=m.direction, qty=Decimal(m.quantity), entry_price=m.entry_price,
            stop_loss=m.stop_loss, take_profit=m.take_profit, signal_open_time_ms=m.signal_open_time_ms,
            opened_at_ms=m.opened_at_ms, contract_type=contract,
            margin_asset=self._margin_assets.get(m.symbol),
        )  # fmt: skip
        self._trades.open(record, superseded=held)
        self._listeners(m)
        if self._trades.fully_exited(record):  # its stop or take-profit fired before we heard of it
            self._trades.close(m.symbol, self._trades.reason_from_fills(record), at_ms=self._clock_ms())

    # ---- user-data stream ----------------------------------------------------------------------------

    def on_order_update(self, u: OrderUpdate) -> None:
        held = self._trades.held(u.symbol)
        exit_fill = held is not None and u.side is closing_side(held.direction)
        if not is_ours(u.client_order_id) and not exit_fill and not u.reduce_only:
            self._trades.event("foreign_order", u.symbol, f"{u.client_order_id} {u.side} {u.status}")
            return
        parsed = parse_client_id(u.client_order_id)
        before = self.store.order(u.client_order_id)
        filled, pnl = (before.filled_qty, before.realized_pnl) if before else (Decimal(0), 0.0)
        commission = before.commission if before else Decimal(0)
        is_new_fill = u.cumulative_qty > filled
        if is_new_fill:
            pnl = float(Decimal(repr(pnl)) + Decimal(repr(u.realized_pnl)))  # exact: no float noise
            filled = u.cumulative_qty
            commission += u.commission
        fee_asset = (
            u.commission_asset
            or self._margin_assets.get(u.symbol)
            or margin_asset_of(u.symbol, u.contract_type)
        )
        self._trades.merge_order(
            u.client_order_id, u.symbol, status=u.status.value.lower(),
            leg=parsed[2].value if parsed else None, side=u.side.value, qty=str(u.cumulative_qty),
            price=u.avg_price or None, exchange_id=u.order_id, at_ms=u.event_time_ms, filled=filled, pnl=pnl,
            commission=commission, commission_asset=fee_asset,
        )  # fmt: skip
        if not is_new_fill:
            return
        earlier = (
            held is not None and parsed is not None and held.signal_open_time_ms not in {parsed[1], None}
        )
        if held is None or (earlier and parsed is not None and parsed[2] is not Leg.ENTRY):
            if u.reduce_only or (parsed is not None and parsed[2] is not Leg.ENTRY):
                # a late fill of a closed trade (held: the symbol's next one); our exit legs count even if
                # the venue does not mark the order reduce-only (a closePosition stop's triggered order)
                self._trades.amend_last_close(u.symbol, u.event_time_ms)
            return
        if exit_fill:
            if parsed is not None and parsed[2] is not Leg.ENTRY:
                self._trades.note_exit(u.symbol, parsed[2])
            if self._trades.fully_exited(held):
                self._trades.close(u.symbol, self._trades.reason_from_fills(held), at_ms=u.event_time_ms)

    def on_algo_update(self, u: AlgoUpdate) -> None:
        parsed = parse_client_id(u.client_algo_id)
        if parsed is None:
            self._trades.event("foreign_algo_order", u.symbol, f"{u.client_algo_id} {u.kind} {u.status}")
            return
        _, signal, leg = parsed
        detail = f"triggered order {u.triggered_order_client_id}" if u.triggered_order_client_id else ""
        self._trades.merge_order(
            u.client_algo_id, u.symbol, status=u.status.value.lower(), leg=leg.value, side=None,
            exchange_id=u.algo_id, detail=detail, at_ms=u.event_time_ms,
        )  # fmt: skip
        held = self._trades.held(u.symbol)
        if held is None or held.signal_open_time_ms not in {signal, None}:
            return
        if u.status in {AlgoStatus.TRIGGERED, AlgoStatus.FINISHED} and leg in PROTECTIVE:
            self._trades.note_exit(u.symbol, leg)
            if u.status is AlgoStatus.FINISHED:
                self._trades.close(u.symbol, EXIT_REASON[leg], at_ms=u.event_time_ms)
        elif leg is Leg.STOP and u.status in {AlgoStatus.CANCELED, AlgoStatus.EXPIRED, AlgoStatus.REJECTED}:
            self.log.warning(f"{u.symbol}: stop {u.client_algo_id} {u.status} while the position is open")
            if u.symbol in self._in_flight:
                self._stop_lost.add(u.symbol)  # its executor still works on it: reconcile once it let go
            else:
                self._reconciler.replace_lost_stop(held)
                self._reconcile(f"stop {u.status.value.lower()}")

    def on_account_update(self, u: AccountUpdate) -> None:
        for pos in u.positions:
            held = self._trades.held(pos.symbol)
            if held is None or held.contract_type is not pos.contract_type or pos.amount != 0:
                continue
            if u.event_time_ms > held.opened_at_ms:  # not a report on the trade before it
                self._trades.close(pos.symbol, self._trades.reason_from_fills(held), at_ms=u.event_time_ms)

    def on_listen_key_expired(self, u: ListenKeyExpired) -> None:
        self._trades.event("listen_key_expired", None, u.contract_type.value)

    def on_user_stream_status(self, u: UserStreamStatus) -> None:
        self._trades.event(
            "user_stream_" + ("up" if u.connected else "down"), None, f"{u.contract_type} {u.detail}"
        )
        if u.connected:
            self._reconcile(f"user stream {u.contract_type} reconnected")

    def on_reconcile(self, m: Reconcile) -> None:
        self._queued.clear()
        self._reconcile(m.reason)

    # ---- reconciliation ----------------------------------------------------------------------------------

    def _reconcile(self, reason: str) -> None:
        """Reconcile now; an entry in flight longer than ``_ENTRY_GRACE_S`` no longer shields its symbol."""
        started = time.monotonic()
        self._in_flight = {s: t for s, t in self._in_flight.items() if started - t < _ENTRY_GRACE_S}
        outcome = self._reconciler.run(
            reason,
            in_flight=self._in_flight.keys(),
            doubtful=self._doubtful,
            full=reason in _FULL_READS or reason.startswith("user stream"),
        )
        self._unsettled = outcome.unsettled
        if not outcome.complete:
            return
        self._doubtful &= self._in_flight.keys()
        if self._on_settled is not None:
            held = {p.symbol for p in self._trades.positions()}
            self._on_settled(frozenset(outcome.live | held | self._in_flight.keys()), started)
