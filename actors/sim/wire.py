"""REST JSON of orders, algo orders, user trades and income rows (the sim's exchange boundary).

Field sets follow the official SDKs' response models. USDⓈ-M orders report ``cumQuote``, COIN-M orders
``cumBase`` and their ``pair``; ``activatePrice``/``priceRate`` appear only on trailing-stop orders, as
Binance documents. User-data stream events are in ``events``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..domain.fills import InstrumentSpec
from ..domain.model import ContractType
from .history import Fill, Income
from .orders import AlgoOrder, Order

ACCOUNT_ALIAS = "SgsR"
"""The simulated account's alias (``accountAlias``; COIN-M events' ``i``)."""


def px(spec: InstrumentSpec, value: float) -> str:
    return f"{value:.{spec.price_precision}f}"


def qty(spec: InstrumentSpec, value: Decimal) -> str:
    return f"{value:.{spec.quantity_precision}f}"


def money(value: float) -> str:
    return f"{value:.8f}"


def _limit(spec: InstrumentSpec, value: Decimal) -> str:
    return px(spec, float(value)) if value else "0"


def order_json(spec: InstrumentSpec, o: Order) -> dict[str, Any]:
    """An order (POST/GET/DELETE ``order``, ``openOrders``, ``allOrders``, ``batchOrders``)."""
    coin = o.contract_type is ContractType.COIN_M
    body: dict[str, Any] = {
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_id,
        "price": _limit(spec, o.price),
        "avgPrice": px(spec, o.avg_price) if o.executed else "0.00",
        "origQty": qty(spec, o.qty),
        "executedQty": qty(spec, o.executed),
        "cumQty": qty(spec, o.executed),
        "cumBase" if coin else "cumQuote": money(o.cum_quote),
        "timeInForce": o.time_in_force,
        "type": o.order_type,
        "reduceOnly": o.reduce_only,
        "closePosition": o.close_position,
        "side": o.side.value,
        "positionSide": "BOTH",
        "stopPrice": o.stop_price,
        "workingType": o.working_type,
        "priceProtect": False,
        "origType": o.orig_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": o.good_till,
        "time": o.time,
        "updateTime": o.update_time or o.time,
    }
    if o.activate_price:
        body |= {"activatePrice": o.activate_price, "priceRate": o.price_rate}
    if coin:
        body["pair"] = spec.symbol.removesuffix("_PERP")
    return body


def algo_json(spec: InstrumentSpec, a: AlgoOrder, view: str = "new") -> dict[str, Any]:
    """An algo order: ``view`` ``new`` (POST answer), ``query`` (GET algoOrder) or ``list`` (open / all).

    ``activatePrice`` and ``callbackRate`` are in every POST answer, elsewhere only for trailing stops."""
    body: dict[str, Any] = {
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
        "price": _limit(spec, a.price),
        "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": a.working_type,
        "priceMatch": "NONE",
        "closePosition": a.close_position,
        "priceProtect": a.price_protect,
        "reduceOnly": a.reduce_only,
        "createTime": a.create_time,
        "updateTime": a.update_time or a.create_time,
        "triggerTime": a.trigger_time,
        "goodTillDate": a.good_till,
    }
    trailing = {
        "activatePrice": "" if a.activate_price is None else f"{a.activate_price}",
        "callbackRate": "" if a.callback_rate is None else f"{a.callback_rate}",
    }
    if view == "new":
        return body | trailing
    if a.callback_rate is not None:
        body |= trailing
    body |= {
        "actualOrderId": "" if a.actual_order_id is None else str(a.actual_order_id),
        "actualPrice": px(spec, a.avg_price) if a.executed else "0",
        "tpOrderType": "",
    }
    if view == "query":
        if a.actual_type:
            body["actualType"] = a.actual_type
        if a.executed:
            body["actualQty"] = qty(spec, a.executed)
        return body
    return body | {"tpTriggerPrice": "0", "tpPrice": "0", "slTriggerPrice": "0", "slPrice": "0"}


def trade_json(spec: InstrumentSpec, f: Fill) -> dict[str, Any]:
    """A ``userTrades`` row."""
    coin = f.contract_type is ContractType.COIN_M
    body: dict[str, Any] = {
        "symbol": f.symbol,
        "id": f.trade_id,
        "orderId": f.order_id,
        "side": f.side.value,
        "price": px(spec, f.price),
        "qty": qty(spec, f.qty),
        "realizedPnl": money(f.realized),
        "commission": money(f.commission),
        "commissionAsset": f.asset,
        "time": f.time,
        "positionSide": "BOTH",
        "buyer": f.side.value == "BUY",
        "maker": f.maker,
    }
    if coin:
        return body | {
            "pair": f.symbol.removesuffix("_PERP"),
            "marginAsset": f.asset,
            "baseQty": money(f.quote),
        }
    return body | {"quoteQty": money(f.quote)}


def income_json(row: Income, contract_type: ContractType) -> dict[str, Any]:
    """An ``income`` row (``tranId`` is a number on USDⓈ-M, a string on COIN-M)."""
    tran: int | str = str(row.tran_id) if contract_type is ContractType.COIN_M else row.tran_id
    return {
        "symbol": row.symbol,
        "incomeType": row.kind,
        "income": money(row.amount),
        "asset": row.asset,
        "info": row.info,
        "time": row.time,
        "tranId": tran,
        "tradeId": row.trade_id,
    }
