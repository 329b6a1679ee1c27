"""A new position's protective orders: its STOP_MARKET, TAKE_PROFIT_MARKET and (when the pair has one) its
TRAILING_STOP_MARKET, or a close at market.

All are placed through the algo-order API with client ids derived from (symbol, signal candle, leg), each
attempt through the executor's retry discipline (:mod:`.order_retries`), with bounded retries and
exponential back-off. A stop that cannot be placed → the position is closed at market (reduce-only) and a
``stop_failed`` alert is raised; if even that fails, a ``naked_position`` alert, and the symbol's entry
slot stays claimed. A missing take-profit or trailing stop only alerts: the stop protects the position.
The trailing stop's activation comes from ``domain.exits.trailing_activation``; when the price has already
passed it (-2021) it is placed without one, armed at once, as the backtest models it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from ...domain.exits import trailing_activation
from ...domain.fills import protective_price, to_decimal
from ...domain.model import ContractType, Decision, Direction, Leg, client_order_id
from ...exchange.errors import WOULD_TRIGGER, Rejected
from ...exchange.types import AlgoOrderResult, OrderResult, ProtectiveKind, Side
from ...messages import Alert
from ...runtime.scheduling import OrderPriority
from .order_reports import OrderReports
from .order_retries import GiveUpError, OrderRetries
from .order_terms import EntrySlots, OrderGateway, SymbolTerms

if TYPE_CHECKING:
    from loguru import Logger


_NAMES = {Leg.STOP: "stop-loss", Leg.TAKE_PROFIT: "take-profit"}


class ProtectiveOrders:
    """Protects the positions one executor opens (see the module docstring)."""

    def __init__(
        self,
        *,
        gateways: Mapping[ContractType, OrderGateway],
        retries: OrderRetries,
        reports: OrderReports,
        priority: OrderPriority,
        slots: EntrySlots,
        notify: Callable[[object], None],
        stop_retries: int,
        counters: dict[str, int],
        log: Logger,
    ) -> None:
        self._gateways = gateways
        self._retries = retries
        self._reports = reports
        self._priority = priority
        self._slots = slots
        self._notify = notify
        self._stop_retries = stop_retries
        self._counters = counters
        """The executor's counters: ``stop_failed`` and ``flattened`` are counted here."""
        self._log = log

    def protect(self, d: Decision, t: SymbolTerms, entry: OrderResult) -> tuple[Decimal, Decimal] | None:
        """Place the stop, then the take-profit: their trigger prices, or None if the stop could not be
        placed (the position was closed at market instead, or an alert says it could not be)."""
        if d.stop_loss is None or d.take_profit is None:
            raise ValueError(f"taken decision without levels: {d}")
        contract = t.spec.contract_type
        exit_side = Side.SELL if d.direction is Direction.LONG else Side.BUY
        stop = protective_price(d.stop_loss, t.spec.tick_size, d.direction)
        take = protective_price(d.take_profit, t.spec.tick_size, d.direction)
        placed = self._place(d, contract, ProtectiveKind.STOP_MARKET, exit_side, price=stop, leg=Leg.STOP)
        if placed is None:
            self._counters["stop_failed"] += 1
            self._flatten(d, contract, exit_side, entry.executed_qty, "stop placement failed")
            return None
        tp = self._place(
            d, contract, ProtectiveKind.TAKE_PROFIT_MARKET, exit_side, price=take, leg=Leg.TAKE_PROFIT
        )
        if tp is None:
            self._notify(
                Alert(
                    kind="take_profit_failed", symbol=d.symbol, detail="position protected by its stop only"
                )
            )
        if t.exits.callback_pct is not None and not self._trail(d, t, exit_side, entry.executed_qty):
            self._notify(
                Alert(kind="trailing_stop_failed", symbol=d.symbol, detail="position protected by its stop")
            )
        return stop, take

    def _trail(self, d: Decision, t: SymbolTerms, side: Side, qty: Decimal) -> bool:
        """Place the TRAILING_STOP_MARKET for ``qty``; False when it could not be placed."""
        callback = t.exits.callback_pct
        if callback is None or d.entry is None or d.stop_loss is None:
            return True
        gw = self._gateways[t.spec.contract_type]
        level = trailing_activation(
            t.exits, d.direction, entry=d.entry, stop=d.stop_loss, tick=t.spec.tick_size
        )
        activation = None if level is None else to_decimal(level)
        cid = client_order_id(d.symbol, d.signal_open_time_ms, Leg.TRAILING_STOP)
        leg = Leg.TRAILING_STOP
        for attempt in range(self._stop_retries + 1):
            shown = None if activation is None else float(activation)
            self._reports.order_state(
                d.symbol, cid, leg, "submitted", side.value, quantity=str(qty), price=shown
            )

            def place(at: Decimal | None = activation) -> AlgoOrderResult:
                return gw.place_trailing_stop(
                    d.symbol, t.spec.contract_type, side, qty, to_decimal(callback), cid, activate_price=at
                )

            def lookup() -> AlgoOrderResult | None:
                return gw.get_algo_order(d.symbol, t.spec.contract_type, client_algo_id=cid)

            self._priority.step_aside(own=d.symbol)
            try:
                result = self._retries.idempotent(place, lookup, what=f"{d.symbol} trailing stop {cid}")
            except Rejected as exc:
                if exc.code == WOULD_TRIGGER and activation is not None:
                    activation = None  # the price passed the activation already: armed at once
                    continue
                self._reports.order_state(d.symbol, cid, leg, "rejected", side.value, detail=str(exc.code))
                self._log.warning(f"{d.symbol}: trailing stop rejected ({exc.code} {exc.msg})")
            except GiveUpError as exc:
                self._log.warning(f"{d.symbol}: {exc}")
            else:
                self._reports.order_state(
                    d.symbol, cid, leg, "new", side.value, quantity=str(qty), exchange_id=result.algo_id
                )
                return True
            self._retries.wait(self._retries.delay_s * (2**attempt))
        return False

    def _place(
        self,
        d: Decision,
        contract: ContractType,
        kind: ProtectiveKind,
        side: Side,
        *,
        price: Decimal,
        leg: Leg,
    ) -> AlgoOrderResult | None:
        gw = self._gateways[contract]
        cid = client_order_id(d.symbol, d.signal_open_time_ms, leg)
        self._reports.order_state(d.symbol, cid, leg, "submitted", side.value, price=float(price))

        def place() -> AlgoOrderResult:
            return gw.place_protective(d.symbol, contract, kind, side, price, cid, close_position=True)

        def lookup() -> AlgoOrderResult | None:
            return gw.get_algo_order(d.symbol, contract, client_algo_id=cid)

        for attempt in range(self._stop_retries + 1):
            self._priority.step_aside(own=d.symbol)  # another symbol's entry goes out first (≤ hold_ms)
            try:
                result = self._retries.idempotent(place, lookup, what=f"{d.symbol} {kind} {cid}")
            except Rejected as exc:
                self._log.warning(
                    f"{d.symbol}: {kind} rejected ({exc.code} {exc.msg}), attempt {attempt + 1}"
                )
                self._reports.order_state(
                    d.symbol, cid, leg, "rejected", side.value, price=float(price), detail=str(exc.code)
                )
            except GiveUpError as exc:
                self._log.warning(f"{d.symbol}: {exc}")
            else:
                self._reports.order_state(
                    d.symbol, cid, leg, "new", side.value, price=float(price), exchange_id=result.algo_id
                )
                self._log.info(f"{_NAMES[leg]} placed: {side.value} {kind} {d.symbol} at {price} ({cid})")
                return result
            self._retries.wait(self._retries.delay_s * (2**attempt))
        return None

    def _flatten(self, d: Decision, contract: ContractType, side: Side, qty: Decimal, why: str) -> None:
        gw = self._gateways[contract]
        cid = client_order_id(d.symbol, d.signal_open_time_ms, Leg.CLOSE)
        self._reports.order_state(d.symbol, cid, Leg.CLOSE, "submitted", side.value, quantity=str(qty))

        def place() -> OrderResult:
            return gw.market_order(d.symbol, contract, side, qty, cid, reduce_only=True)

        def lookup() -> OrderResult | None:
            return gw.get_order(d.symbol, contract, client_order_id=cid)

        try:
            result = self._retries.idempotent(place, lookup, what=f"{d.symbol} flatten {cid}")
        except (Rejected, GiveUpError) as exc:
            self._notify(
                Alert(kind="naked_position", symbol=d.symbol, detail=f"{why}; flatten failed too: {exc}")
            )
            return  # the slot stays claimed: a position may still be open
        self._counters["flattened"] += 1
        self._slots.release(d.symbol)
        self._reports.order_state(
            d.symbol,
            cid,
            Leg.CLOSE,
            "filled",
            side.value,
            quantity=str(result.executed_qty),
            price=result.avg_price,
        )
        self._notify(Alert(kind="stop_failed", symbol=d.symbol, detail=f"{why}; position closed at market"))
