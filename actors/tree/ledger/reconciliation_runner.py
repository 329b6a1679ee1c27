"""Carrying out a reconciliation for the position ledger: fetch the exchange's view, plan, repair.

For each contract type, ``ReconciliationRunner.run`` fetches the positions and open orders, asks the pure
planner (:mod:`.reconciliation`) what differs, records each discrepancy (a naked position is also an
alert) and carries out the plan's actions: close or adopt a ledger row, take the exchange's quantity,
place a missing stop, flatten at market, cancel an orphan algo order.

A stop the exchange rejects as a duplicate id is retried under a fresh id; rejected for any other reason,
the position is flattened instead. A gateway failure skips that contract (or that action) until the next
run; only a run that covered every contract type sets ``snapshots.reconciled``.

A full run reads every open order of the account (40 weight a list); the runs the ledger makes between its
periodic ones (a second after a run that left something unsettled, after a stop ended or an entry finished)
read the positions and then only the open orders of the symbols the exchange or the ledger holds, or that
have orders the ledger has not seen end (1 weight a symbol and list). So a stretch without the user-data
stream, when every close is learnt here, cannot spend the minute's request weight and leave the ledger
blind until the next minute.

A position the ledger holds and the exchange shows flat is closed in the ledger only once it has been flat
for ``execution.flat_close_grace_s`` (at start-up at once: nothing is in flight then). Its closing fill (a
stop or take-profit that fired, a close of ours) may still be on the user stream, and booked from that fill
the close has its true reason, exit price and PnL. Meanwhile the symbol is unsettled (the next run comes a
second later) and its algo orders are left for the close to cancel. A position closed on the
reconciliation's word, or flattened by it, takes its exit from the account's fills (``userTrades``,
:mod:`.flat_settlement`): each closing order is looked up and booked under its own client id, as the stream
would have booked it, so the trade has the leg that closed it, its exit price, realised PnL and
commissions as the exchange booked them; its exit stays unknown when they cannot be read or fall short.
Each complete reconciliation then tries again, with a growing wait, for every symbol's latest trade still
closed with its PnL unknown, whatever closed it (a time or reversal exit whose fill the stream never
brought, a read that failed): :class:`.flat_settlement.UnpricedCloses`.

Each run says what it settled (``ReconcileOutcome``): the symbols the exchange holds, whether it covered
every contract, and whether anything is left to do (a naked position, a failed action, a flatten whose
close the ledger has not seen yet), in which case the ledger runs the next one soon. Entries of ours whose
outcome was never heard are settled here too: adopted as their trade where the exchange holds a position
(``entry_found``), void where it is flat.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from ...config import ExecutionSettings
from ...domain.model import ContractType, Leg
from ...exchange.algo_orders import W_OPEN_ALL
from ...exchange.errors import BudgetSpent, ExchangeError, Rejected, UnknownStatus
from ...exchange.parse import MalformedPayload
from ...exchange.types import OrderStatus, PositionInfo, ProtectiveKind
from ...messages import Alert
from .entry_intents import EntryIntents
from .flat_settlement import UnpricedCloses, settle
from .ledger_records import PositionRecord
from .ledger_snapshots import LedgerGateway, LedgerSnapshots
from .ledger_trades import LedgerTrades
from .reconciliation import (
    Action,
    AdoptPosition,
    CloseInLedger,
    ExchangeView,
    Flatten,
    PlaceStop,
    Policy,
    UpdateQuantity,
    closing_side,
    fresh_client_id,
    parse_client_id,
    plan_reconciliation,
)

if TYPE_CHECKING:
    from loguru import Logger


DEFERRED_WARN_S = 60.0
"""Reconciliations deferred for want of request weight this long in a row are a warning, not a notice."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileOutcome:
    """What one run settled."""

    complete: bool
    """Every contract type was read (so a symbol missing from ``live`` is flat on the exchange)."""
    live: frozenset[str]
    """Symbols with a position on the exchange when it was read."""
    unsettled: bool
    """Something is left to do: run again soon rather than at the periodic interval."""


