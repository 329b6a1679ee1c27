"""Order, algo order and position records of the local exchange (mutable state, owned by ``Book``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ..domain.fills import InstrumentSpec, TrailingStop, initial_margin, pnl
from ..domain.model import ContractType, Direction


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


ORDER_TYPES = frozenset({"MARKET", "LIMIT"})
"""Types ``POST /v1/order`` takes; the conditional ones live in the Algo Service (-4120 there)."""
CONDITIONAL_TYPES = frozenset(
    {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
)
"""Types ``POST /v1/algoOrder`` takes (all executed)."""
STOP_TYPES = frozenset({"STOP", "STOP_MARKET"})
LIMIT_TRIGGERED = frozenset({"STOP", "TAKE_PROFIT"})
"""Conditional types that become a LIMIT order at ``price`` when triggered (the others a MARKET order)."""
TIME_IN_FORCE = frozenset({"GTC", "IOC", "FOK", "GTX", "GTD", "RPI"})
POST_ONLY = frozenset({"GTX", "RPI"})
OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})


@dataclass(slots=True, kw_only=True)
class Order:
    """A regular order: MARKET or LIMIT (triggered algo orders become one too)."""

    order_id: int
    client_id: str
    symbol: str
    contract_type: ContractType
    side: Side
    qty: Decimal
    reduce_only: bool
    time: int
    order_type: str = "MARKET"
    price: Decimal = Decimal(0)
    """The limit price (0 for MARKET)."""
    time_in_force: str = "GTC"
    good_till: int = 0
    """GTD expiry (replay ms); 0 otherwise."""
    orig_type: str = "MARKET"
    stop_price: str = "0"
    close_position: bool = False
    activate_price: str = ""
    """TRAILING_STOP_MARKET only: its activation price (``AP``/``activatePrice``)."""
    price_rate: str = ""
    """TRAILING_STOP_MARKET only: its callback rate (``cr``/``priceRate``)."""
    working_type: str = "CONTRACT_PRICE"
    status: str = "NEW"
    expiry_reason: str = "0"
    """Binance's ``er``: 0 none, 2 IOC not filled, 4 reduce-only knocked out, 10 FOK not filled."""
    executed: Decimal = Decimal(0)
    avg_price: float = 0.0
    cum_quote: float = 0.0
    commission: float = 0.0
    realized: float = 0.0
    maker: bool = False
    update_time: int = 0
    trade_id: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def limit(self) -> float:
        return float(self.price)


@dataclass(slots=True, kw_only=True)
class AlgoOrder:
    """A conditional order living in the Algo Service until the replayed price path reaches its trigger."""

    algo_id: int
    client_algo_id: str
    symbol: str
    contract_type: ContractType
    side: Side
    order_type: str
    qty: Decimal
    trigger: Decimal
    """triggerPrice (0 for TRAILING_STOP_MARKET, which triggers on its callback)."""
    reduce_only: bool
    close_position: bool
    working_type: str
    time_in_force: str
    price_protect: bool
    create_time: int
    price: Decimal = Decimal(0)
    """The LIMIT price a STOP / TAKE_PROFIT becomes."""
    activate_price: Decimal | None = None
    callback_rate: Decimal | None = None
    trailing: TrailingStop | None = None
    good_till: int = 0
    status: str = "NEW"
    update_time: int = 0
    trigger_time: int = 0
    actual_order_id: int | None = None
    actual_type: str = ""
    executed: Decimal = Decimal(0)
    avg_price: float = 0.0
    reject_reason: str = ""

    @property
    def is_stop(self) -> bool:
        return self.order_type in STOP_TYPES


@dataclass(slots=True, kw_only=True)
class Position:
    """One-way position of a symbol (``amount`` signed: + long, − short)."""

    symbol: str
    contract_type: ContractType
    leverage: int
    isolated: bool = False
    amount: Decimal = Decimal(0)
    entry: float = 0.0
    margin: float = 0.0
    """Initial margin locked by the position, in the margin asset."""
    update_time: int = 0

    def apply_fill(self, spec: InstrumentSpec, sign: int, qty: Decimal, price: float) -> float:
        """Book a fill of ``qty`` (``sign`` +1 buy, −1 sell) at ``price``; returns the realized PnL.

        The closing part realizes PnL with the shared ``pnl`` rule and frees its share of the margin; the
        opening part averages the entry (harmonically for inverse COIN-M contracts) and locks margin.
        """
        closing = min(qty, abs(self.amount)) if self.amount * sign < 0 else Decimal(0)
        opening = qty - closing
        realized = 0.0
        held = direction_of(self.amount)
        if closing and held is not None:
            realized = pnl(spec, held, closing, self.entry, price)
            self.margin -= self.margin * float(closing / abs(self.amount))
            self.amount -= closing * held.sign
            if not self.amount:
                self.entry, self.margin = 0.0, 0.0
        if opening:
            held_qty = float(abs(self.amount))
            if not held_qty:
                self.entry = price
            elif spec.contract_type is ContractType.COIN_M:
                self.entry = (held_qty + float(opening)) / (held_qty / self.entry + float(opening) / price)
            else:
                self.entry = (held_qty * self.entry + float(opening) * price) / (held_qty + float(opening))
            self.amount += opening * sign
            self.margin += initial_margin(spec, opening, price, self.leverage)
        return realized


def direction_of(amount: Decimal) -> Direction | None:
    """Direction of a signed position amount (None when flat)."""
    if amount > 0:
        return Direction.LONG
    if amount < 0:
        return Direction.SHORT
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEvent:
    """A user-data stream payload (already in Binance's shape) and the market whose listenKeys get it."""

    contract_type: ContractType
    payload: Mapping[str, Any]
