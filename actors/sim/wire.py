"""Binance JSON of orders, algo orders, positions and user-data events (the exchange boundary of the sim)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..domain.fills import InstrumentSpec
from ..domain.model import ContractType
from .orders import AlgoOrder, Order, Position


def px(spec: InstrumentSpec, value: float) -> str:
    return f"{value:.{spec.price_precision}f}"


def qty(spec: InstrumentSpec, value: Decimal) -> str:
    return f"{value:.{spec.quantity_precision}f}"


def money(value: float) -> str:
    return f"{value:.8f}"


def order_json(spec: InstrumentSpec, o: Order) -> dict[str, Any]:
    """REST order (response of POST/GET/DELETE ``order``), as in nautilus__order_response.json."""
    coin_m = o.contract_type is ContractType.COIN_M
    body: dict[str, Any] = {
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_id,
        "price": "0",
        "avgPrice": px(spec, o.avg_price) if o.executed else "0.00",
        "origQty": qty(spec, o.qty),
        "executedQty": qty(spec, o.executed),
        "cumQuote" if not coin_m else "cumBase": money(o.cum_quote),
        "timeInForce": "GTC",
        "type": "MARKET",
        "reduceOnly": o.reduce_only,
        "closePosition": o.close_position,
        "side": o.side.value,
        "positionSide": "BOTH",
        "stopPrice": o.stop_price,
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": o.orig_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "time": o.time,
        "updateTime": o.update_time or o.time,
    }
    if coin_m:
        body["pair"] = spec.symbol.removesuffix("_PERP")
        body["cumQty"] = qty(spec, o.executed)
    else:
        body["cumQty"] = qty(spec, o.executed)
    return body


def algo_json(spec: InstrumentSpec, a: AlgoOrder) -> dict[str, Any]:
    """REST algo order (POST/GET/DELETE ``algoOrder``, ``openAlgoOrders``)."""
    return {
        "algoId": a.algo_id,
        "clientAlgoId": a.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": a.order_type,
        "symbol": a.symbol,
        "side": a.side.value,
        "positionSide": "BOTH",
        "timeInForce": a.time_in_force,
        "quantity": qty(spec, a.qty),
        "algoStatus": a.status,
        "triggerPrice": f"{a.trigger}",
        "price": "0",
        "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": a.working_type,
        "priceMatch": "NONE",
        "closePosition": a.close_position,
        "priceProtect": a.price_protect,
        "reduceOnly": a.reduce_only,
        "activatePrice": "",
        "callbackRate": "",
        "createTime": a.create_time,
        "updateTime": a.update_time or a.create_time,
        "triggerTime": a.trigger_time,
        "goodTillDate": 0,
        "actualOrderId": "" if a.actual_order_id is None else str(a.actual_order_id),
        "executedQty": qty(spec, a.executed),
        "actualPrice": px(spec, a.avg_price) if a.executed else "0",
    }


def order_update(
    spec: InstrumentSpec,
    o: Order,
    *,
    now: int,
    execution: str,
    last_qty: Decimal = Decimal(0),
    last_price: float = 0.0,
    fee: float = 0.0,
    realized: float = 0.0,
) -> dict[str, Any]:
    """``ORDER_TRADE_UPDATE`` as in nautilus__order_update_*.json."""
    return {
        "e": "ORDER_TRADE_UPDATE",
        "T": now,
        "E": now,
        "o": {
            "s": o.symbol,
            "c": o.client_id,
            "S": o.side.value,
            "o": "MARKET",
            "f": "GTC",
            "q": qty(spec, o.qty),
            "p": "0",
            "ap": px(spec, o.avg_price) if o.executed else "0",
            "sp": o.stop_price,
            "x": execution,
            "X": o.status,
            "i": o.order_id,
            "l": qty(spec, last_qty),
            "z": qty(spec, o.executed),
            "L": px(spec, last_price) if last_qty else "0",
            "N": spec.margin_asset,
            "n": money(fee),
            "T": now,
            "t": o.trade_id if last_qty else 0,
            "b": "0",
            "a": "0",
            "m": False,
            "R": o.reduce_only,
            "wt": "CONTRACT_PRICE",
            "ot": o.orig_type,
            "ps": "BOTH",
            "cp": o.close_position,
            "AP": "0",
            "cr": "0",
            "rp": money(realized),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "EXPIRE_MAKER",
            "pm": "NONE",
            "gtd": 0,
        },
    }


def trade_lite(
    spec: InstrumentSpec, o: Order, *, now: int, last_qty: Decimal, last_price: float
) -> dict[str, Any]:
    """``TRADE_LITE`` as in nautilus__trade_lite.json."""
    return {
        "e": "TRADE_LITE",
        "E": now,
        "T": now,
        "s": o.symbol,
        "c": o.client_id,
        "S": o.side.value,
        "q": qty(spec, o.qty),
        "p": "0.00",
        "i": o.order_id,
        "l": qty(spec, last_qty),
        "L": px(spec, last_price),
        "t": o.trade_id,
        "m": False,
    }


def algo_update(spec: InstrumentSpec, a: AlgoOrder, *, now: int) -> dict[str, Any]:
    """``ALGO_UPDATE`` (Binance's Algo Service user-data event)."""
    return {
        "e": "ALGO_UPDATE",
        "T": now,
        "E": now,
        "o": {
            "caid": a.client_algo_id,
            "aid": a.algo_id,
            "at": "CONDITIONAL",
            "o": a.order_type,
            "s": a.symbol,
            "S": a.side.value,
            "ps": "BOTH",
            "f": a.time_in_force,
            "q": qty(spec, a.qty),
            "X": a.status,
            "ai": "" if a.actual_order_id is None else str(a.actual_order_id),
            "ap": px(spec, a.avg_price) if a.executed else "0.00000",
            "aq": qty(spec, a.executed),
            "act": "MARKET" if a.actual_order_id else "0",
            "tp": f"{a.trigger}",
            "p": "0",
            "V": "EXPIRE_MAKER",
            "wt": a.working_type,
            "pm": "NONE",
            "cp": a.close_position,
            "pP": a.price_protect,
            "R": a.reduce_only,
            "tt": a.trigger_time,
            "gtd": 0,
            "rm": a.reject_reason,
        },
    }


def account_update(
    asset: str,
    wallet: float,
    cross_wallet: float,
    change: float,
    positions: list[tuple[InstrumentSpec, Position, float, float]],
    *,
    now: int,
    reason: str,
) -> dict[str, Any]:
    """``ACCOUNT_UPDATE`` as in nautilus__account_update.json; positions carry (spec, pos, upnl, realized)."""
    return {
        "e": "ACCOUNT_UPDATE",
        "T": now,
        "E": now,
        "a": {
            "m": reason,
            "B": [{"a": asset, "wb": money(wallet), "cw": money(cross_wallet), "bc": money(change)}],
            "P": [
                {
                    "s": p.symbol,
                    "pa": qty(spec, p.amount),
                    "ep": px(spec, p.entry) if p.amount else "0",
                    "bep": px(spec, p.entry) if p.amount else "0",
                    "cr": money(realized),
                    "up": money(upnl),
                    "mt": "isolated" if p.isolated else "cross",
                    "iw": money(p.margin if p.isolated else 0.0),
                    "ps": "BOTH",
                }
                for spec, p, upnl, realized in positions
            ],
        },
    }
