"""Carrying out a reconciliation for the position ledger: fetch the exchange's view, plan, repair.

For each contract type, ``ReconciliationRunner.run`` fetches the positions and open orders, asks the pure
planner (:mod:`.reconciliation`) what differs, records each discrepancy (a naked position is also an
alert) and carries out the plan's actions: close or adopt a ledger row, take the exchange's quantity,
place a missing stop, flatten at market, cancel an orphan algo order.

A stop the exchange rejects as a duplicate id is retried under a fresh id; rejected for any other reason,
the position is flattened instead. A gateway failure skips that contract (or that action) until the next
run; only a run that covered every contract type sets ``snapshots.reconciled``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

from ...config import ExecutionSettings
from ...domain.model import ContractType, Leg
from ...exchange.errors import ExchangeError, Rejected, UnknownStatus
from ...exchange.types import OrderStatus, ProtectiveKind
from ...messages import Alert
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
    fresh_client_id,
    parse_client_id,
    plan_reconciliation,
)

if TYPE_CHECKING:
    from loguru import Logger


class ReconciliationRunner:
    """Runs reconciliations on the ledger actor's thread (see the module docstring)."""

    def __init__(
        self,
        *,
        trades: LedgerTrades,
        gateways: Mapping[ContractType, LedgerGateway],
        execution: ExecutionSettings,
        snapshots: LedgerSnapshots,
        alert: Callable[[Alert], None],
        margin_assets: Mapping[str, str],
        clock_ms: Callable[[], int],
        log: Logger,
    ) -> None:
        self._trades = trades
        self._gateways = gateways
        self._policy = Policy(
            on_unprotected_position=execution.on_unprotected_position,
            on_unknown_position=execution.on_unknown_position,
        )
        self._execution = execution
        self._snapshots = snapshots
        self._alert = alert
        self._margin_assets = margin_assets
        self._clock_ms = clock_ms
        self._log = log

    def run(self, reason: str, *, in_flight: Collection[str]) -> None:
        """Compare with the exchange and repair; a gateway failure skips that contract until next time.

        Symbols in ``in_flight`` have an entry on its way whose position the ledger has not heard of yet.
        """
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
                self._snapshots.bump("reconcile_errors")
                self._log.warning(
                    f"reconcile ({reason}) {contract}: exchange unavailable, retry later: {exc}"
                )
                self._trades.event("reconcile_failed", None, f"{contract}: {exc}")
                continue
            plan = plan_reconciliation(
                self._trades.positions(), view, self._policy, is_used=self._trades.is_used,
                in_flight=in_flight, now_ms=self._clock_ms(),
            )  # fmt: skip
            for d in plan.discrepancies:
                self._log.warning(f"reconcile ({reason}): {d.kind} {d.symbol}: {d.detail}")
                self._trades.event(d.kind, d.symbol, d.detail)
                self._snapshots.bump("discrepancies", discrepancy=d.kind)
                if d.kind == "naked_position":
                    self._snapshots.bump("naked_alerts")
                    self._alert(Alert(kind="naked_position", symbol=d.symbol, detail=d.detail))
            for action in plan.actions:
                self._log.info(f"reconcile ({reason}): {action}")
                try:
                    self._apply(action)
                except ExchangeError as exc:
                    complete = False
                    self._log.warning(f"reconcile ({reason}): {action} failed, retry later: {exc}")
                    self._trades.event(
                        "reconcile_action_failed", action.symbol, f"{type(action).__name__}: {exc}"
                    )
        self._snapshots.bump("reconciles")
        if complete:
            self._snapshots.reconciled.set()

    def _apply(self, action: Action) -> None:
        now = self._clock_ms()
        if isinstance(action, CloseInLedger):
            self._trades.close(action.symbol, action.reason, at_ms=now)
        elif isinstance(action, AdoptPosition):
            adopted = PositionRecord(
                symbol=action.symbol, direction=action.direction, qty=action.qty,
                entry_price=action.entry_price, stop_loss=action.stop_loss, take_profit=action.take_profit,
                signal_open_time_ms=None, opened_at_ms=now, contract_type=action.contract_type,
                margin_asset=self._margin_assets.get(action.symbol),
            )  # fmt: skip
            self._trades.adopt(adopted)
        elif isinstance(action, UpdateQuantity):
            self._trades.set_quantity(action.symbol, action.qty)
        elif isinstance(action, PlaceStop):
            self._place_stop(action)
        elif isinstance(action, Flatten):
            self._flatten(action)
        else:
            self._trades.cancel_algo(action.symbol, action.contract_type, action.client_algo_id)

    def _place_stop(self, a: PlaceStop) -> None:
        gateway = self._gateways[a.contract_type]
        trades = self._trades
        cid = a.client_algo_id
        for _ in range(self._execution.stop_placement_retries + 1):
            trades.merge_order(
                cid, a.symbol, status="submitted", leg="S", side=a.side.value, price=float(a.trigger_price)
            )
            try:
                placed = gateway.place_protective(
                    a.symbol, a.contract_type, ProtectiveKind.STOP_MARKET, a.side, a.trigger_price, cid
                )
            except UnknownStatus:
                raise  # the next reconciliation sees whether it landed; its id is now "used"
            except Rejected as exc:
                trades.merge_order(cid, a.symbol, status="rejected", detail=f"{exc.code} {exc.msg}")
                if exc.reason == "duplicate_client_id":
                    parsed = parse_client_id(cid)
                    signal = parsed[1] if parsed else self._clock_ms()
                    cid = fresh_client_id(a.symbol, signal, Leg.STOP, trades.is_used)
                    continue
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
                return
            trades.merge_order(cid, a.symbol, status="new", exchange_id=placed.algo_id)
            self._snapshots.bump("repairs")
            trades.event("stop_repaired", a.symbol, f"{cid} @ {a.trigger_price}")
            return

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
        trades.close(a.symbol, a.reason, at_ms=self._clock_ms(), exit_price=result.avg_price or None)
