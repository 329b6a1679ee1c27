"""Local exchange REST endpoints driven by python-binance's own Client over loopback."""

from __future__ import annotations

import time

import pytest
import requests
from binance.exceptions import BinanceAPIException

from tests.integration.sim_support import BTC, ETH, START, running, sync_client
from tests.samples import sample


@pytest.fixture(scope="module")
def exchange():
    with running(data=(BTC, ETH, ("BTCUSD_PERP", BTC))) as ex:
        yield ex


@pytest.fixture(scope="module")
def client(exchange):
    return sync_client(exchange)


def code_of(call, *args, **kwargs) -> tuple[int, int]:
    with pytest.raises(BinanceAPIException) as info:
        call(*args, **kwargs)
    return info.value.code, info.value.status_code


def test_ping_time_and_exchange_info(exchange, client):
    assert client.ping() == {}
    before = int(time.time() * 1000)
    wall = client.futures_time()["serverTime"]
    assert before - 1000 <= wall <= int(time.time() * 1000) + 1000  # the wall clock
    assert client.response.headers["X-SIM-Clock-Ms"] == str(exchange.clock_ms) == str(START)  # replay clock
    assert requests.get(f"{exchange.admin_url}/clock", timeout=5).json()["clockMs"] == START
    info = client.futures_exchange_info()
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    filters = {f["filterType"] for f in btc["filters"]}
    assert {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MIN_NOTIONAL"} <= filters
    assert info["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    assert abs(info["serverTime"] - time.time() * 1000) < 5000
    coin = client.futures_coin_exchange_info()
    assert next(s for s in coin["symbols"] if s["symbol"] == "BTCUSD_PERP")["contractSize"] == 100


def test_klines_only_closed_and_binance_window_semantics(exchange, client):
    rows = client.futures_klines(symbol="BTCUSDT", interval="1m", limit=5)
    assert len(rows) == 5
    assert rows[-1][0] == START - 60_000  # the last closed candle
    assert rows[-1][6] == START - 1
    assert len(rows[0]) == len(sample("nautilus__http_futures_market_klines.json")[0])
    first = client.futures_klines(symbol="BTCUSDT", interval="1m", startTime=START - 10 * 60_000, limit=3)
    assert [r[0] for r in first] == [START - 10 * 60_000 + i * 60_000 for i in range(3)]
    ended = client.futures_klines(symbol="BTCUSDT", interval="1m", endTime=START - 5 * 60_000, limit=2)
    assert [r[0] for r in ended] == [START - 6 * 60_000, START - 5 * 60_000]
    assert client.futures_klines(symbol="BTCUSDT", interval="1m", startTime=START) == []
    five = client.futures_klines(symbol="BTCUSDT", interval="5m", limit=2)
    ones = client.futures_klines(symbol="BTCUSDT", interval="1m", startTime=five[-1][0], limit=5)
    assert five[-1][1] == ones[0][1]
    assert five[-1][4] == ones[-1][4]
    assert float(five[-1][2]) == max(float(r[2]) for r in ones)
    assert float(five[-1][3]) == min(float(r[3]) for r in ones)
    assert five[-1][0] % 300_000 == 0


def test_settings_endpoints(client):
    assert client.futures_change_leverage(symbol="BTCUSDT", leverage=10)["leverage"] == 10
    assert code_of(client.futures_change_leverage, symbol="BTCUSDT", leverage=0)[0] == -4028
    assert client.futures_change_margin_type(symbol="ETHUSDT", marginType="ISOLATED")["code"] == 200
    assert code_of(client.futures_change_margin_type, symbol="ETHUSDT", marginType="ISOLATED") == (-4046, 400)
    assert client.futures_get_position_mode()["dualSidePosition"] is False
    assert code_of(client.futures_change_position_mode, dualSidePosition="false")[0] == -4059


def test_market_order_lifecycle_and_order_errors(client):
    placed = client.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010", newClientOrderId="entry-1"
    )
    assert set(sample("nautilus__order_response.json")) <= set(placed)
    assert placed["status"] == "NEW"
    got = client.futures_get_order(symbol="BTCUSDT", origClientOrderId="entry-1")
    assert got["status"] == "FILLED"
    assert got["executedQty"] == "0.010"
    assert client.futures_get_order(symbol="BTCUSDT", orderId=placed["orderId"])["clientOrderId"] == "entry-1"
    assert (
        code_of(
            client.futures_create_order,
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.010",
            newClientOrderId="entry-1",
        )[0]
        == -4116
    )
    assert code_of(client.futures_cancel_order, symbol="BTCUSDT", orderId=placed["orderId"])[0] == -2011
    assert code_of(client.futures_get_order, symbol="BTCUSDT", origClientOrderId="nope")[0] == -2013
    assert client.futures_get_open_orders(symbol="BTCUSDT") == []
    risk = client.futures_position_information(symbol="BTCUSDT")
    assert set(sample("nautilus__position_risk.json")[0]) <= set(risk[0])
    assert risk[0]["positionAmt"] == "0.010"
    closed = client.futures_create_order(
        symbol="BTCUSDT",
        side="SELL",
        type="MARKET",
        quantity="0.010",
        reduceOnly="true",
        newOrderRespType="RESULT",
    )
    assert closed["status"] == "FILLED"
    assert client.futures_position_information(symbol="BTCUSDT") == []  # v3: only symbols with a position
    v2 = client._request_futures_api("get", "positionRisk", True, 2, data={"symbol": "BTCUSDT"})  # noqa: FBT003
    assert v2[0]["positionAmt"] == "0.000"
    assert (
        code_of(
            client.futures_create_order,
            symbol="BTCUSDT",
            side="SELL",
            type="MARKET",
            quantity="0.010",
            reduceOnly="true",
        )[0]
        == -2022
    )


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"quantity": "0.0001"}, -1111),
        ({"symbol": "ETHUSDT", "quantity": "0.001"}, -4164),
        ({"quantity": "50"}, -2019),
        ({"quantity": "abc"}, -1100),
        ({"symbol": "NOPEUSDT"}, -1121),
        ({"side": None}, -1102),
    ],
)
def test_order_rejections(client, params, code):
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"} | params
    order = {k: v for k, v in order.items() if v is not None}
    assert code_of(client.futures_create_order, **order) == (code, 400)


