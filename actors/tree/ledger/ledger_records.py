"""The position ledger's records: one typed row each of positions, orders, events and decisions.

The vocabulary the store reads and writes, the ledger actor keeps in memory and the reconciliation planner
compares with the exchange; plain frozen values, no SQLite here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ...domain.model import ContractType, Decision, Direction

TERMINAL = frozenset({"filled", "finished", "canceled", "expired", "rejected"})
"""Order statuses after which an order is no longer open."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionRecord:
    """One row of ``positions``."""

    symbol: str
    direction: Direction
    qty: Decimal
    entry_price: float
    stop_loss: float | None
    take_profit: float | None
    signal_open_time_ms: int | None
    """None for a position adopted from the exchange (not opened by a signal of ours)."""
    opened_at_ms: int
    contract_type: ContractType
    margin_asset: str | None = None
    state: str = "open"
    closed_at_ms: int | None = None
    exit_price: float | None = None
    realized_pnl: float | None = None
    close_reason: str | None = None
    fees: Decimal | None = None
    """Commissions of the trade's entry and exits as the exchange charged them (set when it closes)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRecord:
    """One row of ``orders``: the latest known state of one of our orders, by client id."""

    client_id: str
    symbol: str
    leg: str | None
    side: str | None
    status: str
    qty: str | None = None
    price: float | None = None
    exchange_id: int | None = None
    detail: str = ""
    updated_at_ms: int = 0
    filled_qty: Decimal = Decimal(0)
    realized_pnl: float = 0.0
    commission: Decimal = Decimal(0)
    """Commission charged over the order's fills so far, in ``commission_asset``."""
    commission_asset: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """One row of ``events``: an alert or a reconciliation discrepancy."""

    kind: str
    symbol: str | None
    detail: str
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRecord:
    """A stored decision and when it was recorded."""

    decision: Decision
    recorded_at_ms: int
