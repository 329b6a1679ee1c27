"""Closing a position at market for a time or reversal exit, and what the executor remembers of it.

The pair decides the exit at a candle's close (``domain.exits.close_time_exit``) and tells its executor
``ClosePosition``. The executor sends a reduce-only MARKET order whose client id carries the exit's leg
(``X`` time, ``V`` reversal) and the position's signal, cancels the position's stop, take-profit and
trailing stop (the close comes first: a moment without a stop is better than a stop left behind to close
the next position), and then reports the close's fill with the exchange's time — so the ledger, which
closes the trade on that report, usually finds the siblings cancelled already and leaves them. A
reversal's crossover may be taken as an entry at the same close: the executor then enters before the
ledger has heard of the close, so it remembers the symbols it closed itself (``closed``) until the
ledger's ``PositionClosed`` for that signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from ...domain.fills import ExitReason
from ...domain.model import ContractType, Direction, Leg, client_order_id
from ...exchange.errors import ExchangeError, Rejected
from ...exchange.types import OrderResult, Side
from ...messages import ClosePosition
from ...runtime.scheduling import OrderPriority
from .order_reports import OrderReports
from .order_retries import GiveUpError, OrderRetries
from .order_terms import OrderGateway, SymbolTerms

if TYPE_CHECKING:
    from loguru import Logger

EXIT_LEGS = {ExitReason.TIME_EXIT: Leg.TIME_EXIT, ExitReason.REVERSAL: Leg.REVERSAL}
"""The leg of the closing order of each close-time exit."""
PROTECTIVE_LEGS = (Leg.STOP, Leg.TAKE_PROFIT, Leg.TRAILING_STOP)


class PositionExits:
    """One executor's close-time exits (see the module docstring)."""

    def __init__(
        self,
        *,
        gateways: Mapping[ContractType, OrderGateway],
        terms: Mapping[str, SymbolTerms],
        retries: OrderRetries,
        reports: OrderReports,
        priority: OrderPriority,
        log: Logger,
    ) -> None:
        self._gateways = gateways
        self._terms = terms
        self._retries = retries
        self._reports = reports
        self._priority = priority
        self._log = log
        self.closed: dict[str, int | None] = {}
        """Symbols this executor closed and the signal of the position it closed, until the ledger says so."""

    def close(self, command: ClosePosition) -> bool:
        """Close the position; True when it filled (False: rejected or unknown; reconciliation decides)."""
        terms = self._terms.get(command.symbol)
        leg = EXIT_LEGS.get(command.reason)
        if terms is None or leg is None:
            self._log.warning(f"{command.symbol}: cannot close for {command.reason}: not this executor's")
            return False
        contract = terms.spec.contract_type
        gw = self._gateways[contract]
        signal = command.signal_open_time_ms
        cid = client_order_id(
            command.symbol, signal if signal is not None else command.candle_open_time_ms, leg
        )
        side = Side.SELL if command.direction is Direction.LONG else Side.BUY
        qty = Decimal(command.quantity)
        self._priority.step_aside(own=command.symbol)
        self._reports.order_state(
            command.symbol, cid, leg, "submitted", side.value, quantity=command.quantity
        )

        def place() -> OrderResult:
            return gw.market_order(command.symbol, contract, side, qty, cid, reduce_only=True)

        def lookup() -> OrderResult | None:
            return gw.get_order(command.symbol, contract, client_order_id=cid)

        try:
            result = self._retries.idempotent(place, lookup, what=f"{command.symbol} {command.reason} {cid}")
        except Rejected as exc:  # e.g. -2022: the stop closed it first; nothing left to close
            self._reports.order_state(command.symbol, cid, leg, "rejected", side.value, detail=str(exc.code))
            self._log.info(f"{command.symbol}: {command.reason} close refused ({exc.code} {exc.msg})")
            return False
        except GiveUpError as exc:
            self._log.warning(f"{command.symbol}: {exc}")
            return False
        self.closed[command.symbol] = signal
        if signal is not None:
            self._cancel_protection(command.symbol, terms, signal, gw)
        self._reports.order_state(
            command.symbol, cid, leg, "filled", side.value, quantity=str(result.executed_qty),
            price=result.avg_price, exchange_id=result.order_id, at_ms=result.update_time_ms or None,
        )  # fmt: skip
        self._log.info(f"{command.symbol}: closed at {result.avg_price} ({command.reason})")
        return True

    def _cancel_protection(self, symbol: str, terms: SymbolTerms, signal: int, gw: OrderGateway) -> None:
        for leg in PROTECTIVE_LEGS:
            cid = client_order_id(symbol, signal, leg)
            try:
                existed = gw.cancel_algo_order(symbol, terms.spec.contract_type, client_algo_id=cid)
            except ExchangeError as exc:  # the ledger cancels siblings too, and reconciliation orphans
                self._log.warning(f"{symbol}: cancel of {cid} failed ({exc}); the ledger retries")
                continue
            if existed:
                self._reports.order_state(symbol, cid, leg, "canceled", "")

    def forget(self, symbol: str, signal: int | None) -> bool:
        """The ledger closed ``symbol``'s position of ``signal``: True when this executor had closed it."""
        if symbol in self.closed and (signal is None or self.closed[symbol] in {signal, None}):
            del self.closed[symbol]
            return True
        return False