class ReconciliationRunner:
    """Runs reconciliations on the ledger actor's thread (see the module docstring)."""

    def __init__(
        self,
        *,
        trades: LedgerTrades,
        intents: EntryIntents,
        gateways: Mapping[ContractType, LedgerGateway],
        execution: ExecutionSettings,
        snapshots: LedgerSnapshots,
        alert: Callable[[Alert], None],
        margin_assets: Mapping[str, str],
        clock_ms: Callable[[], int],
        log: Logger,
        contract_of: Callable[[str], ContractType] = lambda _symbol: ContractType.USDT_M,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._trades = trades
        self._intents = intents
        self._gateways = gateways
        self._policy = Policy(
            on_unprotected_position=execution.on_unprotected_position,
            on_unknown_position=execution.on_unknown_position,
        )
        self._execution = execution
        self._monotonic = monotonic
        self._deferred_since: float | None = None
        """When reconciliations began to be deferred for want of weight (None: the last one completed)."""
        self._deferred_warned = False
        self._unpriced = UnpricedCloses(
            settle=self._settle, trades=trades, grace_s=execution.flat_close_grace_s, clock_ms=clock_ms
        )
        self._flat_since: dict[str, float] = {}
        """Held symbols the exchange showed flat, since ``monotonic()`` (see the module docstring)."""
        self._snapshots = snapshots
        self._alert = alert
        self._margin_assets = margin_assets
        self._clock_ms = clock_ms
        self._log = log
        self._contract_of = contract_of

    def run(
        self,
        reason: str,
        *,
        in_flight: Collection[str],
        doubtful: Collection[str] = (),
        full: bool = True,
    ) -> ReconcileOutcome:
        """Compare with the exchange and repair; a gateway failure skips that contract until next time.

        Symbols in ``in_flight`` have an entry on its way whose position the ledger has not heard of yet;
        symbols in ``doubtful`` have an entry whose outcome was never confirmed (void it if they are flat).
        ``full=False``: open orders of the held symbols only (see the module docstring).
        """
        complete, unsettled = True, False
        live: set[str] = set()
        now = self._monotonic()
        grace = 0.0 if reason == "startup" else self._execution.flat_close_grace_s

        def may_close_flat(symbol: str) -> bool:
            since = self._flat_since.get(symbol)
            return grace <= 0 or (since is not None and now - since >= grace)

        for contract, gateway in self._gateways.items():
            try:
                view = self._read(contract, gateway, full=full)
            except BudgetSpent as exc:  # nothing was sent: the warm-up's reads fill the minute
                complete = False
                self._defer(reason, contract, exc)
                continue
            except (ExchangeError, MalformedPayload) as exc:
                complete = False
                self._snapshots.bump("reconcile_errors")
                self._log.warning(
                    f"reconcile ({reason}) {contract}: exchange unavailable, retry later: {exc}"
                )
                self._trades.event("reconcile_failed", None, f"{contract}: {exc}")
                continue
            live.update(p.symbol for p in view.positions if p.amount != 0)
            plan = plan_reconciliation(
                self._trades.positions(), view, self._policy, is_used=self._trades.is_used,
                in_flight=in_flight, now_ms=self._clock_ms(), intent_of=self._intents.of,
                may_close_flat=may_close_flat,
            )  # fmt: skip
            unsettled |= self._await_fills(reason, plan.awaiting, now, grace)
            for d in plan.discrepancies:
                self._log.warning(f"reconcile ({reason}): {d.kind} {d.symbol}: {d.detail}")
                self._trades.event(d.kind, d.symbol, d.detail)
                self._snapshots.bump("discrepancies", discrepancy=d.kind)
                if d.kind == "naked_position":
                    unsettled = True
                    self._snapshots.bump("naked_alerts")
                    self._alert(Alert(kind="naked_position", symbol=d.symbol, detail=d.detail))
            for action in plan.actions:
                self._log.info(f"reconcile ({reason}): {action}")
                try:
                    unsettled |= self._apply(action)
                except (ExchangeError, MalformedPayload) as exc:
                    complete, unsettled = False, True
                    self._log.warning(f"reconcile ({reason}): {action} failed, retry later: {exc}")
                    self._trades.event(
                        "reconcile_action_failed", action.symbol, f"{type(action).__name__}: {exc}"
                    )
        held = {p.symbol for p in self._trades.positions()}  # booked closed, or open again: no longer awaited
        self._flat_since = {s: t for s, t in self._flat_since.items() if s in held and s not in live}
        if complete:
            for symbol in sorted(set(doubtful) - live - set(in_flight)):
                void = self._intents.void(symbol)
                if void is not None:
                    self._trades.event("entry_void", symbol, f"{void}: the exchange holds no position")
        self._snapshots.bump("reconciles")
        if complete:
            unsettled |= self._unpriced.run(now)
            self._deferred_since = None
            self._snapshots.reconciled.set()
        return ReconcileOutcome(complete=complete, live=frozenset(live), unsettled=unsettled or not complete)

    def _await_fills(self, reason: str, awaiting: tuple[str, ...], now: float, grace: float) -> bool:
        """Note the held symbols first seen flat; True while any is awaited (run again soon)."""
        for symbol in awaiting:
            if symbol not in self._flat_since:
                self._flat_since[symbol] = now
                detail = (
                    f"flat on the exchange; its closing fill has {grace:g} s to arrive before it is closed"
                )
                self._log.info(f"reconcile ({reason}): {symbol}: {detail}")
                self._trades.event("flat_awaiting_fill", symbol, detail)
        return bool(awaiting)

    def _defer(self, reason: str, contract: ContractType, exc: BudgetSpent) -> None:
        """The minute's weight is spent (a warm-up's bulk reads fill most of it): the reads wait for the next
        try, a second later. Said once at INFO when the deferrals begin, and as a warning once no
        reconciliation has completed for ``DEFERRED_WARN_S``."""
        now = self._monotonic()
        line = f"reconcile ({reason}) {contract}: deferred, {exc.detail}; nothing was sent"
        if self._deferred_since is None:
            self._deferred_since, self._deferred_warned = now, False
            self._log.info(f"{line}; retried every second until the weight allows")
            self._trades.event("reconcile_deferred", None, f"{contract}: {exc.detail}")
        elif not self._deferred_warned and now - self._deferred_since >= DEFERRED_WARN_S:
            self._deferred_warned = True
            late = now - self._deferred_since
            self._log.warning(f"{line}; no reconciliation has completed for {late:.0f} s")
            self._trades.event("reconcile_deferred", None, f"{contract}: {late:.0f} s: {exc.detail}")

    def _read(self, contract: ContractType, gateway: LedgerGateway, *, full: bool) -> ExchangeView:
        positions = tuple(gateway.positions(contract))
        held = set() if full else self._held(contract, positions)
        if full or len(held) >= W_OPEN_ALL:  # per symbol, two reads of weight 1 each
            algos, orders = gateway.open_algo_orders(contract), gateway.open_orders(contract)
        else:
            algos = [o for s in sorted(held) for o in gateway.open_algo_orders(contract, s)]
            orders = [o for s in sorted(held) for o in gateway.open_orders(contract, s)]
        return ExchangeView(
            contract_type=contract,
            positions=positions,
            open_algo_orders=tuple(algos),
            open_orders=tuple(orders),
        )

    def _held(self, contract: ContractType, positions: tuple[PositionInfo, ...]) -> set[str]:
        """Symbols whose orders a scoped read covers: held on the exchange or in the ledger, or with orders
        the ledger has not seen end."""
        held = {p.symbol for p in positions if p.amount != 0}
        held |= {r.symbol for r in self._trades.positions() if r.contract_type is contract}
        held |= {s for s in self._trades.symbols_with_open_orders() if self._contract_of(s) is contract}
        return held

    def replace_lost_stop(self, held: PositionRecord) -> None:
        """The exchange ended the stop of ``held`` without filling it: protect the position again at once,
        from what the ledger knows (no read first, so a failing read cannot delay it); the reconciliation
        that follows checks the result."""
        if held.stop_loss is None:
            return
        side = closing_side(held.direction)
        signal = held.signal_open_time_ms or self._clock_ms()
        action: Action
        if self._policy.on_unprotected_position == "flatten":
            action = Flatten(
                symbol=held.symbol, contract_type=held.contract_type, side=side, qty=held.qty,
                client_order_id=fresh_client_id(held.symbol, signal, Leg.CLOSE, self._trades.is_used),
                reason="flattened_unprotected",
            )  # fmt: skip
        else:
            action = PlaceStop(
                symbol=held.symbol, contract_type=held.contract_type, side=side,
                trigger_price=Decimal(repr(held.stop_loss)),
                client_algo_id=fresh_client_id(held.symbol, signal, Leg.STOP, self._trades.is_used),
            )  # fmt: skip
        try:
            self._apply(action)
        except (ExchangeError, MalformedPayload) as exc:
            self._log.warning(f"{held.symbol}: replacing its lost stop failed, reconciling: {exc}")
            self._trades.event("stop_replace_failed", held.symbol, str(exc))

    def _apply(self, action: Action) -> bool:
        """Carry one action out; True when it leaves something to check soon (a position closing)."""
        now = self._clock_ms()
        if isinstance(action, CloseInLedger):
            held = self._trades.held(action.symbol)
            settled = self._settle(held) if held is not None and action.reason == "reconciled_flat" else None
            if held is not None and settled is not None:  # the fills say which order closed it, and when
                self._trades.close(action.symbol, self._trades.reason_from_fills(held), at_ms=settled)
            else:
                self._trades.close(action.symbol, action.reason, at_ms=now)
        elif isinstance(action, AdoptPosition):
            adopted = PositionRecord(
                symbol=action.symbol, direction=action.direction, qty=action.qty,
                entry_price=action.entry_price, stop_loss=action.stop_loss, take_profit=action.take_profit,
                signal_open_time_ms=action.signal_open_time_ms, opened_at_ms=now,
                contract_type=action.contract_type, margin_asset=self._margin_assets.get(action.symbol),
            )  # fmt: skip
            self._trades.adopt(adopted)
        elif isinstance(action, UpdateQuantity):
            self._trades.set_quantity(action.symbol, action.qty)
        elif isinstance(action, PlaceStop):
            return self._place_stop(action)
        elif isinstance(action, Flatten):
            self._flatten(action)
            return True
        else:
            self._trades.cancel_algo(action.symbol, action.contract_type, action.client_algo_id)
        return False

    def _settle(self, held: PositionRecord) -> int | None:
        """Book the account's fills that closed ``held`` (:func:`.flat_settlement.settle`)."""
        return settle(held, self._gateways[held.contract_type], self._trades, self._clock_ms(), self._log)

    def _place_stop(self, a: PlaceStop) -> bool:
        """Place the missing stop (or take-profit); a stop the exchange refuses → flatten. True while the
        position is left to check soon (it is being closed)."""
        gateway = self._gateways[a.contract_type]
        trades = self._trades
        cid = a.client_algo_id
        stop = a.kind is ProtectiveKind.STOP_MARKET
        leg = Leg.STOP if stop else Leg.TAKE_PROFIT
        for _ in range(self._execution.stop_placement_retries + 1):
            trades.merge_order(
                cid, a.symbol, status="submitted", leg=leg.value, side=a.side.value,
                price=float(a.trigger_price),
            )  # fmt: skip
            try:
                placed = gateway.place_protective(
                    a.symbol, a.contract_type, a.kind, a.side, a.trigger_price, cid
                )
            except UnknownStatus:
                raise  # the next reconciliation sees whether it landed; its id is now "used"
            except Rejected as exc:
                trades.merge_order(cid, a.symbol, status="rejected", detail=f"{exc.code} {exc.msg}")
                if exc.reason == "duplicate_client_id":
                    parsed = parse_client_id(cid)
                    signal = parsed[1] if parsed else self._clock_ms()
                    cid = fresh_client_id(a.symbol, signal, leg, trades.is_used)
                    continue
                if not stop:
                    trades.event("take_profit_repair_rejected", a.symbol, f"{cid}: {exc}")
                    return False
                held = trades.held(a.symbol)
                trades.event("stop_repair_rejected", a.symbol, f"{cid}: {exc}; closing at market")
                if held is not None:
                    self._flatten(
                        Flatten(
                            symbol=a.symbol, contract_type=a.contract_type, side=a.side, qty=held.qty,
                            client_order_id=fresh_client_id(
                                a.symbol, held.signal_open_time_ms or self._clock_ms(), Leg.CLOSE,
                                trades.is_used,
                            ),
                            reason="flattened_unprotected",
                        )
                    )  # fmt: skip
                return True
            trades.merge_order(cid, a.symbol, status="new", exchange_id=placed.algo_id)
            self._snapshots.bump("repairs")
            trades.event(f"{leg.name.lower()}_repaired", a.symbol, f"{cid} @ {a.trigger_price}")
            return False
        return True

    def _flatten(self, a: Flatten) -> None:
        trades = self._trades
        trades.merge_order(
            a.client_order_id, a.symbol, status="submitted", leg="C", side=a.side.value, qty=str(a.qty)
        )
        try:
            result = self._gateways[a.contract_type].market_order(
                a.symbol, a.contract_type, a.side, a.qty, a.client_order_id, reduce_only=True
            )
        except Rejected as exc:
            trades.merge_order(a.client_order_id, a.symbol, status="rejected", detail=f"{exc.code} {exc.msg}")
            self._alert(Alert(kind="flatten_failed", symbol=a.symbol, detail=str(exc)))
            trades.event("flatten_failed", a.symbol, str(exc))
            return
        trades.merge_order(
            a.client_order_id, a.symbol, status=result.status.value.lower(), exchange_id=result.order_id,
            price=result.avg_price or None, at_ms=result.update_time_ms or None,
        )  # fmt: skip
        if result.status is not OrderStatus.FILLED:
            trades.event("flatten_unfilled", a.symbol, f"{a.client_order_id} {result.status}")
            return
        self._snapshots.bump("flattens")
        trades.event(a.reason, a.symbol, f"{a.side} {a.qty} @ {result.avg_price}")
        for cid in a.then_cancel:
            trades.cancel_algo(a.symbol, a.contract_type, cid)
        # The answer gives the price; the PnL is on the fill, which the user stream may never bring.
        held = trades.held(a.symbol)
        if (
            held is not None
        ):  # the answer gives the price; the PnL is on the fill, which the stream may never bring
            self._settle(held)
        trades.close(a.symbol, a.reason, at_ms=self._clock_ms(), exit_price=result.avg_price or None)
