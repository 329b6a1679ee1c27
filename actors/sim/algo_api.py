"""Signed Algo Service endpoints (``/fapi/v1`` and, as ccxt uses them, ``/dapi/v1``): ``algoOrder``
(POST/GET/DELETE), ``openAlgoOrders``, ``algoOpenOrders`` (DELETE) and ``allAlgoOrders``.

``algoType`` must be CONDITIONAL; ``type`` STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT (these two
with a ``price`` and ``timeInForce``) or TRAILING_STOP_MARKET (``callbackRate`` 0.1–10 %, optional
``activatePrice``). ``closePosition`` (no ``quantity``, no ``reduceOnly``) only for the two *_MARKET stops.
Matching rules: ``algos``.
"""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from typing import Any

from . import params, wire
from .errors import SimError, known
from .exchange import Request, SimExchange
from .faults import StopExpiry
from .guard import SIGNED
from .orders import CONDITIONAL_TYPES, LIMIT_TRIGGERED, TIME_IN_FORCE, AlgoOrder
from .trading import forced_rejection, one_way, side_of

_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}
_CLOSE_TYPES = frozenset({"STOP_MARKET", "TAKE_PROFIT_MARKET"})
_WORKING = frozenset({"MARK_PRICE", "CONTRACT_PRICE"})


async def new_algo(v: SimExchange, r: Request) -> Any:
    p = r.params
    params.enum(p, "algoType", frozenset({"CONDITIONAL"}), -1116, "Invalid algoType.")
    symbol = params.required(p, "symbol").upper()
    side = side_of(p)
    order_type = params.enum(p, "type", CONDITIONAL_TYPES, -1116, "Invalid orderType.")
    spec = v.symbol(symbol, r.contract_type)
    rules = v.book.rules[symbol]
    one_way(p)
    close_position = params.boolean(p, "closePosition")
    if close_position:
        for name in ("quantity", "reduceOnly"):
            if name in p:
                raise SimError(-1106, f"Parameter '{name}' sent when not required.")
        if order_type not in _CLOSE_TYPES:
            raise SimError(-1106, "Parameter 'closePosition' sent when not required.")
    market = order_type not in LIMIT_TRIGGERED
    qty = Decimal(0) if close_position else rules.check_quantity(params.decimal(p, "quantity"), market=market)
    trailing = order_type == "TRAILING_STOP_MARKET"
    trigger = Decimal(0) if trailing else rules.check_price(params.decimal(p, "triggerPrice"), stop=True)
    price = rules.check_price(params.decimal(p, "price")) if order_type in LIMIT_TRIGGERED else Decimal(0)
    tif = p.get("timeInForce", "GTC").upper()
    if tif not in TIME_IN_FORCE:
        raise known(-1115)
    callback = params.optional_decimal(p, "callbackRate") if trailing else None
    if callback is not None and not Decimal("0.1") <= callback <= Decimal(10):
        raise SimError(-1130, "Data sent for parameter 'callbackRate' is not valid.")
    activate = params.optional_decimal(p, "activatePrice") if trailing else None
    if activate is not None:
        rules.check_price(activate)
    working = p.get("workingType", "CONTRACT_PRICE").upper()
    if working not in _WORKING:
        raise SimError(-1100, "Illegal characters found in parameter 'workingType'.")
    client = params.client_id(p, "clientAlgoId") or secrets.token_hex(11)
    forced_rejection(v)
    algo = v.book.algo_book.place(
        symbol=symbol,
        side=side,
        order_type=order_type,
        qty=qty,
        trigger=trigger,
        reduce_only=params.boolean(p, "reduceOnly"),
        close_position=close_position,
        client_algo_id=client,
        working_type=working,
        time_in_force=tif,
        price_protect=params.boolean(p, "priceProtect"),
        now=v.now_ms,
        price=price,
        activate_price=activate,
        callback_rate=callback,
        good_till=params.optional_int(p, "goodTillDate") or 0,
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
    if algo.status == "NEW":
        v.book.algo_book.end(algo, fault.status, v.now_ms)
        await v.replay.flush_user_events()


def _algo(v: SimExchange, r: Request) -> AlgoOrder | None:
    algo_id = params.optional_int(r.params, "algoId")
    client = r.params.get("clientAlgoId") or None
    if algo_id is None and client is None:
        raise SimError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
    algo = v.book.algo_book.find(algo_id, client)
    return algo if algo is not None and algo.contract_type is r.contract_type else None


async def get_algo(v: SimExchange, r: Request) -> Any:
    algo = _algo(v, r)
    if algo is None:
        raise known(-2013)
    return wire.algo_json(v.book.specs[algo.symbol], algo, "query")


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
        wire.algo_json(v.book.specs[a.symbol], a, "list")
        for a in v.book.open_algos(symbol)
        if a.contract_type is r.contract_type
    ]


async def cancel_all_algos(v: SimExchange, r: Request) -> Any:
    symbol = params.required(r.params, "symbol").upper()
    v.symbol(symbol, r.contract_type)
    for algo in v.book.open_algos(symbol):
        v.book.cancel_algo(algo, v.now_ms)
    return _DONE


async def all_algos(v: SimExchange, r: Request) -> Any:
    """Every algo order of a symbol: ``algoId`` ≥, ``startTime``/``endTime`` (create time), ``limit``."""
    p = r.params
    symbol = params.required(p, "symbol").upper()
    v.symbol(symbol, r.contract_type)
    limit = params.optional_int(p, "limit") or 500
    if not 1 <= limit <= 1000:
        raise SimError(-1130, "Data sent for parameter 'limit' is not valid.")
    first = params.optional_int(p, "algoId") or 0
    start, end = params.optional_int(p, "startTime") or 0, params.optional_int(p, "endTime")
    found = [
        a
        for a in v.book.algos.values()
        if a.symbol == symbol
        and a.algo_id >= first
        and start <= a.create_time <= (a.create_time if end is None else end)
    ]
    chosen = found[:limit] if first or p.get("startTime") else found[-limit:]
    return [wire.algo_json(v.book.specs[a.symbol], a, "list") for a in chosen]


def _open_weight(p: dict[str, str]) -> int:
    return 1 if p.get("symbol") else 40


ENDPOINTS: list[tuple[str, str, Any, str, Any, bool]] = [
    ("POST", "/v1/algoOrder", new_algo, SIGNED, 0, True),  # no IP weight: the order rate counts it
    ("GET", "/v1/algoOrder", get_algo, SIGNED, 1, False),
    ("DELETE", "/v1/algoOrder", cancel_algo, SIGNED, 1, False),
    ("GET", "/v1/openAlgoOrders", open_algos, SIGNED, _open_weight, False),
    ("DELETE", "/v1/algoOpenOrders", cancel_all_algos, SIGNED, 1, False),
    ("GET", "/v1/allAlgoOrders", all_algos, SIGNED, 5, False),
]
"""(method, path under /fapi or /dapi, handler, security, weight, counts as an order)."""
