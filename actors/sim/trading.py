"""Signed order endpoints: ``order`` (POST/GET/DELETE), ``batchOrders``, ``openOrders``, ``allOpenOrders``,
``allOrders``; the conditional types answer -4120 here (they live in the Algo Service, ``algo_api``).

``POST order`` takes MARKET and LIMIT orders (``limit_orders`` for LIMIT's time-in-force rules), checked
against the symbol's filters (``rules``). ``priceMatch`` (OPPONENT[_5|_10|_20], QUEUE[_5|_10|_20]) prices a
LIMIT order at that level of the synthetic book. ``newOrderRespType`` ACK answers the order as accepted,
RESULT as it ended up. Batches take up to 5 orders (cancels: 10) and answer each in request order.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from ..domain.fills import best_bid
from . import params, wire
from .errors import SimError, known
from .exchange import Request, SimExchange
from .guard import SIGNED
from .orders import CONDITIONAL_TYPES, ORDER_TYPES, TIME_IN_FORCE, Order, Side

_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}
_MATCH_LEVELS = {"": 1, "_5": 5, "_10": 10, "_20": 20}


def side_of(p: dict[str, str]) -> Side:
    return Side(params.enum(p, "side", frozenset(Side.__members__), -1117, "Invalid side."))


def one_way(p: dict[str, str]) -> None:
    if p.get("positionSide", "BOTH").upper() != "BOTH":
        raise SimError(-4061, "Order's position side does not match user's setting.")


def forced_rejection(v: SimExchange) -> None:
    forced = v.faults.take_reject()
    if forced is not None:
        raise SimError(forced[0], forced[1])


def _matched_price(v: SimExchange, symbol: str, side: Side, match: str) -> Decimal:
    spec = v.book.specs[symbol]
    for kind in ("OPPONENT", "QUEUE"):
        level = _MATCH_LEVELS.get(match.removeprefix(kind)) if match.startswith(kind) else None
        if level is not None:
            bid = Decimal(repr(best_bid(v.book.marks[symbol], spec.tick_size)))
            ask_side = (side is Side.BUY) == (kind == "OPPONENT")
            steps = level - 1
            return bid + spec.tick_size * (1 + steps) if ask_side else bid - spec.tick_size * steps
    raise SimError(-1100, "Illegal characters found in parameter 'priceMatch'.")


def place(v: SimExchange, r: Request, p: dict[str, str]) -> Order:
    """One new order from parameters ``p`` (also a batch element); returns it as ``newOrderRespType`` asks."""
    symbol = params.required(p, "symbol").upper()
    side = side_of(p)
    order_type = params.required(p, "type").upper()
    v.symbol(symbol, r.contract_type)
    if order_type in CONDITIONAL_TYPES:
        raise known(-4120)
    if order_type not in ORDER_TYPES:
        raise known(-1116)
    one_way(p)
    rules = v.book.rules[symbol]
    if params.boolean(p, "closePosition"):
        raise SimError(-1106, "Parameter 'closePosition' sent when not required.")
    qty = rules.check_quantity(params.decimal(p, "quantity"), market=order_type == "MARKET")
    reduce_only = params.boolean(p, "reduceOnly")
    client = params.client_id(p, "newClientOrderId") or secrets.token_hex(11)
    if order_type == "MARKET":
        if p.get("price"):
            raise SimError(-1106, "Parameter 'price' sent when not required.")
        forced_rejection(v)
        snapshot, done = v.book.place_market(
            symbol=symbol, side=side, qty=qty, reduce_only=reduce_only, client_id=client, now=v.now_ms
        )
    else:
        tif = params.enum(p, "timeInForce", TIME_IN_FORCE, -1115, "Invalid timeInForce.")
        match = p.get("priceMatch", "NONE").upper()
        if match != "NONE" and p.get("price"):
            raise SimError(-1106, "Parameter 'price' sent when not required.")
        price = params.decimal(p, "price") if match == "NONE" else _matched_price(v, symbol, side, match)
        rules.check_price(price)
        rules.check_percent(price, buy=side is Side.BUY, mark=v.book.marks.get(symbol, 0.0))
        forced_rejection(v)
        snapshot, done = v.book.limits.place(
            symbol=symbol,
            side=side,
            qty=qty,
            price=price,
            time_in_force=tif,
            reduce_only=reduce_only,
            client_id=client,
            now=v.now_ms,
            good_till=params.optional_int(p, "goodTillDate") or 0,
        )
    return done if p.get("newOrderRespType", "ACK").upper() == "RESULT" else snapshot


async def new_order(v: SimExchange, r: Request) -> Any:
    order = place(v, r, r.params)
    return wire.order_json(v.book.specs[order.symbol], order)


async def new_batch(v: SimExchange, r: Request) -> Any:
    items = params.json_list(r.params, "batchOrders", 5, -4082, "Invalid number of batch place orders.")
    answers: list[dict[str, Any]] = []
    for item in items:
        fields = {str(k): str(x) for k, x in item.items()} if isinstance(item, dict) else {}
        try:
            order = place(v, r, fields)
            answers.append(wire.order_json(v.book.specs[order.symbol], order))
        except SimError as exc:
            answers.append(exc.body())
    return answers


def _order(v: SimExchange, r: Request) -> tuple[Order | None, str]:
    symbol = params.required(r.params, "symbol").upper()
    v.symbol(symbol, r.contract_type)
    order_id = params.optional_int(r.params, "orderId")
    client = r.params.get("origClientOrderId") or None
    if order_id is None and client is None:
        raise SimError(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    return v.book.find_order(symbol, order_id, client), symbol


async def get_order(v: SimExchange, r: Request) -> Any:
    order, symbol = _order(v, r)
    if order is None:
        raise known(-2013)
    return wire.order_json(v.book.specs[symbol], order)


def _cancel(v: SimExchange, order: Order | None) -> dict[str, Any]:
    if order is None or not order.is_open:
        raise known(-2011)
    v.book.finish(order, "CANCELED", v.now_ms)
    return wire.order_json(v.book.specs[order.symbol], order)


async def cancel_order(v: SimExchange, r: Request) -> Any:
    return _cancel(v, _order(v, r)[0])


async def cancel_batch(v: SimExchange, r: Request) -> Any:
    symbol = params.required(r.params, "symbol").upper()
    v.symbol(symbol, r.contract_type)
    msg = "Invalid number of batch cancel orders."
    if r.params.get("orderIdList"):
        found = [(i, None) for i in params.json_list(r.params, "orderIdList", 10, -4082, msg)]
    else:
        found = [(None, c) for c in params.json_list(r.params, "origClientOrderIdList", 10, -4082, msg)]
    answers: list[dict[str, Any]] = []
    for order_id, client in found:
        try:
            oid = int(order_id) if order_id is not None else None
            answers.append(
                _cancel(v, v.book.find_order(symbol, oid, None if client is None else str(client)))
            )
        except (SimError, ValueError) as exc:
            answers.append(exc.body() if isinstance(exc, SimError) else known(-2011).body())
    return answers


async def open_orders(v: SimExchange, r: Request) -> Any:
    symbol = r.params.get("symbol", "").upper() or None
    if symbol is not None:
        v.symbol(symbol, r.contract_type)
    found = [o for o in v.book.open_orders(symbol) if o.contract_type is r.contract_type]
    return [wire.order_json(v.book.specs[o.symbol], o) for o in found]


async def cancel_all(v: SimExchange, r: Request) -> Any:
    symbol = params.required(r.params, "symbol").upper()
    v.symbol(symbol, r.contract_type)
    for order in v.book.open_orders(symbol):
        v.book.finish(order, "CANCELED", v.now_ms)
    return _DONE


async def all_orders(v: SimExchange, r: Request) -> Any:
    """Every order of a symbol (COIN-M: or of a pair), FOK refusals excepted; ``orderId`` ≥, times, limit."""
    p = r.params
    pair = p.get("pair", "").upper() if r.contract_type.value == "COIN_M" else ""
    symbol = p.get("symbol", "").upper() if pair else params.required(p, "symbol").upper()
    if symbol:
        v.symbol(symbol, r.contract_type)
    limit = params.optional_int(p, "limit") or 500
    if not 1 <= limit <= 1000:
        raise SimError(-1130, "Data sent for parameter 'limit' is not valid.")
    first = params.optional_int(p, "orderId") or 0
    start, end = params.optional_int(p, "startTime") or 0, params.optional_int(p, "endTime")
    found = [
        o
        for o in v.book.orders.values()
        if o.contract_type is r.contract_type
        and (o.symbol == symbol if symbol else o.symbol.removesuffix("_PERP") == pair)
        and o.order_id >= first
        and start <= o.time <= (end if end is not None else o.time)
    ]
    chosen = found[:limit] if first or p.get("startTime") else found[-limit:]
    return [wire.order_json(v.book.specs[o.symbol], o) for o in chosen]


def _open_weight(p: dict[str, str]) -> int:
    return 1 if p.get("symbol") else 40


ENDPOINTS: list[tuple[str, str, Any, str, Any, bool]] = [
    # A new order costs no IP weight: it counts against the account's order rate (10 s and 1 min).
    ("POST", "/v1/order", new_order, SIGNED, 0, True),
    ("GET", "/v1/order", get_order, SIGNED, 1, False),
    ("DELETE", "/v1/order", cancel_order, SIGNED, 1, False),
    ("POST", "/v1/batchOrders", new_batch, SIGNED, 5, True),
    ("DELETE", "/v1/batchOrders", cancel_batch, SIGNED, 1, False),
    ("GET", "/v1/openOrders", open_orders, SIGNED, _open_weight, False),
    ("DELETE", "/v1/allOpenOrders", cancel_all, SIGNED, 1, False),
    ("GET", "/v1/allOrders", all_orders, SIGNED, 5, False),
]
"""(method, path under /fapi or /dapi, handler, security, weight, counts as an order)."""
