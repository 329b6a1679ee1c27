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
from typing import TYPE_CHECKING

from ..domain.fills import candle_path
from .orders import Order, direction_of

if TYPE_CHECKING:
    from .desks import Accounts


def walk_candle(book: Accounts, symbol: str, ohlc: tuple[float, float, float, float], now: int) -> None:
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
