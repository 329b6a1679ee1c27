"""LIMIT orders: placement by time in force, resting orders, and where the candle path fills them.

On arrival (``domain.fills``): an order that crosses the synthetic book (``marketable``) fills at once, in
full, as a taker at ``taker_limit_price``; otherwise GTC/GTD orders rest, IOC orders expire (``er`` 2),
FOK orders are refused with -5021 (never recorded, no events), and a post-only order (GTX, RPI) that
would cross is refused with -5022. A resting order fills in full, as a maker at its limit price, when the
replayed path touches it (``limit_fill``): no queue, no partial fills. Resting orders hold their initial
margin (``openOrderInitialMargin``); a reduce-only one that can no longer reduce expires (``er`` 4); a GTD
one expires at its ``goodTillDate`` (replay time).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ..domain.fills import limit_fill, marketable, notional_in_margin_asset, taker_limit_price
from .desks import LIMIT_RANK, Hit
from .errors import SimError, known
from .orders import POST_ONLY, Order, Side

if TYPE_CHECKING:
    from .desks import Accounts

MAX_GOOD_TILL = 253_402_300_799_000
GOOD_TILL_MARGIN_MS = 600_000


class LimitOrders:
    """The LIMIT side of a ``Book``."""

    def __init__(self, book: Accounts) -> None:
        self.book = book

    def place(
        self,
        *,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        time_in_force: str,
        reduce_only: bool,
        client_id: str,
        now: int,
        good_till: int = 0,
    ) -> tuple[Order, Order]:
        """Accept a LIMIT order; returns (snapshot at acceptance, the order as it ended up)."""
        book = self.book
        spec = book.tradeable(symbol)
        if (symbol, client_id) in book.orders_by_client:
            raise known(-4116)
        last = book.marks[symbol]
        crosses = marketable(float(price), buy=side is Side.BUY, last=last, tick=spec.tick_size)
        if time_in_force in POST_ONLY and crosses:
            raise known(-5022)
        if time_in_force == "FOK" and not crosses:
            raise known(-5021)
        if time_in_force == "GTD" and not now + GOOD_TILL_MARGIN_MS < good_till < MAX_GOOD_TILL:
            raise known(-5040)
        if reduce_only and not book.closing_qty(symbol, side):
            raise known(-2022)
        self.check_room(symbol)
        book.check_open(spec, side=side, qty=qty, price=float(price), reduce_only=reduce_only)
        order = book.new_order(
            spec, side=side, qty=qty, reduce_only=reduce_only, client_id=client_id, now=now
        )
        order.order_type = order.orig_type = "LIMIT"
        order.price, order.time_in_force = price, time_in_force
        order.good_till = good_till if time_in_force == "GTD" else 0
        snapshot = Order(**{f: getattr(order, f) for f in Order.__slots__})
        self.start(order, last, now)
        return snapshot, order

    def start(self, order: Order, last: float, now: int) -> None:
        """Announce ``order``; fill it at once if it crosses at ``last``, expire it if it may not rest."""
        book = self.book
        spec = book.specs[order.symbol]
        book.accept(order, now)
        buy = order.side is Side.BUY
        if marketable(order.limit, buy=buy, last=last, tick=spec.tick_size):
            if order.time_in_force in POST_ONLY:
                book.finish(order, "EXPIRED", now, reason="11")
                return
            slippage = book.config.slippage_pct
            price = taker_limit_price(
                last, buy=buy, limit=order.limit, slippage_pct=slippage, tick=spec.tick_size
            )
            book.fill(order, price, now, maker=False)
        elif order.time_in_force in {"IOC", "FOK"}:
            book.finish(order, "EXPIRED", now, reason="2" if order.time_in_force == "IOC" else "10")

    def check_room(self, symbol: str) -> None:
        """MAX_NUM_ORDERS: open orders of ``symbol``, algo orders included (-2025)."""
        cap = self.book.rules[symbol].max_orders
        if cap is not None and len(self.book.open_orders(symbol)) + len(self.book.open_algos(symbol)) >= cap:
            raise SimError(-2025, "Reach max open order limit.")

    def margin(self, asset: str) -> float:
        """Initial margin held by the resting orders that would open positions in ``asset``."""
        book = self.book
        held = 0.0
        for order in book.open_orders():
            spec = book.specs[order.symbol]
            if spec.margin_asset == asset and not order.reduce_only:
                leverage = book.position(order.symbol).leverage
                held += notional_in_margin_asset(spec, order.qty, order.limit) / leverage
        return held

    def hits(self, symbol: str, path: tuple[float, ...], start: int = 0) -> list[Hit]:
        """Where the resting orders of ``symbol`` fill on ``path[start:]``."""
        found = []
        for order in self.book.open_orders(symbol):
            hit = limit_fill(path[start:], buy=order.side is Side.BUY, limit=order.limit)
            if hit is not None:
                found.append(Hit.at(path, start + hit[0], hit[1], LIMIT_RANK, order.order_id, order))
        return found

    def execute(self, order: Order, price: float, now: int) -> None:
        """A resting order the path reached fills as a maker (reduce-only: capped, or expired if moot)."""
        if order.reduce_only and not self.book.closing_qty(order.symbol, order.side):
            self.book.finish(order, "EXPIRED", now, reason="4")
            return
        self.book.fill(order, price, now, maker=True)

    def settle(self, symbol: str, now: int) -> None:
        """After a fill: reduce-only orders that can no longer reduce expire."""
        for order in self.book.open_orders(symbol):
            if order.reduce_only and not self.book.closing_qty(symbol, order.side):
                self.book.finish(order, "EXPIRED", now, reason="4")

    def expire_due(self, symbol: str, now: int) -> None:
        """GTD orders whose ``goodTillDate`` has come."""
        for order in self.book.open_orders(symbol):
            if order.good_till and order.good_till <= now:
                self.book.finish(order, "EXPIRED", now)