def test_algo_orders(client):
    client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    mark = float(client.futures_position_information(symbol="BTCUSDT")[0]["markPrice"])
    stop = client.futures_create_order(
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        stopPrice=f"{mark - 500:.1f}",
        closePosition="true",
        clientAlgoId="sl-1",
    )
    assert stop["algoStatus"] == "NEW"
    assert stop["clientAlgoId"] == "sl-1"
    tp = client.futures_create_algo_order(
        symbol="BTCUSDT",
        side="SELL",
        type="TAKE_PROFIT_MARKET",
        triggerPrice=f"{mark + 500:.1f}",
        quantity="0.010",
        reduceOnly="true",
        clientAlgoId="tp-1",
    )
    assert tp["orderType"] == "TAKE_PROFIT_MARKET"
    assert client.futures_get_order(symbol="BTCUSDT", clientAlgoId="sl-1")["algoId"] == stop["algoId"]
    assert {a["clientAlgoId"] for a in client.futures_get_open_algo_orders(symbol="BTCUSDT")} == {
        "sl-1",
        "tp-1",
    }
    assert (
        code_of(
            client.futures_create_order,
            symbol="BTCUSDT",
            side="SELL",
            type="STOP_MARKET",
            stopPrice=f"{mark + 100:.1f}",
            closePosition="true",
        )[0]
        == -2021
    )
    assert (
        code_of(
            client.futures_create_order,
            symbol="BTCUSDT",
            side="SELL",
            type="STOP_MARKET",
            stopPrice=f"{mark - 100:.1f}",
            closePosition="true",
            clientAlgoId="sl-1",
        )[0]
        == -4116
    )
    assert client.futures_cancel_algo_order(symbol="BTCUSDT", clientAlgoId="tp-1")["clientAlgoId"] == "tp-1"
    assert code_of(client.futures_cancel_algo_order, symbol="BTCUSDT", clientAlgoId="tp-1")[0] == -2011
    assert client.futures_get_algo_order(symbol="BTCUSDT", algoId=tp["algoId"])["algoStatus"] == "CANCELED"
    client.futures_cancel_all_algo_open_orders(symbol="BTCUSDT")
    assert client.futures_get_open_algo_orders(symbol="BTCUSDT") == []
    client.futures_create_order(
        symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.010", reduceOnly="true"
    )


