"""What the ledger is given and what it publishes: the gateway calls it makes, and the thread-safe
snapshots (open positions, counters, discrepancies) the shell and metrics read without asking the actor.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from ...domain.model import ContractType
from ...exchange.types import (
    AccountTrade,
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
    def account_trades(self, symbol: str, contract: ContractType, *, start_ms: int) -> list[AccountTrade]: ...
    def get_order(
        self,
        symbol: str,
        contract: ContractType,
        *,
        client_order_id: str | None = None,
        order_id: int | None = None,
    ) -> OrderResult | None: ...


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


@dataclass(frozen=True, slots=True, kw_only=True)
class MoneyTotals:
    """What the ledger's trades made and cost, summed exactly (decimals) from its rows."""

    closed: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Closed trades by (symbol, exit reason)."""
    realized_pnl: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    """Realised PnL of closed trades as the exchange reported it (before fees), by (symbol, margin asset)."""
    fees: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    """Commissions paid, open trades' entries included, by (symbol, asset)."""

    def closing(
        self, symbol: str, asset: str, reason: str | None, pnl: float | None, *, undo: bool = False
    ) -> MoneyTotals:
        """With one more closed trade (or one less, ``undo``: a late fill amends it)."""
        sign = -1 if undo else 1
        closed = dict(self.closed)
        key = (symbol, reason or "unknown")
        closed[key] = closed.get(key, 0) + sign
        if not closed[key]:
            del closed[key]
        realized = dict(self.realized_pnl)
        if pnl is not None:
            realized[symbol, asset] = realized.get((symbol, asset), Decimal(0)) + sign * Decimal(repr(pnl))
        return MoneyTotals(closed=closed, realized_pnl=realized, fees=self.fees)

    def paying(self, symbol: str, asset: str, amount: Decimal) -> MoneyTotals:
        """With ``amount`` more commission paid in ``asset``."""
        fees = dict(self.fees)
        fees[symbol, asset] = fees.get((symbol, asset), Decimal(0)) + amount
        return MoneyTotals(closed=self.closed, realized_pnl=self.realized_pnl, fees=fees)


def money_totals(
    closed: Iterable[tuple[str, str | None, str, str | None, float | None, str | None]],
    commissions: Iterable[tuple[str, str | None, str]],
) -> MoneyTotals:
    """``MoneyTotals`` from ``LedgerStore.closed_money()`` and ``LedgerStore.commissions()`` rows."""
    trades: Counter[tuple[str, str]] = Counter()
    pnl: dict[tuple[str, str], Decimal] = {}
    for symbol, asset, contract, reason, realized, _ in closed:
        trades[symbol, reason or "unknown"] += 1
        key = (symbol, asset or margin_asset_of(symbol, ContractType(contract)))
        if realized is not None:
            pnl[key] = pnl.get(key, Decimal(0)) + Decimal(repr(realized))
    fees: dict[tuple[str, str], Decimal] = {}
    for symbol, fee_asset, amount in commissions:
        key = (symbol, fee_asset or "")
        fees[key] = fees.get(key, Decimal(0)) + Decimal(amount)
    return MoneyTotals(closed=dict(trades), realized_pnl=pnl, fees=fees)


def margin_asset_of(symbol: str, contract: ContractType) -> str:
    """USDT for a USDⓈ-M symbol, the coin for COIN-M (``BTCUSD_PERP`` → ``BTC``), when none was recorded."""
    return "USDT" if contract is ContractType.USDT_M else symbol.split("USD", maxsplit=1)[0]


class LedgerSnapshots:
    """Thread-safe reads of the ledger's state for the shell and metrics, without asking the actor."""

    COUNTERS = ("reconciles", "reconcile_errors", "naked_alerts", "repairs", "flattens", "adopted", "closed")

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._positions: tuple[OpenPositionView, ...] = ()
        self._counters: Counter[str] = Counter()
        self._discrepancies: Counter[str] = Counter()
        self._money = MoneyTotals()
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

    def money(self) -> MoneyTotals:
        """Closed trades, realised PnL and fees of the whole ledger (replaced whole on every change)."""
        return self._money

    def set_money(self, totals: MoneyTotals) -> None:
        self._money = totals

    def set_positions(self, positions: tuple[OpenPositionView, ...]) -> None:
        self._positions = positions

    def bump(self, counter: str, n: int = 1, *, discrepancy: str | None = None) -> None:
        with self._lock:
            self._counters[counter] += n
            if discrepancy is not None:
                self._discrepancies[discrepancy] += n
            self._lock.notify_all()
