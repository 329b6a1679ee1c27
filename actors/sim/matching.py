"""One candle's matching: resting LIMIT orders and conditional orders, in the order the price path meets them.

The path is ``domain.fills.candle_path`` (adverse extreme first for the open position). Every order says
where it is hit (``Hit``: the path index of ``domain.fills``, then how far along that move); hits are
executed in that order — at the same spot a stop before a take-profit before a limit order (the pessimistic
reading), then oldest first. Each execution may change the position; an order whose condition no longer
holds when its turn comes is skipped. A conditional order that triggers into a resting LIMIT order (STOP,
TAKE_PROFIT) can then fill further along the same path. Trailing stops that did not trigger carry their state
to the next candle.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..domain.fills import candle_path
from .orders import AlgoOrder, Order, direction_of

if TYPE_CHECKING:
    from .book import Book

STOP_RANK, TAKE_RANK, LIMIT_RANK = 0, 1, 2


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


def walk_candle(book: Book, symbol: str, ohlc: tuple[float, float, float, float], now: int) -> None:
    """Execute everything candle ``ohlc`` of ``symbol`` reaches, in path order (see the module docstring)."""
    if not book.open_orders(symbol) and not book.open_algos(symbol):
        return
    book.limits.expire_due(symbol, now)
    pos = book.positions.get(symbol)
    path = candle_path(*ohlc, direction_of(pos.amount) if pos else None)
    queue = book.limits.hits(symbol, path) + book.algo_book.hits(symbol, path)
    heapq.heapify(queue)
    while queue:
        hit = heapq.heappop(queue)
        target = hit.target
        if isinstance(target, Order):
            if target.is_open:
                book.limits.execute(target, hit.price, now)
            continue
        if target.status != "NEW":
            continue
        resting = book.algo_book.trigger(target, hit.price, now)
        if resting is not None:  # it may still fill further along (from the end of this move on)
            for later in book.limits.hits(symbol, path, hit.index):
                if later.target is resting:
                    heapq.heappush(queue, later)
    book.algo_book.carry_trailing(symbol, path)
