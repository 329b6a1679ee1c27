"""Domain types the venue boundary produces: orders, algo orders, positions, balances, user-data events.

Binance JSON is parsed into these in ``actors.exchange`` and nowhere else. Quantities and prices that go
back to the exchange are ``Decimal``; values only used for arithmetic (PnL, marks) are floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from ..domain.model import ContractType


class Side(StrEnum):
    """Order side."""

    BUY = "BUY"
    SELL = "SELL"


class OrderStatus(StrEnum):
    """Binance order status (regular orders)."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class AlgoStatus(StrEnum):
    """Binance algo (conditional) order status."""

    NEW = "NEW"
    TRIGGERING = "TRIGGERING"
    TRIGGERED = "TRIGGERED"
    FINISHED = "FINISHED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


class ProtectiveKind(StrEnum):
    """The conditional orders that protect a position."""

    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderResult:
    """A regular (MARKET) order as the exchange reports it."""

    symbol: str
    contract_type: ContractType
    order_id: int
    client_order_id: str
    side: Side
    status: OrderStatus
    orig_qty: Decimal
    executed_qty: Decimal
    avg_price: float
    reduce_only: bool
    update_time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AlgoOrderResult:
    """A conditional order on the algo-order API."""

    symbol: str
    contract_type: ContractType
    algo_id: int
    client_algo_id: str
    kind: ProtectiveKind
    side: Side
    status: AlgoStatus
    trigger_price: Decimal
    """A trailing stop's ``activatePrice`` (0 when it was placed without one)."""
    quantity: Decimal | None
    """None with closePosition=true."""
    close_position: bool
    reduce_only: bool
    update_time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionInfo:
    """A one-way-mode position (positionSide BOTH); ``amount`` is signed (negative = short)."""

    symbol: str
    contract_type: ContractType
    amount: Decimal
    entry_price: float
    mark_price: float
    unrealized_pnl: float
    leverage: int
    margin_type: str
    """``isolated`` or ``cross`` as Binance reports it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountTrade:
    """One fill of the account (a ``userTrades`` row): how a position was closed when no stream said."""

    symbol: str
    order_id: int
    side: Side
    price: Decimal
    qty: Decimal
    realized_pnl: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolSettings:
    """The account's margin type and leverage on one symbol (``symbolConfig``; COIN-M: ``positionRisk``)."""

    symbol: str
    margin_type: str
    """``ISOLATED`` or ``CROSSED`` (the names the setting is changed with)."""
    leverage: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Balance:
    """One asset of a futures wallet."""

    asset: str
    wallet: float
    available: float


# ---- user-data stream events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderUpdate:
    """ORDER_TRADE_UPDATE: a regular order changed (fills of triggered stops arrive as these too)."""

    contract_type: ContractType
    symbol: str
    client_order_id: str
    order_id: int
    side: Side
    order_type: str
    """``o.o``: MARKET, or the original conditional type's market child."""
    execution_type: str
    """``o.x``: NEW, TRADE, CANCELED, EXPIRED, ..."""
    status: OrderStatus
    last_filled_qty: Decimal
    cumulative_qty: Decimal
    last_filled_price: float
    avg_price: float
    realized_pnl: float
    commission: Decimal
    """``o.n``: the commission of this execution (not cumulative), in ``commission_asset``."""
    reduce_only: bool
    event_time_ms: int
    commission_asset: str = ""
    """``o.N``: usually the margin asset; BNB when the account pays fees in BNB."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlgoUpdate:
    """An algo-order update (conditional order placed, triggered, finished, cancelled)."""

    contract_type: ContractType
    symbol: str
    client_algo_id: str
    algo_id: int
    status: AlgoStatus
    kind: ProtectiveKind | None
    triggered_order_client_id: str | None
    """Client id of the MARKET order a trigger created, when reported."""
    event_time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountUpdate:
    """ACCOUNT_UPDATE: balances and positions after an event (one-way positions only)."""

    contract_type: ContractType
    reason: str
    balances: tuple[Balance, ...]
    positions: tuple[PositionInfo, ...]
    event_time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenKeyExpired:
    """The user-data stream's listenKey expired: the stream must be re-created."""

    contract_type: ContractType
    event_time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UserStreamStatus:
    """The user-data connection came up or went down (reconnects are followed by a reconciliation)."""

    contract_type: ContractType
    connected: bool
    detail: str = ""


UserEvent = OrderUpdate | AlgoUpdate | AccountUpdate | ListenKeyExpired | UserStreamStatus


class OrderPlacement(Protocol):
    """The two order-placing calls of ``BinanceGateway`` that both the executor and the ledger make."""

    def market_order(
        self,
        symbol: str,
        contract: ContractType,
        side: Side,
        qty: Decimal,
        client_order_id: str,
        *,
        reduce_only: bool = False,
    ) -> OrderResult: ...
    def place_protective(  # noqa: PLR0917 - mirrors BinanceGateway.place_protective
        self,
        symbol: str,
        contract: ContractType,
        kind: ProtectiveKind,
        side: Side,
        trigger_price: Decimal,
        client_algo_id: str,
        *,
        close_position: bool = True,
        quantity: Decimal | None = None,
    ) -> AlgoOrderResult: ...