def test_conditional_type_on_order_endpoint_is_minus_4120(client):
    call = client._request_futures_api
    assert (
        code_of(
            call,
            "post",
            "order",
            True,  # noqa: FBT003 - python-binance's positional "signed"
            data={
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "STOP_MARKET",
                "stopPrice": "90000",
                "quantity": "0.010",
            },
        )[0]
        == -4120
    )
    coin = client._request_futures_coin_api
    assert (
        code_of(
            coin,
            "post",
            "order",
            True,  # noqa: FBT003 - python-binance's positional "signed"
            data={
                "symbol": "BTCUSD_PERP",
                "side": "SELL",
                "type": "TAKE_PROFIT_MARKET",
                "stopPrice": "90000",
                "quantity": "1",
            },
        )[0]
        == -4120
    )


def test_account_balance_and_listen_key(client):
    acct = client.futures_account()
    assert set(sample("nautilus__account_info_v2.json")) <= set(acct)
    assert set(sample("nautilus__account_info_v2.json")["assets"][0]) <= set(acct["assets"][0])
    assert client.futures_account_balance()[0]["asset"] == "USDT"
    key = client.futures_stream_get_listen_key()
    assert len(key) == 64
    assert client.futures_stream_keepalive(key)["listenKey"] == key
    assert client.futures_stream_close(key) == {}
    assert code_of(client.futures_stream_keepalive, key) == (-1125, 400)
    coin_key = client.futures_coin_stream_get_listen_key()
    assert coin_key != key
    assert client.futures_coin_account_balance()[0]["asset"] in {"BTC", "ETH"}


def test_auth_errors(exchange, client):
    assert code_of(sync_client(exchange, key="wrong").futures_account) == (-2015, 401)
    assert code_of(sync_client(exchange, secret="wrong").futures_account) == (-1022, 400)
    skewed = sync_client(exchange)
    skewed.timestamp_offset = -120_000
    assert code_of(skewed.futures_account) == (-1021, 400)
    anonymous = requests.post(f"{exchange.fapi_url}/v1/listenKey", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == -2014
    missing = requests.get(f"{exchange.fapi_url}/v1/klines", params={"interval": "1m"}, timeout=5)
    assert missing.status_code == 400
    assert missing.json()["code"] == -1102
    unknown = requests.get(f"{exchange.fapi_url}/v1/nothing", timeout=5)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == -5000
    assert code_of(client.futures_klines, symbol="BTCUSDT", interval="7m")[0] == -1120


def test_weight_header_and_klines_weight(exchange):
    first = requests.get(
        f"{exchange.fapi_url}/v1/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1000},
        timeout=5,
    )
    second = requests.get(
        f"{exchange.fapi_url}/v1/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1000},
        timeout=5,
    )
    assert int(second.headers["X-MBX-USED-WEIGHT-1M"]) - int(first.headers["X-MBX-USED-WEIGHT-1M"]) == 5


def test_429_with_retry_after_past_the_weight_limit():
    with running(weight_limit=20) as ex:
        client = sync_client(ex)
        for _ in range(19):
            client.futures_ping()
        with pytest.raises(BinanceAPIException) as info:
            client.futures_klines(symbol="BTCUSDT", interval="1m", limit=1000)
        assert info.value.status_code == 429
        assert info.value.code == -1003
        assert 1 <= int(info.value.response.headers["Retry-After"]) <= 61
        assert int(info.value.response.headers["X-MBX-USED-WEIGHT-1M"]) > 20


def test_coin_m_inverse_position(exchange, client):
    def btc_wallet():
        return float(next(b for b in client.futures_coin_account_balance() if b["asset"] == "BTC")["balance"])

    before = btc_wallet()
    placed = client.futures_coin_create_order(
        symbol="BTCUSD_PERP", side="BUY", type="MARKET", quantity="2", newOrderRespType="RESULT"
    )
    assert placed["status"] == "FILLED"
    assert "cumBase" in placed
    risk = client.futures_coin_position_information(symbol="BTCUSD_PERP")
    assert risk[0]["positionAmt"] == "2"
    assert risk[0]["marginAsset"] == "BTC"
    price = float(placed["avgPrice"])
    fee = 2 * 100 / price * 0.05 / 100
    assert btc_wallet() == pytest.approx(before - fee, rel=1e-9)
    client.futures_coin_create_order(
        symbol="BTCUSD_PERP", side="SELL", type="MARKET", quantity="2", reduceOnly="true"
    )
    assert btc_wallet() == pytest.approx(before - 2 * fee, rel=1e-9)  # same price: no PnL, two fees
    assert (
        code_of(client.futures_coin_create_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="1")[
            0
        ]
        == -1121
    )
