"""What the matching engine's parts need of each other: narrow interfaces, so none imports its owner.

``Book`` (the accounts) owns the LIMIT desk (``limit_orders.LimitOrders``) and the Algo Service
(``algos.AlgoBook``); both act on the book, and ``matching`` walks a candle through both. Each side sees the
others only through these protocols, which ``Book``, ``LimitOrders`` and ``AlgoBook`` satisfy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..domain.fills import InstrumentSpec
    from .config import SimConfig
    from .orders import AlgoOrder, Order, Position, Side
    from .rules import SymbolRules


STOP_RANK, TAKE_RANK, LIMIT_RANK = 0, 1, 2
"""At one spot on the path: a stop before a take-profit before a limit order (the pessimistic reading)."""


@dataclass(frozen=True, slots=True, order=True)
class Hit:
    """Where on a candle's path an order is hit, ordered as they are executed."""

    index: int
    """The path index (``domain.fills``: 0 the first point, k ≥ 1 the move from point k − 1 to k)."""
    distance: float
    """How far along that move (0 at the first point)."""
    rank: int
    seq: int
    price: float = field(compare=False)
    target: Order | AlgoOrder = field(compare=False)

    @classmethod
    def at(  # noqa: PLR0917 - one argument per field
        cls, path: tuple[float, ...], index: int, price: float, rank: int, seq: int, target: Order | AlgoOrder
    ) -> Hit:
        distance = abs(price - path[index - 1]) if index else 0.0
        return cls(index, distance, rank, seq, price, target)


class LimitDesk(Protocol):
    """The resting LIMIT orders (``limit_orders.LimitOrders``)."""

    def check_room(self, symbol: str) -> None: ...
    def start(self, order: Order, last: float, now: int) -> None: ...
    def hits(self, symbol: str, path: tuple[float, ...], start: int = 0) -> list[Hit]: ...
    def execute(self, order: Order, price: float, now: int) -> None: ...
    def expire_due(self, symbol: str, now: int) -> None: ...


class AlgoDesk(Protocol):
    """The conditional orders (``algos.AlgoBook``)."""

    def hits(self, symbol: str, path: tuple[float, ...]) -> list[Hit]: ...
    def trigger(self, algo: AlgoOrder, level: float, now: int) -> Order | None: ...
    def carry_trailing(self, symbol: str, path: tuple[float, ...]) -> None: ...


class Accounts(Protocol):
    """The accounts both desks fill into (``book.Book``)."""

    @property
    def specs(self) -> dict[str, InstrumentSpec]: ...
    @property
    def rules(self) -> dict[str, SymbolRules]: ...
    @property
    def marks(self) -> dict[str, float]: ...
    @property
    def config(self) -> SimConfig: ...
    @property
    def positions(self) -> dict[str, Position]: ...
    @property
    def orders_by_client(self) -> dict[tuple[str, str], Order]: ...
    @property
    def limits(self) -> LimitDesk: ...
    @property
    def algo_book(self) -> AlgoDesk: ...

    def tradeable(self, symbol: str) -> InstrumentSpec: ...
    def position(self, symbol: str) -> Position: ...
    def open_orders(self, symbol: str | None = None) -> list[Order]: ...
    def open_algos(self, symbol: str | None = None) -> list[AlgoOrder]: ...
    def closing_qty(self, symbol: str, side: Side) -> Decimal: ...
    def check_open(
        self,
        spec: InstrumentSpec,
        *,
        side: Side,
        qty: Decimal,
        price: float,
        reduce_only: bool,
        fill_price: float | None = None,
    ) -> None: ...
    def new_order(
        self, spec: InstrumentSpec, *, side: Side, qty: Decimal, reduce_only: bool, client_id: str, now: int
    ) -> Order: ...
    def accept(self, order: Order, now: int) -> None: ...
    def finish(self, order: Order, status: str, now: int, *, reason: str = "0") -> None: ...
    def fill(self, order: Order, price: float, now: int, *, maker: bool) -> None: ...
    def emit(self, spec: InstrumentSpec, payload: dict[str, object]) -> None: ...
