"""Signed endpoints: orders, algo orders, account settings and views, listenKeys."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from . import accounts, params, wire
from .errors import SimError, known
from .exchange import Request, SimExchange
from .faults import StopExpiry
from .guard import KEY, SIGNED
from .orders import ALGO_TYPES, CONDITIONAL_TYPES, AlgoOrder, Order, Side, UserEvent

_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}


def _side(p: dict[str, str]) -> Side:
    value = params.required(p, "side").upper()
    if value not in Side.__members__:
        raise SimError(-1117, "Invalid side.")
    return Side(value)


def _position_side(p: dict[str, str]) -> None:
    if p.get("positionSide", "BOTH").upper() != "BOTH":
        raise SimError(-4061, "Order's position side does not match user's setting.")


def _rejection(v: SimExchange) -> None:
    forced = v.faults.take_reject()
    if forced is not None:
        raise SimError(forced[0], forced[1])


async def new_order(v: SimExchange, r: Request) -> Any:
    p = r.params
    symbol = params.required(p, "symbol").upper()
    side = _side(p)
    order_type = params.required(p, "type").upper()
    spec = v.symbol(symbol, r.contract_type)
    if order_type in CONDITIONAL_TYPES:
        raise known(-4120)
    if order_type != "MARKET":
        raise SimError(-1116, "Invalid orderType.")
    _position_side(p)
    qty = params.quantity(spec, params.decimal(p, "quantity"))
    reduce_only = params.boolean(p, "reduceOnly")
    client = params.client_id(p, "newClientOrderId") or secrets.token_hex(11)
    _rejection(v)
    snapshot, filled = v.book.place_market(
        symbol=symbol, side=side, qty=qty, reduce_only=reduce_only, client_id=client, now=v.now_ms
    )
    shown = filled if p.get("newOrderRespType", "ACK").upper() == "RESULT" else snapshot
    return wire.order_json(spec, shown)


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


async def cancel_order(v: SimExchange, r: Request) -> Any:
    _order(v, r)
    # Market orders are filled on arrival, so there is never an open one to cancel.
    raise known(-2011)


async def open_orders(v: SimExchange, r: Request) -> Any:
    if "symbol" in r.params:
        v.symbol(r.params["symbol"].upper(), r.contract_type)
    return []


async def cancel_all(v: SimExchange, r: Request) -> Any:
    symbol = params.required(r.params, "symbol").upper()
    v.symbol(symbol, r.contract_type)
    return _DONE


async def new_algo(v: SimExchange, r: Request) -> Any:
    p = r.params
    if params.required(p, "algoType").upper() != "CONDITIONAL":
        raise SimError(-1116, "Invalid algoType.")
    symbol = params.required(p, "symbol").upper()
    side = _side(p)
    order_type = params.required(p, "type").upper()
    spec = v.symbol(symbol, r.contract_type)
    if order_type not in ALGO_TYPES:
        raise SimError(-1116, "Invalid orderType.")
    _position_side(p)
    close_position = params.boolean(p, "closePosition")
    reduce_only = params.boolean(p, "reduceOnly")
    if close_position and "quantity" in p:
        raise SimError(-1106, "Parameter 'quantity' sent when not required.")
    if close_position and "reduceOnly" in p:
        raise SimError(-1106, "Parameter 'reduceOnly' sent when not required.")
    qty = (
        params.quantity(spec, params.decimal(p, "quantity"))
        if not close_position
        else spec.market_min_qty * 0
    )
    trigger = params.price(spec, params.decimal(p, "triggerPrice"))
    client = params.client_id(p, "clientAlgoId") or secrets.token_hex(11)
    _rejection(v)
    algo = v.book.place_algo(
        symbol=symbol,
        side=side,
        order_type=order_type,
        qty=qty,
        trigger=trigger,
        reduce_only=reduce_only,
        close_position=close_position,
        client_algo_id=client,
        working_type=p.get("workingType", "CONTRACT_PRICE"),
        time_in_force=p.get("timeInForce", "GTC"),
        price_protect=params.boolean(p, "priceProtect"),
        now=v.now_ms,
    )
    expiry = v.faults.take_stop_expiry(symbol) if algo.is_stop else None
    if expiry is not None:
        task = asyncio.get_running_loop().create_task(_end_later(v, algo, expiry))
        _ENDING.add(task)
        task.add_done_callback(_ENDING.discard)
    return wire.algo_json(spec, algo)


_ENDING: set[asyncio.Task[None]] = set()
"""Stops a fault will end (kept referenced until they have run)."""


async def _end_later(v: SimExchange, algo: AlgoOrder, fault: StopExpiry) -> None:
    """Fault: the exchange ends a stop it accepted, as Binance may (expiry, system cancel)."""
    await asyncio.sleep(fault.after_s)
    if algo.status != "NEW":
        return
    algo.status = fault.status
    algo.update_time = v.now_ms
    spec = v.book.specs[algo.symbol]
    v.book.events.append(
        UserEvent(contract_type=spec.contract_type, payload=wire.algo_update(spec, algo, now=v.now_ms))
    )
    await v.replay.flush_user_events()


def _algo(v: SimExchange, r: Request) -> AlgoOrder | None:
    algo_id = params.optional_int(r.params, "algoId")
    client = r.params.get("clientAlgoId") or None
    if algo_id is None and client is None:
        raise SimError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
    algo = v.book.find_algo(algo_id, client)
    return algo if algo is not None and algo.contract_type is r.contract_type else None


async def get_algo(v: SimExchange, r: Request) -> Any:
    algo = _algo(v, r)
    if algo is None:
        raise known(-2013)
    return wire.algo_json(v.book.specs[algo.symbol], algo)


async def cancel_algo(v: SimExchange, r: Request) -> Any:
    algo = _algo(v, r)
    if algo is None:
        raise known(-2011)
    v.book.cancel_algo(algo, v.now_ms)
    return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}


async def open_algos(v: SimExchange, r: Request) -> Any:
    symbol = r.params.get("symbol", "").upper() or None
    if symbol is not None:
        v.symbol(symbol, r.contract_type)
    return [
        wire.algo_json(v.book.specs[a.symbol], a)
        for a in v.book.open_algos(symbol)
        if a.contract_type is r.contract_type
    ]


async def cancel_all_algos(v: SimExchange, r: Request) -> Any:
    symbol = params.required(r.params, "symbol").upper()
    v.symbol(symbol, r.contract_type)
    for algo in v.book.open_algos(symbol):
        v.book.cancel_algo(algo, v.now_ms)
    return _DONE


async def leverage(v: SimExchange, r: Request) -> Any:
    symbol = params.required(r.params, "symbol").upper()
    v.symbol(symbol, r.contract_type)
    value = params.optional_int(r.params, "leverage")
    if value is None:
        raise SimError(-1102, "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.")
    v.book.set_leverage(symbol, value)
    cap = {"maxNotionalValue": "1000000"} if r.contract_type.value == "USDT_M" else {"maxQty": "1000"}
    return {"leverage": value, **cap, "symbol": symbol}


async def margin_type(v: SimExchange, r: Request) -> Any:
    symbol = params.required(r.params, "symbol").upper()
    v.symbol(symbol, r.contract_type)
    kind = params.required(r.params, "marginType").upper()
    if kind not in {"ISOLATED", "CROSSED", "CROSS"}:
        raise SimError(
            -1100, "Illegal characters found in parameter 'marginType'; legal range is 'ISOLATED, CROSSED'."
        )
    v.book.set_margin_type(symbol, kind == "ISOLATED")
    return {"code": 200, "msg": "success"}


async def get_dual(_v: SimExchange, _r: Request) -> Any:
    return {"dualSidePosition": False}


async def set_dual(_v: SimExchange, r: Request) -> Any:
    if params.boolean(r.params, "dualSidePosition"):
        raise SimError(
            -4068, "Hedge mode is not supported by the local exchange; it trades one-way positions only."
        )
    raise SimError(-4059, "No need to change position side.")


async def position_risk(v: SimExchange, r: Request) -> Any:
    symbol = r.params.get("symbol", "").upper() or None
    if symbol is not None:
        v.symbol(symbol, r.contract_type)
    return accounts.position_risk(v.book, r.contract_type, symbol)


async def account(v: SimExchange, r: Request) -> Any:
    return accounts.account(v.book, r.contract_type, v.now_ms)


async def balance(v: SimExchange, r: Request) -> Any:
    return accounts.balances(v.book, r.contract_type, v.now_ms)


async def new_listen_key(v: SimExchange, r: Request) -> Any:
    return {"listenKey": v.hub.create_key(r.contract_type)}


async def keepalive_listen_key(v: SimExchange, r: Request) -> Any:
    return {"listenKey": v.hub.keepalive(r.params.get("listenKey") or None, r.contract_type)}


async def close_listen_key(v: SimExchange, r: Request) -> Any:
    v.hub.delete_key(r.params.get("listenKey") or None, r.contract_type)
    return {}


Endpoint = tuple[str, str, Callable[[SimExchange, Request], Awaitable[Any]], str, Any, bool]


def _open_weight(p: dict[str, str]) -> int:
    return 1 if p.get("symbol") else 40


ENDPOINTS: list[Endpoint] = [
    # New orders cost no IP weight; they count against the account's order rate (10 s and 1 min) instead.
    ("POST", "/v1/order", new_order, SIGNED, 0, True),
    ("GET", "/v1/order", get_order, SIGNED, 1, False),
    ("DELETE", "/v1/order", cancel_order, SIGNED, 1, False),
    ("GET", "/v1/openOrders", open_orders, SIGNED, _open_weight, False),
    ("DELETE", "/v1/allOpenOrders", cancel_all, SIGNED, 1, False),
    ("POST", "/v1/algoOrder", new_algo, SIGNED, 0, True),
    ("GET", "/v1/algoOrder", get_algo, SIGNED, 1, False),
    ("DELETE", "/v1/algoOrder", cancel_algo, SIGNED, 1, False),
    ("GET", "/v1/openAlgoOrders", open_algos, SIGNED, _open_weight, False),
    ("DELETE", "/v1/algoOpenOrders", cancel_all_algos, SIGNED, 1, False),
    ("POST", "/v1/leverage", leverage, SIGNED, 1, False),
    ("POST", "/v1/marginType", margin_type, SIGNED, 1, False),
    ("GET", "/v1/positionSide/dual", get_dual, SIGNED, 30, False),
    ("POST", "/v1/positionSide/dual", set_dual, SIGNED, 1, False),
    ("POST", "/v1/listenKey", new_listen_key, KEY, 1, False),
    ("PUT", "/v1/listenKey", keepalive_listen_key, KEY, 1, False),
    ("DELETE", "/v1/listenKey", close_listen_key, KEY, 1, False),
] + [
    ("GET", f"/v{n}/{name}", handler, SIGNED, 5, False)
    for n in (1, 2, 3)
    for name, handler in (("positionRisk", position_risk), ("account", account), ("balance", balance))
]
