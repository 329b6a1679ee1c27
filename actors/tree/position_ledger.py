"""PositionLedger actor: the durable record of decisions, orders and positions, and the exchange's mirror.

It persists everything it hears (SQLite, :mod:`actors.ledger_store`), closes a trade when the exchange
says it is flat, cancels the sibling protective order, and reconciles with the exchange at start, every
``reconcile_interval_s``, after a user-stream reconnect and on demand (:mod:`actors.reconcile`).

Closing is driven by whichever of these arrives first, so any order and any duplicate of them is fine:
exit fills (ORDER_TRADE_UPDATE on the closing side) that add up to the position's quantity, an
ACCOUNT_UPDATE showing the symbol flat, or the algo update FINISHED of our stop/take-profit. Exit fills
are stored per order with their cumulative quantity, so a duplicated fill is ignored and a fill that
arrives after the close amends the trade's exit price and PnL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pykka

from ..config import ExecutionSettings
from ..domain.model import ContractType, Decision, Leg, PortfolioView, client_order_id
from ..exchange.errors import ExchangeError, Rejected, UnknownStatus
from ..exchange.types import (
    AccountUpdate,
    AlgoStatus,
    AlgoUpdate,
    ListenKeyExpired,
    OrderStatus,
    OrderUpdate,
    ProtectiveKind,
    UserStreamStatus,
)
from ..messages import (
    Alert,
    EntryRejected,
    OrderStateChanged,
    PositionClosed,
    PositionLedgerInbox,
    PositionOpened,
    Reconcile,
)
from ..runtime.actor import Actor, Monitor
from ..runtime.scheduling import OrderPriority
from .ledger_records import TERMINAL, EventRecord, OrderRecord, PositionRecord
from .ledger_snapshots import LedgerGateway, LedgerSnapshots, OpenPositionView
from .ledger_store import LedgerStore
from .reconciliation import (
    AdoptPosition,
    CancelAlgo,
    CloseInLedger,
    ExchangeView,
    Flatten,
    PlaceStop,
    Policy,
    UpdateQuantity,
    closing_side,
    fresh_client_id,
    is_ours,
    parse_client_id,
    plan_reconciliation,
)

if TYPE_CHECKING:
    from ..runtime.thread_watch import ThreadWatch

_RANK = {"submitted": 0, "unknown": 0, "new": 1, "partially_filled": 2, "triggering": 2, "triggered": 3}
_EXIT_REASON = {Leg.STOP: "stop_loss", Leg.TAKE_PROFIT: "take_profit", Leg.CLOSE: "flattened"}
_LATE_FILL_MS = 60_000
"""A reduce-only fill this close to a trade's close belongs to it (later ones are someone else's)."""
_ENTRY_FAILED_ALERTS = frozenset({"naked_position", "stop_failed"})
_ENTRY_GRACE_S = 120.0
"""How long an entry may stay in flight (no PositionOpened yet) before reconciliation judges its symbol."""


def _rank(status: str) -> int:
    return 4 if status in TERMINAL else _RANK.get(status, 1)


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
    ) -> None:
        super().__init__(name=name, monitor=monitor, generation=generation)
        self._priority = priority
        self._threads = threads
        """Watches the reconcile timer: if it dies, the naked-position check stops and the process says so."""
        self.store = LedgerStore(store_path)
        self._gateways = gateways
        self._execution = execution
        self._policy = Policy(
            on_unprotected_position=execution.on_unprotected_position,
            on_unknown_position=execution.on_unknown_position,
        )
        self._publish = publish_portfolio
        self._alert = alert
        self._listeners = listeners
        self._contracts = dict(contracts or {})
        self._margin_assets = dict(margin_assets or {})
        self.snapshots = snapshots or LedgerSnapshots()
        self._clock_ms = clock_ms
        self._open: dict[str, PositionRecord] = {}
        self._exit_reason: dict[str, str] = {}
        self._in_flight: dict[str, float] = {}
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
        self._open = {p.symbol: p for p in self.store.open_positions()}
        self._published()
        self._reconcile("startup")
        self._timer = threading.Thread(target=self._tick, name=f"{self.name}-reconcile", daemon=True)
        if self._threads is not None:
            self._threads.watch(self._timer, role="periodic reconciliation (naked positions)", essential=True)
        self._timer.start()

    def stop_actor(self) -> None:
        self._timer_stop.set()
        self.store.close()

    def _tick(self) -> None:
        while not self._timer_stop.wait(self._execution.reconcile_interval_s):
            if self._queued.is_set():
                continue  # the previous one has not run yet: never pile reconciliations up
            self._queued.set()
            try:
                self.actor_ref.tell(Reconcile(reason="periodic"))
            except pykka.ActorDeadError:
                break
        if self._threads is not None:  # ended on purpose (this incarnation stopped): not a death
            self._threads.forget(threading.current_thread().name)

    # ---- executor and strategy events --------------------------------------------------------------

    def on_decision(self, decision: Decision) -> None:
        self.store.record_decisions([decision], at_ms=self._clock_ms())

    def on_order_state_changed(self, m: OrderStateChanged) -> None:
        if m.leg is Leg.ENTRY:
            if m.status in {"submitted", "new", "unknown", "filled"}:
                self._in_flight.setdefault(m.symbol, time.monotonic())
            else:
                self._in_flight.pop(m.symbol, None)
        self._merge_order(
            m.client_id, m.symbol, status=m.status, leg=m.leg.value, side=m.side, qty=m.quantity,
            price=m.price, exchange_id=m.exchange_id, detail=m.detail, at_ms=m.at_ms or self._clock_ms(),
        )  # fmt: skip

    def on_entry_rejected(self, m: EntryRejected) -> None:
        self._in_flight.pop(m.symbol, None)
        self._event("entry_rejected", m.symbol, f"signal {m.signal_open_time_ms}: {m.reason}")

    def on_alert(self, m: Alert) -> None:
        self._event(f"alert:{m.kind}", m.symbol, m.detail)
        if m.kind in _ENTRY_FAILED_ALERTS and m.symbol in self._in_flight:
            # The executor gave up on this entry's stop: judge the symbol now, not after the grace period.
            # (Only in-flight symbols: our own alerts fed back by the runner must not loop.)
            del self._in_flight[m.symbol]
            self._reconcile(f"executor alert {m.kind}")

    def on_position_opened(self, m: PositionOpened) -> None:
        self._in_flight.pop(m.symbol, None)
        held = self._open.get(m.symbol)
        if held is not None and held.signal_open_time_ms == m.signal_open_time_ms:
            return  # a duplicate
        contract = self._contracts.get(m.symbol) or _guess_contract(m.symbol)
        record = PositionRecord(
            symbol=m.symbol, direction=m.direction, qty=Decimal(m.quantity), entry_price=m.entry_price,
            stop_loss=m.stop_loss, take_profit=m.take_profit, signal_open_time_ms=m.signal_open_time_ms,
            opened_at_ms=m.opened_at_ms, contract_type=contract,
            margin_asset=self._margin_assets.get(m.symbol),
        )  # fmt: skip
        with self.store.atomic():
            if held is not None:
                self._event("position_superseded", m.symbol, f"ledger held signal {held.signal_open_time_ms}")
                self.store.close_position(
                    m.symbol, at_ms=m.opened_at_ms, exit_price=None, realized_pnl=None, reason="superseded"
                )
            self.store.open_position(record)
        self._open[m.symbol] = record
        self._exit_reason.pop(m.symbol, None)
        self._published()
        self._listeners(m)
        if self._exit_fills(record)[0] >= record.qty:  # its stop or take-profit fired before we heard of it
            self._close(m.symbol, self._reason_from_fills(record), at_ms=self._clock_ms())

    # ---- user-data stream ----------------------------------------------------------------------------

    def on_order_update(self, u: OrderUpdate) -> None:
        held = self._open.get(u.symbol)
        exit_fill = held is not None and u.side is closing_side(held.direction)
        if not is_ours(u.client_order_id) and not exit_fill and not u.reduce_only:
            self._event("foreign_order", u.symbol, f"{u.client_order_id} {u.side} {u.status}")
            return
        parsed = parse_client_id(u.client_order_id)
        before = self.store.order(u.client_order_id)
        filled, pnl = (before.filled_qty, before.realized_pnl) if before else (Decimal(0), 0.0)
        is_new_fill = u.cumulative_qty > filled
        if is_new_fill:
            pnl += u.realized_pnl
            filled = u.cumulative_qty
        self._merge_order(
            u.client_order_id, u.symbol, status=u.status.value.lower(),
            leg=parsed[2].value if parsed else None, side=u.side.value, qty=str(u.cumulative_qty),
            price=u.avg_price or None, exchange_id=u.order_id, at_ms=u.event_time_ms, filled=filled, pnl=pnl,
        )  # fmt: skip
        if not is_new_fill:
            return
        if held is None:
            if u.reduce_only:
                self._amend_last_close(u.symbol, u.event_time_ms)
            return
        if exit_fill:
            if parsed is not None and parsed[2] is not Leg.ENTRY:
                self._exit_reason[u.symbol] = _EXIT_REASON[parsed[2]]
            if self._exit_fills(held)[0] >= held.qty:
                self._close(u.symbol, self._reason_from_fills(held), at_ms=u.event_time_ms)

    def on_algo_update(self, u: AlgoUpdate) -> None:
        parsed = parse_client_id(u.client_algo_id)
        if parsed is None:
            self._event("foreign_algo_order", u.symbol, f"{u.client_algo_id} {u.kind} {u.status}")
            return
        _, signal, leg = parsed
        detail = f"triggered order {u.triggered_order_client_id}" if u.triggered_order_client_id else ""
        self._merge_order(
            u.client_algo_id, u.symbol, status=u.status.value.lower(), leg=leg.value, side=None,
            exchange_id=u.algo_id, detail=detail, at_ms=u.event_time_ms,
        )  # fmt: skip
        held = self._open.get(u.symbol)
        if held is None or held.signal_open_time_ms not in {signal, None}:
            return
        if u.status in {AlgoStatus.TRIGGERED, AlgoStatus.FINISHED} and leg in {Leg.STOP, Leg.TAKE_PROFIT}:
            self._exit_reason[u.symbol] = _EXIT_REASON[leg]
            if u.status is AlgoStatus.FINISHED:
                self._close(u.symbol, _EXIT_REASON[leg], at_ms=u.event_time_ms)
        elif leg is Leg.STOP and u.status in {AlgoStatus.CANCELED, AlgoStatus.EXPIRED, AlgoStatus.REJECTED}:
            self.log.warning(f"{u.symbol}: stop {u.client_algo_id} {u.status} while the position is open")
            self._reconcile(f"stop {u.status.value.lower()}")

    def on_account_update(self, u: AccountUpdate) -> None:
        for pos in u.positions:
            held = self._open.get(pos.symbol)
            if held is not None and held.contract_type is pos.contract_type and pos.amount == 0:
                self._close(pos.symbol, self._reason_from_fills(held), at_ms=u.event_time_ms)

    def on_listen_key_expired(self, u: ListenKeyExpired) -> None:
        self._event("listen_key_expired", None, u.contract_type.value)

    def on_user_stream_status(self, u: UserStreamStatus) -> None:
        self._event("user_stream_" + ("up" if u.connected else "down"), None, f"{u.contract_type} {u.detail}")
        if u.connected:
            self._reconcile(f"user stream {u.contract_type} reconnected")

    def on_reconcile(self, m: Reconcile) -> None:
        self._queued.clear()
        self._reconcile(m.reason)

    # ---- trade state machine -------------------------------------------------------------------------

    def _exit_fills(self, held: PositionRecord) -> tuple[Decimal, float | None, float | None]:
        """Quantity, average price and realised PnL of closing-side fills since the position opened."""
        side = closing_side(held.direction).value
        fills = [
            o
            for o in self.store.orders(symbol=held.symbol)
            if o.side == side and o.filled_qty > 0 and o.updated_at_ms >= held.opened_at_ms and o.leg != "E"
        ]
        qty = sum((o.filled_qty for o in fills), Decimal(0))
        if not qty:
            return qty, None, None
        price = sum(float(o.filled_qty) * (o.price or 0.0) for o in fills) / float(qty)
        return qty, price, sum(o.realized_pnl for o in fills)

    def _reason_from_fills(self, held: PositionRecord) -> str:
        """Why it closed: the leg of our order that took it out, else what the algo updates said."""
        side = closing_side(held.direction).value
        for o in self.store.orders(symbol=held.symbol):
            if (
                o.side == side
                and o.filled_qty > 0
                and o.updated_at_ms >= held.opened_at_ms
                and o.leg in {"S", "T", "C"}
            ):
                return _EXIT_REASON[Leg(o.leg)]
        return self._exit_reason.get(held.symbol, "closed_on_exchange")

    def _close(self, symbol: str, reason: str, *, at_ms: int, exit_price: float | None = None) -> None:
        held = self._open.pop(symbol, None)
        if held is None:
            return
        _, price, pnl = self._exit_fills(held)
        price = price if price is not None else exit_price
        with self.store.atomic():
            self.store.close_position(symbol, at_ms=at_ms, exit_price=price, realized_pnl=pnl, reason=reason)
            self._event("position_closed", symbol, f"{reason} exit {price} pnl {pnl}")
        self._exit_reason.pop(symbol, None)
        self.snapshots.bump("closed")
        self._cancel_siblings(held)
        self._published()
        self._listeners(
            PositionClosed(
                symbol=symbol, reason=reason, exit_price=price, realized_pnl=pnl, closed_at_ms=at_ms
            )
        )

    def _cancel_siblings(self, held: PositionRecord) -> None:
        """Cancel our protective orders of a closed position (already gone is fine; failures → reconcile)."""
        ids = {
            o.client_id for o in self.store.orders(open_only=True, symbol=held.symbol) if o.leg in {"S", "T"}
        }
        if held.signal_open_time_ms is not None:
            for leg in (Leg.STOP, Leg.TAKE_PROFIT):
                cid = client_order_id(held.symbol, held.signal_open_time_ms, leg)
                known = self.store.order(cid)
                if known is None or known.status not in TERMINAL:
                    ids.add(cid)
        for cid in sorted(ids):
            self._cancel_algo(held.symbol, held.contract_type, cid)

    def _cancel_algo(self, symbol: str, contract: ContractType, cid: str) -> None:
        try:
            existed = self._gateways[contract].cancel_algo_order(symbol, contract, client_algo_id=cid)
        except ExchangeError as exc:
            self._event("cancel_failed", symbol, f"{cid}: {exc}")
            return
        self._merge_order(cid, symbol, status="canceled", detail="" if existed else "already gone")

    def _amend_last_close(self, symbol: str, fill_ms: int) -> None:
        """A closing fill that arrived after the flat position: complete that trade's exit and PnL."""
        last = self.store.trades(symbol=symbol)[-1:]
        if last and abs(fill_ms - (last[0].closed_at_ms or 0)) <= _LATE_FILL_MS:
            qty, price, pnl = self._exit_fills(last[0])
            if qty and price is not None and pnl is not None:
                self.store.amend_last_close(symbol, exit_price=price, realized_pnl=pnl)

    # ---- persistence helpers ---------------------------------------------------------------------------

    def _merge_order(
        self,
        cid: str,
        symbol: str,
        *,
        status: str,
        leg: str | None = None,
        side: str | None = None,
        qty: str | None = None,
        price: float | None = None,
        exchange_id: int | None = None,
        detail: str = "",
        at_ms: int | None = None,
        filled: Decimal | None = None,
        pnl: float | None = None,
    ) -> None:
        """Upsert one order row; a late event never moves its status backwards (NEW after FILLED)."""
        old = self.store.order(cid)
        if old is not None and _rank(status) < _rank(old.status):
            status = old.status
        self.store.upsert_orders(
            [
                OrderRecord(
                    client_id=cid, symbol=symbol, status=status,
                    leg=leg or (old.leg if old else None), side=side or (old.side if old else None),
                    qty=qty or (old.qty if old else None),
                    price=price if price is not None else (old.price if old else None),
                    exchange_id=exchange_id or (old.exchange_id if old else None),
                    detail=detail or (old.detail if old else ""),
                    updated_at_ms=at_ms or (old.updated_at_ms if old else self._clock_ms()),
                    filled_qty=filled if filled is not None else (old.filled_qty if old else Decimal(0)),
                    realized_pnl=pnl if pnl is not None else (old.realized_pnl if old else 0.0),
                )
            ]
        )  # fmt: skip

    def _event(self, kind: str, symbol: str | None, detail: str) -> None:
        self.store.add_events([EventRecord(kind=kind, symbol=symbol, detail=detail, at_ms=self._clock_ms())])

    def _published(self) -> None:
        self.snapshots.set_positions(
            tuple(
                OpenPositionView(
                    symbol=p.symbol, direction=p.direction.value, qty=p.qty, entry_price=p.entry_price,
                    stop_loss=p.stop_loss, take_profit=p.take_profit, opened_at_ms=p.opened_at_ms,
                    contract_type=p.contract_type,
                )
                for p in sorted(self._open.values(), key=lambda p: p.symbol)
            )
        )  # fmt: skip
        self._publish(PortfolioView(open_symbols=frozenset(self._open)))

    # ---- reconciliation --------------------------------------------------------------------------------

    def _reconcile(self, reason: str) -> None:
        """Compare with the exchange and repair; a gateway failure skips that contract until next time."""
        now = time.monotonic()
        self._in_flight = {s: t for s, t in self._in_flight.items() if now - t < _ENTRY_GRACE_S}
        complete = True
        for contract, gateway in self._gateways.items():
            try:
                view = ExchangeView(
                    contract_type=contract,
                    positions=tuple(gateway.positions(contract)),
                    open_algo_orders=tuple(gateway.open_algo_orders(contract)),
                    open_orders=tuple(gateway.open_orders(contract)),
                )
            except ExchangeError as exc:
                complete = False
                self.snapshots.bump("reconcile_errors")
                self.log.warning(f"reconcile ({reason}) {contract}: exchange unavailable, retry later: {exc}")
                self._event("reconcile_failed", None, f"{contract}: {exc}")
                continue
            plan = plan_reconciliation(
                list(self._open.values()), view, self._policy, is_used=self._is_used,
                in_flight=self._in_flight.keys(), now_ms=self._clock_ms(),
            )  # fmt: skip
            for d in plan.discrepancies:
                self.log.warning(f"reconcile ({reason}): {d.kind} {d.symbol}: {d.detail}")
                self._event(d.kind, d.symbol, d.detail)
                self.snapshots.bump("discrepancies", discrepancy=d.kind)
                if d.kind == "naked_position":
                    self.snapshots.bump("naked_alerts")
                    self._alert(Alert(kind="naked_position", symbol=d.symbol, detail=d.detail))
            for action in plan.actions:
                try:
                    self._apply(action)
                except ExchangeError as exc:
                    complete = False
                    self.log.warning(f"reconcile ({reason}): {action} failed, retry later: {exc}")
                    self._event("reconcile_action_failed", action.symbol, f"{type(action).__name__}: {exc}")
        self.snapshots.bump("reconciles")
        if complete:
            self.snapshots.reconciled.set()

    def _apply(
        self, action: AdoptPosition | CloseInLedger | UpdateQuantity | PlaceStop | Flatten | CancelAlgo
    ) -> None:
        now = self._clock_ms()
        if isinstance(action, CloseInLedger):
            self._close(action.symbol, action.reason, at_ms=now)
        elif isinstance(action, AdoptPosition):
            record = PositionRecord(
                symbol=action.symbol, direction=action.direction, qty=action.qty,
                entry_price=action.entry_price, stop_loss=action.stop_loss, take_profit=action.take_profit,
                signal_open_time_ms=None, opened_at_ms=now, contract_type=action.contract_type,
                margin_asset=self._margin_assets.get(action.symbol),
            )  # fmt: skip
            self.store.open_position(record)
            self._open[action.symbol] = record
            self.snapshots.bump("adopted")
            self._published()
        elif isinstance(action, UpdateQuantity):
            self.store.update_open_position(action.symbol, qty=action.qty)
            self._open[action.symbol] = next(
                p for p in self.store.open_positions() if p.symbol == action.symbol
            )
            self._published()
        elif isinstance(action, PlaceStop):
            self._place_stop(action)
        elif isinstance(action, Flatten):
            self._flatten(action)
        else:
            self._cancel_algo(action.symbol, action.contract_type, action.client_algo_id)

    def _is_used(self, client_id: str) -> bool:
        return self.store.order(client_id) is not None

    def _place_stop(self, a: PlaceStop) -> None:
        gateway = self._gateways[a.contract_type]
        cid = a.client_algo_id
        for _ in range(self._execution.stop_placement_retries + 1):
            self._merge_order(
                cid, a.symbol, status="submitted", leg="S", side=a.side.value, price=float(a.trigger_price)
            )
            try:
                placed = gateway.place_protective(
                    a.symbol, a.contract_type, ProtectiveKind.STOP_MARKET, a.side, a.trigger_price, cid
                )
            except UnknownStatus:
                raise  # the next reconciliation sees whether it landed; its id is now "used"
            except Rejected as exc:
                self._merge_order(cid, a.symbol, status="rejected", detail=f"{exc.code} {exc.msg}")
                if exc.reason == "duplicate_client_id":
                    parsed = parse_client_id(cid)
                    signal = parsed[1] if parsed else self._clock_ms()
                    cid = fresh_client_id(a.symbol, signal, Leg.STOP, self._is_used)
                    continue
                held = self._open.get(a.symbol)
                self._event("stop_repair_rejected", a.symbol, f"{cid}: {exc}; closing at market")
                if held is not None:
                    self._flatten(
                        Flatten(
                            symbol=a.symbol, contract_type=a.contract_type, side=a.side, qty=held.qty,
                            client_order_id=fresh_client_id(
                                a.symbol, held.signal_open_time_ms or self._clock_ms(), Leg.CLOSE,
                                self._is_used,
                            ),
                            reason="flattened_unprotected",
                        )
                    )  # fmt: skip
                return
            self._merge_order(cid, a.symbol, status="new", exchange_id=placed.algo_id)
            self.snapshots.bump("repairs")
            self._event("stop_repaired", a.symbol, f"{cid} @ {a.trigger_price}")
            return

    def _flatten(self, a: Flatten) -> None:
        self._merge_order(
            a.client_order_id, a.symbol, status="submitted", leg="C", side=a.side.value, qty=str(a.qty)
        )
        try:
            result = self._gateways[a.contract_type].market_order(
                a.symbol, a.contract_type, a.side, a.qty, a.client_order_id, reduce_only=True
            )
        except Rejected as exc:
            self._merge_order(a.client_order_id, a.symbol, status="rejected", detail=f"{exc.code} {exc.msg}")
            self._alert(Alert(kind="flatten_failed", symbol=a.symbol, detail=str(exc)))
            self._event("flatten_failed", a.symbol, str(exc))
            return
        self._merge_order(
            a.client_order_id, a.symbol, status=result.status.value.lower(), exchange_id=result.order_id,
            price=result.avg_price or None, at_ms=result.update_time_ms or None,
        )  # fmt: skip
        if result.status is not OrderStatus.FILLED:
            self._event("flatten_unfilled", a.symbol, f"{a.client_order_id} {result.status}")
            return
        self.snapshots.bump("flattens")
        self._event(a.reason, a.symbol, f"{a.side} {a.qty} @ {result.avg_price}")
        for cid in a.then_cancel:
            self._cancel_algo(a.symbol, a.contract_type, cid)
        self._close(a.symbol, a.reason, at_ms=self._clock_ms(), exit_price=result.avg_price or None)
