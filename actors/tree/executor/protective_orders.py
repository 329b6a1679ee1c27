"""A new position's protective orders: its STOP_MARKET, TAKE_PROFIT_MARKET and (when the pair has one) its
TRAILING_STOP_MARKET, or a close at market.

All are placed through the algo-order API with client ids derived from (symbol, signal candle, leg),
through the executor's retry discipline (:mod:`.order_retries`). The stop goes out first and at once (no
other symbol's entry goes before it), and is given ``STOP_DEADLINE_S``: a stop the exchange refuses, or
whose outcome is still unknown once the deadline passes, is not tried again; the position is closed at
market (reduce-only) and a ``stop_failed`` alert is raised. If even the close cannot be confirmed, a
``naked_position`` alert, and the ledger's reconciliation takes over (it retries until the exchange shows
the position protected or flat). A missing take-profit or trailing stop only alerts: the stop protects the
position. The trailing stop's activation comes from ``domain.exits.trailing_activation``; when the price has
already passed it (-2021) it is placed without one, armed at once, as the backtest models it.

The window a fill leaves unprotected is the stop's own round trip: ``protect`` places the stop before it
tells anyone anything.
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
from .order_retries import GiveUpError, LandedError, OrderRetries, Pace
from .order_terms import OrderGateway, SymbolTerms

if TYPE_CHECKING:
    from loguru import Logger

STOP_DEADLINE_S = 1.0
"""How long a stop may stay unconfirmed (retries and lookups included) before the position is closed."""
STOP_LOOKUP_DELAY_S = 0.05
TAKE_PROFIT_PACE = Pace(attempts=3, delay_s=0.1)
Levels = tuple[Decimal, Decimal]
"""(stop trigger, take-profit trigger), rounded to the tick toward the losing side."""
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
        notify: Callable[[object], None],
        stop_retries: int,
        counters: dict[str, int],
        log: Logger,
        stop_deadline_s: float = STOP_DEADLINE_S,
    ) -> None:
        self._gateways = gateways
        self._retries = retries
        self._reports = reports
        self._priority = priority
        self._notify = notify
        self._stop_retries = stop_retries
        self._stop_pace = Pace(
            attempts=stop_retries + 1, delay_s=STOP_LOOKUP_DELAY_S, deadline_s=stop_deadline_s
        )
        self._counters = counters
        """The executor's counters: ``stop_failed`` and ``flattened`` are counted here."""
        self._log = log

    @staticmethod
    def levels(d: Decision, t: SymbolTerms) -> Levels:
        if d.stop_loss is None or d.take_profit is None:
            raise ValueError(f"taken decision without levels: {d}")
        stop = protective_price(d.stop_loss, t.spec.tick_size, d.direction)
        take = protective_price(d.take_profit, t.spec.tick_size, d.direction)
        return stop, take

    def protect(
        self, d: Decision, t: SymbolTerms, entry: OrderResult, opened: Callable[[Levels], None]
    ) -> str:
        """Place the stop, tell ``opened``, then place the take-profit; or close at market if the stop
        could not be placed. Returns the entry's outcome (``EntryFinished.outcome``)."""
        levels = stop, take = self.levels(d, t)
        contract = t.spec.contract_type
        exit_side = Side.SELL if d.direction is Direction.LONG else Side.BUY
        placed = self._place(
            d, contract, ProtectiveKind.STOP_MARKET, exit_side, price=stop, leg=Leg.STOP, pace=self._stop_pace
        )
        opened(levels)
        if not placed:
            self._counters["stop_failed"] += 1
            return self._flatten(d, contract, exit_side, entry.executed_qty, "stop placement failed")
        self._priority.step_aside(own=d.symbol)  # another symbol's entry goes out before our take-profit
        tp = self._place(
            d, contract, ProtectiveKind.TAKE_PROFIT_MARKET, exit_side, price=take, leg=Leg.TAKE_PROFIT,
            pace=TAKE_PROFIT_PACE,
        )  # fmt: skip
        if not tp:
            self._notify(
                Alert(
                    kind="take_profit_failed", symbol=d.symbol, detail="position protected by its stop only"
                )
            )
        if t.exits.callback_pct is not None and not self._trail(d, t, exit_side, entry.executed_qty):
            self._notify(
                Alert(kind="trailing_stop_failed", symbol=d.symbol, detail="position protected by its stop")
            )
        return "protected"

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
        pace: Pace,
    ) -> bool:
        """Place one protective order; True once the exchange holds it."""
        gw = self._gateways[contract]
        cid = client_order_id(d.symbol, d.signal_open_time_ms, leg)
        self._reports.order_state(d.symbol, cid, leg, "submitted", side.value, price=float(price))

        def place() -> AlgoOrderResult:
            return gw.place_protective(d.symbol, contract, kind, side, price, cid, close_position=True)

        def lookup() -> AlgoOrderResult | None:
            return gw.get_algo_order(d.symbol, contract, client_algo_id=cid)

        try:
            result = self._retries.idempotent(place, lookup, what=f"{d.symbol} {kind} {cid}", pace=pace)
        except Rejected as exc:
            self._log.warning(f"{d.symbol}: {kind} rejected ({exc.code} {exc.msg})")
            self._reports.order_state(
                d.symbol, cid, leg, "rejected", side.value, price=float(price), detail=str(exc.code)
            )
            return False
        except LandedError as exc:  # the exchange holds it; its details follow on the user-data stream
            self._log.warning(f"{d.symbol}: {exc}")
            self._reports.order_state(d.symbol, cid, leg, "new", side.value, price=float(price))
            return True
        except GiveUpError as exc:
            self._log.warning(f"{d.symbol}: {exc}")
            return False
        self._reports.order_state(
            d.symbol, cid, leg, "new", side.value, price=float(price), exchange_id=result.algo_id
        )
        self._log.info(f"{_NAMES[leg]} placed: {side.value} {kind} {d.symbol} at {price} ({cid})")
        return True

    def _flatten(self, d: Decision, contract: ContractType, side: Side, qty: Decimal, why: str) -> str:
        gw = self._gateways[contract]
        cid = client_order_id(d.symbol, d.signal_open_time_ms, Leg.CLOSE)
        self._reports.order_state(d.symbol, cid, Leg.CLOSE, "submitted", side.value, quantity=str(qty))

        def place() -> OrderResult:
            return gw.market_order(d.symbol, contract, side, qty, cid, reduce_only=True)

        def lookup() -> OrderResult | None:
            return gw.get_order(d.symbol, contract, client_order_id=cid)

        try:
            result = self._retries.idempotent(place, lookup, what=f"{d.symbol} flatten {cid}")
        except LandedError as exc:  # the close is on the exchange; reconciliation reads what it did
            self._log.warning(f"{d.symbol}: {exc}")
            return "unconfirmed"
        except (Rejected, GiveUpError) as exc:
            self._notify(
                Alert(kind="naked_position", symbol=d.symbol, detail=f"{why}; flatten failed too: {exc}")
            )
            return "unconfirmed"  # reconciliation protects or closes what the exchange still holds
        self._counters["flattened"] += 1
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
        return "flattened"
