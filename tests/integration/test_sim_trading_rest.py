"""Order, history and account endpoints of the local exchange over loopback (signed raw requests)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
import requests

from tests.integration.sim_support import BTC, running


@pytest.fixture(scope="module")
def exchange():
    with running(data=(BTC, ("BTCUSD_PERP", BTC))) as ex:
        yield ex


def call(exchange, method: str, path: str, **params):
    params["timestamp"] = int(time.time() * 1000)
    query = urlencode(params)
    signature = hmac.new(exchange.api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    url = f"{exchange.rest_url}{path}?{query}&signature={signature}"
    answer = requests.request(method, url, headers={"X-MBX-APIKEY": exchange.api_key}, timeout=5)
    return answer.json()


def mark(exchange) -> float:
    return float(
        requests.get(f"{exchange.fapi_url}/v1/ticker/price", params={"symbol": "BTCUSDT"}, timeout=5).json()[
            "price"
        ]
    )


def test_limit_lifecycle_open_orders_cancel_and_history(exchange):
    below = f"{mark(exchange) - 1000:.1f}"
    placed = call(
        exchange,
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.010",
        price=below,
        newClientOrderId="rest-1",
    )
    assert (placed["status"], placed["type"], placed["price"], placed["timeInForce"]) == (
        "NEW",
        "LIMIT",
        below + "0",
        "GTC",
    )
    assert [o["clientOrderId"] for o in call(exchange, "GET", "/fapi/v1/openOrders", symbol="BTCUSDT")] == [
        "rest-1"
    ]
    risk = call(exchange, "GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")
    assert float(risk[0]["openOrderInitialMargin"]) > 0  # listed: it has an open order
    canceled = call(exchange, "DELETE", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="rest-1")
    assert canceled["status"] == "CANCELED"
    assert (
        call(exchange, "DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=placed["orderId"])["code"]
        == -2011
    )
    assert call(exchange, "GET", "/fapi/v1/allOrders", symbol="BTCUSDT", limit=1)[0]["status"] == "CANCELED"
    refused = call(
        exchange,
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="FOK",
        quantity="0.010",
        price=below,
    )
    assert refused == {
        "code": -5021,
        "msg": "Due to the order could not be filled immediately, the FOK order has been rejected.",
    }
    assert (
        call(
            exchange,
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="XYZ",
            quantity="0.010",
            price=below,
        )["code"]
        == -1115
    )
    assert (
        call(
            exchange,
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.010",
            price="1.05",
        )["code"]
        == -4013
    )
    assert (
        call(
            exchange,
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.010",
            price=f"{mark(exchange) * 3:.1f}",
        )["code"]
        == -4016
    )


def test_batch_orders_answer_each_in_request_order_and_fills_reach_trades_and_income(exchange):
    orders = [
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010", "newClientOrderId": "b1"},
        {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "quantity": "0.010", "stopPrice": "1"},
        {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.010", "reduceOnly": "true"},
    ]
    answers = call(exchange, "POST", "/fapi/v1/batchOrders", batchOrders=json.dumps(orders))
    assert answers[0]["clientOrderId"] == "b1"
    assert answers[1] == {
        "code": -4120,
        "msg": "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
    }
    assert answers[2]["code"] == -1102  # a LIMIT order needs a timeInForce
    too_many = call(exchange, "POST", "/fapi/v1/batchOrders", batchOrders=json.dumps(orders * 2))
    assert too_many["code"] == -4082
    exchange.step(5)
    call(
        exchange,
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="SELL",
        type="MARKET",
        quantity="0.010",
        reduceOnly="true",
    )
    trades = call(exchange, "GET", "/fapi/v1/userTrades", symbol="BTCUSDT")
    assert [t["side"] for t in trades[-2:]] == ["BUY", "SELL"]
    assert trades[-1]["buyer"] is False
    assert float(trades[-2]["quoteQty"]) > 0
    income = call(exchange, "GET", "/fapi/v1/income")
    assert {"TRANSFER", "COMMISSION", "REALIZED_PNL"} <= {row["incomeType"] for row in income}
    assert isinstance(income[0]["tranId"], int)
    commissions = call(exchange, "GET", "/fapi/v1/income", incomeType="COMMISSION", symbol="BTCUSDT")
    assert {row["tradeId"] for row in commissions} >= {str(t["id"]) for t in trades[-2:]}
    coin = call(exchange, "GET", "/dapi/v1/income", incomeType="TRANSFER")
    assert {(row["asset"], type(row["tranId"])) for row in coin} == {("BTC", str)}


def test_account_configuration_endpoints(exchange):
    bracket = call(exchange, "GET", "/fapi/v1/leverageBracket", symbol="BTCUSDT")
    assert bracket["symbol"] == "BTCUSDT"
    assert bracket["brackets"][0]["initialLeverage"] == 125
    assert isinstance(call(exchange, "GET", "/fapi/v1/leverageBracket"), list)
    coin = call(exchange, "GET", "/dapi/v2/leverageBracket", symbol="BTCUSD_PERP")
    assert {"qtyCap", "qtyFloor"} <= set(coin[0]["brackets"][0])
    assert call(exchange, "GET", "/dapi/v1/leverageBracket", pair="BTCUSD")[0]["pair"] == "BTCUSD"
    assert call(exchange, "POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=126)["code"] == -4028
    changed = call(exchange, "POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=20)
    config = call(exchange, "GET", "/fapi/v1/symbolConfig", symbol="BTCUSDT")
    assert config == [
        {
            "symbol": "BTCUSDT",
            "marginType": "CROSSED",
            "isAutoAddMargin": False,
            "leverage": 20,
            "maxNotionalValue": changed["maxNotionalValue"],
        }
    ]
    rate = call(exchange, "GET", "/fapi/v1/commissionRate", symbol="BTCUSDT")
    assert (rate["makerCommissionRate"], rate["takerCommissionRate"]) == ("0.000200", "0.000500")
    assert call(exchange, "GET", "/fapi/v1/adlQuantile") == []
    assert call(exchange, "GET", "/dapi/v1/symbolConfig")["code"] == -5000  # USDⓈ-M only, as on Binance


def test_algo_service_types_caps_and_history(exchange):
    price = mark(exchange)
    stop = call(
        exchange,
        "POST",
        "/fapi/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="BUY",
        type="STOP",
        quantity="0.010",
        triggerPrice=f"{price + 500:.1f}",
        price=f"{price + 600:.1f}",
    )
    assert (stop["orderType"], stop["price"]) == ("STOP", f"{price + 600:.2f}")
    trail = call(
        exchange,
        "POST",
        "/fapi/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="SELL",
        type="TRAILING_STOP_MARKET",
        quantity="0.010",
        callbackRate="1.5",
        reduceOnly="true",
    )
    assert trail["callbackRate"] == "1.5"
    assert (
        call(
            exchange,
            "POST",
            "/fapi/v1/algoOrder",
            algoType="CONDITIONAL",
            symbol="BTCUSDT",
            side="SELL",
            type="TRAILING_STOP_MARKET",
            quantity="0.010",
            callbackRate="20",
        )["code"]
        == -1130
    )
    for i in range(8):  # the pinned BTCUSDT entry allows 10 open algo orders
        call(
            exchange,
            "POST",
            "/fapi/v1/algoOrder",
            algoType="CONDITIONAL",
            symbol="BTCUSDT",
            side="BUY",
            type="STOP_MARKET",
            quantity="0.010",
            triggerPrice=f"{price + 1000 + i:.1f}",
        )
    eleventh = call(
        exchange,
        "POST",
        "/fapi/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="BUY",
        type="STOP_MARKET",
        quantity="0.010",
        triggerPrice=f"{price + 2000:.1f}",
    )
    assert eleventh == {"code": -4045, "msg": "Reach max stop order limit."}
    assert len(call(exchange, "GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")) == 10
    call(exchange, "DELETE", "/fapi/v1/algoOpenOrders", symbol="BTCUSDT")
    history = call(exchange, "GET", "/fapi/v1/allAlgoOrders", symbol="BTCUSDT")
    assert {a["algoStatus"] for a in history} == {"CANCELED"}
    assert {"tpTriggerPrice", "slPrice", "actualOrderId"} <= set(history[0])
