"""The Algo Service: conditional orders (``/v1/algoOrder``) waiting for the replayed price path.

Types and their trigger (``domain.fills``): STOP_MARKET / STOP fire when the price reaches the trigger
moving against the order's side's favour (a BUY on a rise, a SELL on a fall), TAKE_PROFIT_MARKET /
TAKE_PROFIT the other way (``first_touch``); TRAILING_STOP_MARKET follows ``trailing_trigger`` with its
``callbackRate`` and optional ``activatePrice`` (default: armed at the latest price). A placement that
would fire at once is refused with -2021. On trigger, the *_MARKET and trailing types become a MARKET
order filled at the trigger level moved by the slippage (``market_fill_price``); STOP / TAKE_PROFIT become
a LIMIT order at their ``price`` and time in force (``limit_orders``), which may fill at once, rest, or
expire. ALGO_UPDATE reports NEW, CANCELED, TRIGGERED, then FINISHED once that order is done (EXPIRED
when a reduce-only / closePosition order finds nothing to close). ``workingType`` MARK_PRICE behaves as
CONTRACT_PRICE (the mark price is the last price here) and ``priceProtect`` is recorded, not applied.
Caps: MAX_NUM_ALGO_ORDERS per symbol and 200 open conditional orders per account (-4045), and
MAX_NUM_ORDERS per symbol counting both kinds (-2025).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ..domain.fills import TrailingStop, first_touch, market_fill_price, trailing_trigger
from . import events
from .desks import STOP_RANK, TAKE_RANK, Hit
from .errors import SimError, known
from .orders import LIMIT_TRIGGERED, AlgoOrder, Order, Side
from .rules import MAX_OPEN_CONDITIONALS

if TYPE_CHECKING:
    from .desks import Accounts

_FIRST_ALGO_ID = 1_000_000


class AlgoBook:
    """The conditional orders of a ``Book``."""

    def __init__(self, book: Accounts) -> None:
        self.book = book
        self.algos: dict[int, AlgoOrder] = {}
        self.by_client: dict[str, AlgoOrder] = {}
        self._open: dict[int, AlgoOrder] = {}
        """The NEW ones (an index: matching runs each candle)."""
        self._by_order: dict[int, AlgoOrder] = {}
        """Triggered STOP / TAKE_PROFIT algos by the LIMIT order they became (FINISHED when it is done)."""
        self._algo_id = _FIRST_ALGO_ID

    def open(self, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self._open.values() if symbol in {None, a.symbol}]

    def find(self, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder | None:
        if algo_id is not None:
            return self.algos.get(algo_id)
        return self.by_client.get(client_algo_id or "")

    def _check_room(self, symbol: str) -> None:
        rules = self.book.rules[symbol]
        mine = len(self.open(symbol))
        if (rules.max_algo_orders is not None and mine >= rules.max_algo_orders) or len(
            self.open()
        ) >= MAX_OPEN_CONDITIONALS:
            raise SimError(-4045, "Reach max stop order limit.")
        self.book.limits.check_room(symbol)

    def place(
        self,
        *,
        symbol: str,
        side: Side,
        order_type: str,
        qty: Decimal,
        trigger: Decimal,
        reduce_only: bool,
        close_position: bool,
        client_algo_id: str,
        working_type: str,
        time_in_force: str,
        price_protect: bool,
        now: int,
        price: Decimal = Decimal(0),
        activate_price: Decimal | None = None,
        callback_rate: Decimal | None = None,
        good_till: int = 0,
    ) -> AlgoOrder:
        """Accept a conditional order (the REST layer has checked its parameters' shapes)."""
        book = self.book
        spec = book.tradeable(symbol)
        if client_algo_id in self.by_client:
            raise known(-4116)
        mark = book.marks[symbol]
        trailing = None
        if order_type == "TRAILING_STOP_MARKET":
            if callback_rate is None:
                raise SimError(
                    -1102, "Mandatory parameter 'callbackRate' was not sent, was empty/null, or malformed."
                )
            if activate_price is not None and (
                float(activate_price) >= mark if side is Side.BUY else float(activate_price) <= mark
            ):
                raise known(-2021)
            trailing = TrailingStop(
                sell=side is Side.SELL,
                callback_pct=float(callback_rate),
                activation=None if activate_price is None else float(activate_price),
                extreme=mark if activate_price is None else None,
            )
            activate_price = activate_price or Decimal(f"{mark:.{spec.price_precision}f}")  # as reported
        else:
            # A BUY stop fires on a rise and a BUY take-profit on a fall (and the reverse for SELL).
            rises = (side is Side.BUY) == (order_type in {"STOP", "STOP_MARKET"})
            if (rises and float(trigger) <= mark) or (not rises and float(trigger) >= mark):
                raise known(-2021)
        self._check_room(symbol)
        self._algo_id += 1
        algo = AlgoOrder(
            algo_id=self._algo_id,
            client_algo_id=client_algo_id,
            symbol=symbol,
            contract_type=spec.contract_type,
            side=side,
            order_type=order_type,
            qty=qty,
            trigger=trigger,
            reduce_only=reduce_only,
            close_position=close_position,
            working_type=working_type,
            time_in_force=time_in_force,
            price_protect=price_protect,
            create_time=now,
            update_time=now,
            price=price,
            activate_price=activate_price,
            callback_rate=callback_rate,
            trailing=trailing,
            good_till=good_till,
        )
        self.algos[algo.algo_id] = algo
        self.by_client[client_algo_id] = algo
        self._open[algo.algo_id] = algo
        book.emit(spec, events.algo_update(spec, algo, now=now))
        return algo

    def cancel(self, algo: AlgoOrder, now: int) -> AlgoOrder:
        if algo.status != "NEW":
            raise known(-2011)
        self._announce(algo, "CANCELED", now)
        return algo

    def end(self, algo: AlgoOrder, status: str, now: int) -> None:
        """The exchange ends an open algo order on its own (an expiry, a system cancel)."""
        self._announce(algo, status, now)

    def _announce(self, algo: AlgoOrder, status: str, now: int) -> None:
        algo.status, algo.update_time = status, now
        if status != "NEW":
            self._open.pop(algo.algo_id, None)
        spec = self.book.specs[algo.symbol]
        self.book.emit(spec, events.algo_update(spec, algo, now=now))

    # --- on the candle path ----------------------------------------------------------------------------

    def hits(self, symbol: str, path: tuple[float, ...]) -> list[Hit]:
        """Where the open conditional orders of ``symbol`` trigger on ``path``."""
        found = []
        for algo in self.open(symbol):
            if algo.trailing is not None:
                hit = trailing_trigger(path, algo.trailing)[1]
            else:
                falls = (algo.side is Side.SELL) == algo.is_stop  # a SELL stop / BUY take-profit: on a fall
                hit = first_touch(path, float(algo.trigger), from_above=falls)
            if hit is not None:
                rank = STOP_RANK if algo.is_stop or algo.trailing else TAKE_RANK
                found.append(Hit.at(path, hit[0], hit[1], rank, algo.algo_id, algo))
        return found

    def carry_trailing(self, symbol: str, path: tuple[float, ...]) -> None:
        """Trailing stops still open after the candle keep the extreme (and arming) the path gave them."""
        for algo in self.open(symbol):
            if algo.trailing is not None:
                algo.trailing = trailing_trigger(path, algo.trailing)[0]

    def trigger(self, algo: AlgoOrder, level: float, now: int) -> Order | None:
        """Fire ``algo`` at ``level``; returns the LIMIT order it became if that one rests."""
        book = self.book
        spec = book.specs[algo.symbol]
        algo.trigger_time = now
        closing = book.closing_qty(algo.symbol, algo.side)
        if (algo.reduce_only or algo.close_position) and not closing:
            algo.reject_reason = "Reduce Only reject"
            self._announce(algo, "EXPIRED", now)
            return None
        qty = closing if algo.close_position else algo.qty
        client_id = (
            algo.client_algo_id
            if (algo.symbol, algo.client_algo_id) not in book.orders_by_client
            else f"{algo.client_algo_id}-{algo.algo_id}"
        )
        reduce = algo.reduce_only or algo.close_position
        order = book.new_order(
            spec, side=algo.side, qty=qty, reduce_only=reduce, client_id=client_id, now=now
        )
        order.orig_type, order.close_position, order.working_type = (
            algo.order_type,
            algo.close_position,
            algo.working_type,
        )
        order.stop_price = f"{algo.trigger}"
        if algo.trailing is not None:
            order.activate_price, order.price_rate = f"{algo.activate_price}", f"{algo.callback_rate}"
        algo.actual_order_id = order.order_id
        algo.actual_type = "LIMIT" if algo.order_type in LIMIT_TRIGGERED else "MARKET"
        self._announce(algo, "TRIGGERED", now)
        if algo.order_type in LIMIT_TRIGGERED:
            order.order_type, order.price, order.time_in_force = "LIMIT", algo.price, algo.time_in_force
            self._by_order[order.order_id] = algo
            book.limits.start(order, level, now)
            return order if order.is_open else None
        price = market_fill_price(
            level, buy=algo.side is Side.BUY, slippage_pct=book.config.slippage_pct, tick=spec.tick_size
        )
        book.accept(order, now)
        book.fill(order, price, now, maker=False)
        self._finished(algo, order, now)
        return None

    def order_done(self, order: Order, now: int) -> None:
        """A LIMIT order a STOP / TAKE_PROFIT became has filled or ended: the algo is FINISHED."""
        algo = self._by_order.pop(order.order_id, None)
        if algo is not None:
            self._finished(algo, order, now)

    def _finished(self, algo: AlgoOrder, order: Order, now: int) -> None:
        algo.executed, algo.avg_price = order.executed, order.avg_price
        self._announce(algo, "FINISHED", now)
