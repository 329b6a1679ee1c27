"""What the ledger is given and what it publishes: the gateway calls it makes, and the thread-safe
snapshots (open positions, counters, discrepancies) the shell and metrics read without asking the actor.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from ...domain.model import ContractType
from ...exchange.types import (
    AlgoOrderResult,
    OrderPlacement,
    OrderResult,
    PositionInfo,
)


class LedgerGateway(OrderPlacement, Protocol):
    """The part of ``BinanceGateway`` the ledger uses, with ``OrderPlacement``'s two order calls."""

    def positions(self, contract: ContractType) -> list[PositionInfo]: ...
    def open_algo_orders(
        self, contract: ContractType, symbol: str | None = None
    ) -> list[AlgoOrderResult]: ...
    def open_orders(self, contract: ContractType, symbol: str | None = None) -> list[OrderResult]: ...
    def cancel_algo_order(self, symbol: str, contract: ContractType, *, client_algo_id: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenPositionView:
    """One open position as the shell and metrics see it."""

    symbol: str
    direction: str
    qty: Decimal
    entry_price: float
    stop_loss: float | None
    take_profit: float | None
    opened_at_ms: int
    contract_type: ContractType


class LedgerSnapshots:
    """Thread-safe reads of the ledger's state for the shell and metrics, without asking the actor."""

    COUNTERS = ("reconciles", "reconcile_errors", "naked_alerts", "repairs", "flattens", "adopted", "closed")

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._positions: tuple[OpenPositionView, ...] = ()
        self._counters: Counter[str] = Counter()
        self._discrepancies: Counter[str] = Counter()
        self.reconciled = threading.Event()
        """Set once a reconciliation covered every contract type: the bot may start trading."""

    def positions(self) -> tuple[OpenPositionView, ...]:
        return self._positions

    def counters(self) -> dict[str, int]:
        """``reconciles``, ``naked_alerts``, ``repairs``, ``flattens``, ... (see ``COUNTERS``)."""
        with self._lock:
            return {name: self._counters[name] for name in self.COUNTERS}

    def discrepancies(self) -> dict[str, int]:
        """Discrepancies found so far, by kind."""
        with self._lock:
            return dict(self._discrepancies)

    def wait_for(self, counter: str, at_least: int, timeout: float) -> bool:
        """Block until ``counter`` reaches ``at_least`` (tests, and the runner at start-up)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._counters[counter] >= at_least, timeout)

    def set_positions(self, positions: tuple[OpenPositionView, ...]) -> None:
        self._positions = positions

    def bump(self, counter: str, n: int = 1, *, discrepancy: str | None = None) -> None:
        with self._lock:
            self._counters[counter] += n
            if discrepancy is not None:
                self._discrepancies[discrepancy] += n
            self._lock.notify_all()
