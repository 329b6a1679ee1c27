"""Fault injection of the local exchange, from Python and over the admin endpoint, seen by python-binance."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from functools import partial

import pytest
import requests
import websockets
from binance.exceptions import BinanceAPIException

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.errors import TransientError, UnknownStatus
from nancemakina.actors.exchange.parse import MalformedPayload
from nancemakina.actors.exchange.types import OrderStatus, Side
from nancemakina.actors.sim.faults import UNKNOWN_STREAM
from tests.integration.gateway_support import make_gateway
from tests.integration.sim_support import (
    WAIT_S,
    async_client,
    release_sockets,
    running,
    socket_manager,
    subscribed,
    sync_client,
    user_connected,
)
from tests.waiting import wait_until


@pytest.fixture
def exchange():
    with running() as ex:
        yield ex


def raises(call, **kwargs) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as info:
        call(**kwargs)
    return info.value


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("500", 500, -1000), ("502", 502, -1001), ("503", 503, -1001), ("504", 504, -1001)],
)
def test_next_requests_answer_5xx(exchange, kind, status, code):
    client = sync_client(exchange)
    exchange.fail_next(kind, 2, path="/fapi/v1/time")
    for _ in range(2):
        err = raises(client.futures_time)
        assert (err.status_code, err.code) == (status, code)
    assert client.futures_time()["serverTime"] > 0
    assert client.response.headers["X-SIM-Clock-Ms"] == str(exchange.clock_ms)


@pytest.mark.parametrize("kind", ["429", "418"])
def test_429_and_418_carry_retry_after(exchange, kind):
    client = sync_client(exchange)
    exchange.fail_next(kind, 1, retry_after_s=7)
    err = raises(client.futures_account)
    assert err.status_code == int(kind)
    assert err.code == -1003
    assert err.response.headers["Retry-After"] == "7"
    assert client.futures_account()["assets"]


def test_503_unknown_executes_the_order_and_loses_the_answer(exchange):
    client = sync_client(exchange)
    exchange.fail_next("unknown", 1, path="/fapi/v1/order", method="POST")
    err = raises(
        client.futures_create_order,
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="0.010",
        newClientOrderId="maybe-1",
    )
    assert (err.status_code, err.code) == (503, -1007)
    assert "execution status unknown" in err.message
    found = client.futures_get_order(symbol="BTCUSDT", origClientOrderId="maybe-1")
    assert found["status"] == "FILLED"
    assert client.futures_position_information(symbol="BTCUSDT")[0]["positionAmt"] == "0.010"


def test_reject_next_order_with_a_chosen_code(exchange):
    client = sync_client(exchange)
    exchange.reject_next_order(-2019)
    err = raises(client.futures_create_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    assert (err.status_code, err.code, err.message) == (400, -2019, "Margin is insufficient.")
    requests.post(
        f"{exchange.admin_url}/faults/reject-order", json={"code": -1001, "msg": "Internal error."}, timeout=5
    )
    err = raises(
        client.futures_create_order,
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        stopPrice="50000",
        closePosition="true",
    )
    assert err.code == -1001
    assert (
        client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")["status"]
        == "NEW"
    )


def test_latency_delays_matching_answers(exchange):
    client = sync_client(exchange)
    exchange.set_latency(0.3, path="/fapi/v1/time")
    started = time.perf_counter()
    client.futures_time()
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    client.futures_ping()
    assert time.perf_counter() - started < 0.3
    requests.post(f"{exchange.admin_url}/faults/latency", json={"seconds": 0}, timeout=5)


def test_admin_http_faults_and_status(exchange):
    base = exchange.admin_url
    requests.post(f"{base}/faults/http", json={"kind": "503", "count": 1, "path": "/fapi/v1/ping"}, timeout=5)
    assert requests.get(f"{exchange.fapi_url}/v1/ping", timeout=5).status_code == 503
    assert requests.get(f"{exchange.fapi_url}/v1/ping", timeout=5).status_code == 200
    requests.post(f"{base}/step", params={"count": 2}, timeout=5)
    status = requests.get(f"{base}/status", timeout=5).json()
    assert status["processed"] == 2
    assert status["stats"]["faults_fired"] == {"503": 1}
    assert requests.post(f"{base}/faults/http", json={"kind": "999"}, timeout=5).status_code == 400


def test_drop_all_websockets_and_python_binance_reconnects(exchange):
    async def main():
        client = await async_client(exchange)
        bsm = socket_manager(client, exchange)
        async with bsm.futures_multiplex_socket(["btcusdt@kline_1m"]) as sock:
            await subscribed(exchange, "btcusdt@kline_1m")
            dropped = await asyncio.to_thread(exchange.drop_connections)
            error = await asyncio.wait_for(sock.recv(), 5)
            await subscribed(exchange, "btcusdt@kline_1m")  # reconnected (the drop unsubscribed at once)
            await asyncio.to_thread(exchange.step, 1)
            after = await asyncio.wait_for(sock.recv(), 5)
            while after.get("e") == "error":
                after = await asyncio.wait_for(sock.recv(), 5)
            release_sockets(exchange, sock)
        await client.close_connection()
        return dropped, error, after

    dropped, error, after = asyncio.run(main())
    assert dropped == 1
    assert error["e"] == "error"
    assert after["data"]["e"] == "kline"


def test_stall_silences_a_stream_for_n_seconds(exchange):
    async def main():
        async with websockets.connect(
            f"{exchange.ws_url}market/stream?streams=btcusdt@kline_1m/btcusdt@kline_5m"
        ) as ws:
            await asyncio.to_thread(exchange.stall_stream, 0.5, "btcusdt@kline_1m")
            await asyncio.to_thread(exchange.step, 1)
            during = [json.loads(await asyncio.wait_for(ws.recv(), 2))["stream"] for _ in range(4)]
            await asyncio.sleep(0.6)  # deliberately let time pass: the fault's own 0.5 s is under test
            await asyncio.to_thread(exchange.step, 1)
            after = json.loads(await asyncio.wait_for(ws.recv(), 2))["stream"]
            return during, after

    during, after = asyncio.run(main())
    assert during == ["btcusdt@kline_5m"] * 4
    assert after == "btcusdt@kline_1m"
    assert exchange.status()["clients"]["ws_dropped_by_stall"] == 4


def test_expire_listen_key_pushes_event_and_keepalive_fails(exchange):
    client = sync_client(exchange)

    async def main():
        aclient = await async_client(exchange)
        key = await aclient.futures_stream_get_listen_key()
        async with websockets.connect(f"{exchange.ws_url}private/ws?listenKey={key}") as ws:
            await user_connected(exchange)
            expired = await asyncio.to_thread(exchange.expire_listen_key, key)
            event = json.loads(await asyncio.wait_for(ws.recv(), 2))
        await aclient.close_connection()
        return key, expired, event

    key, expired, event = asyncio.run(main())
    assert expired == [key]
    assert event["e"] == "listenKeyExpired"
    assert event["listenKey"] == key
    err = raises(client.futures_stream_keepalive, listenKey=key)
    assert (err.status_code, err.code) == (400, -1125)
    assert client.futures_stream_get_listen_key() != key


def test_expire_listen_key_over_admin_http(exchange):
    client = sync_client(exchange)
    key = client.futures_stream_get_listen_key()
    assert requests.post(f"{exchange.admin_url}/faults/expire-listen-key", json={}, timeout=5).json() == {
        "expired": [key]
    }
    assert raises(client.futures_stream_keepalive, listenKey=key).code == -1125


def test_stall_and_drop_over_admin_http(exchange):
    assert requests.post(f"{exchange.admin_url}/faults/stall", json={"seconds": 0.1}, timeout=5).json() == {}
    assert requests.post(f"{exchange.admin_url}/faults/drop-connections", timeout=5).json() == {"dropped": 0}


def test_internal_error_is_minus_1000_without_traceback(exchange):
    exchange.call(_break_book(exchange))
    body = requests.get(
        f"{exchange.fapi_url}/v2/account", headers={"X-MBX-APIKEY": exchange.api_key}, timeout=5
    )
    assert body.status_code == 400
    assert body.json()["code"] == -1102
    client = sync_client(exchange)
    err = raises(client.futures_account)
    assert (err.status_code, err.code) == (500, -1000)
    assert "Traceback" not in err.response.text


async def _break_book(exchange):
    exchange.engine.wallet = None  # type: ignore[assignment]


# ---- what real venues and networks do besides 5xx -----------------------------------------------------------


def new_order(client, cid: str) -> dict:
    return client.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010", newClientOrderId=cid
    )


def test_orders_cost_no_weight_and_count_against_the_order_rate():
    with running(order_limit_10s=3) as ex:
        client = sync_client(ex)
        client.futures_ping()
        used = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
        new_order(client, "o-1")
        headers = client.response.headers
        assert int(headers["X-MBX-USED-WEIGHT-1M"]) == used
        assert headers["X-MBX-ORDER-COUNT-10S"] == headers["X-MBX-ORDER-COUNT-1M"] == "1"
        new_order(client, "o-2")
        new_order(client, "o-3")
        err = raises(new_order, client=client, cid="o-4")
        assert (err.status_code, err.code) == (429, -1015)
        assert "orders per TEN_SECONDS" in err.message
        assert 1 <= int(err.response.headers["Retry-After"]) <= 11
        client.futures_ping()  # reads are not held by the order rate


@pytest.mark.parametrize(
    ("kind", "outcome", "executed"),
    [
        ("html", TransientError, False),  # a CDN's 502 page: not Binance's JSON, not executed
        ("-1021", None, True),  # refused; the gateway resyncs its clock and the retry goes through
        ("truncated", UnknownStatus, True),
        ("reset", UnknownStatus, True),
        ("empty", MalformedPayload, True),
    ],
)
def test_damaged_answers_as_the_gateway_sees_them(exchange, kind, outcome, executed):
    gateway = make_gateway(exchange)
    exchange.fail_next(kind, 1, path="/fapi/v1/order", method="POST")
    place = partial(
        gateway.market_order, "BTCUSDT", ContractType.USDT_M, Side.BUY, Decimal("0.010"), f"dmg-{kind}"
    )
    if outcome is None:
        assert place().status is OrderStatus.FILLED
    else:
        with pytest.raises(outcome):
            place()
    found = gateway.get_order("BTCUSDT", ContractType.USDT_M, client_order_id=f"dmg-{kind}")
    assert (found is not None) == executed
    placed = gateway.market_order("BTCUSDT", ContractType.USDT_M, Side.BUY, Decimal("0.010"), f"after-{kind}")
    assert placed.status is OrderStatus.FILLED  # the connection pool recovers


def test_a_slow_answer_outlasts_the_clients_timeout_but_the_order_executed(exchange):
    client = sync_client(exchange)
    exchange.fail_next("slow", 1, seconds=1.5, path="/fapi/v1/order", method="POST")
    with pytest.raises(requests.Timeout):
        client.futures_create_order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010", newClientOrderId="slow-1",
            requests_params={"timeout": 0.5},
        )  # fmt: skip
    found = client.futures_get_order(symbol="BTCUSDT", origClientOrderId="slow-1")
    assert found["status"] == "FILLED"


def test_clock_skew_refuses_old_stamps_until_the_client_resyncs(exchange):
    client = sync_client(exchange)
    exchange.skew_clock(30_000)
    err = raises(client.futures_account)
    assert err.code == -1021
    server = client.get_server_time()["serverTime"]
    assert server - int(time.time() * 1000) > 25_000
    client.timestamp_offset = server - int(time.time() * 1000)
    assert client.futures_account()["assets"]
    exchange.skew_clock(0)


def test_a_stop_the_exchange_accepted_is_ended_by_it(exchange):
    client = sync_client(exchange)
    new_order(client, "long-1")
    exchange.expire_next_stops(1, after_s=0.2, status="EXPIRED")
    mark = exchange.state()["marks"]["BTCUSDT"]
    placed = client.futures_create_algo_order(
        algoType="CONDITIONAL", symbol="BTCUSDT", side="SELL", type="STOP_MARKET",
        triggerPrice=f"{mark * 0.9:.1f}", closePosition="true", clientAlgoId="stop-1",
    )  # fmt: skip
    assert placed["algoStatus"] == "NEW"
    wait_until(lambda: not exchange.state()["openAlgoOrders"], WAIT_S, "the exchange to end the stop")
    report = exchange.exposure()
    assert "BTCUSDT" in report["open"], "a position whose stop ended is unprotected"
    assert [e["ended"] for e in report["episodes"]] == ["stop"]  # the stop first protected it
    assert exchange.status()["stats"]["faults_fired"]["stop-expiry"] == 1


async def _frames(exchange, kind: str, target: str) -> list[str]:
    uri = exchange.ws_url + "market/stream?streams=btcusdt@kline_1m"
    async with websockets.connect(uri) as ws:
        await subscribed(exchange, "btcusdt@kline_1m")
        exchange.damage_frames(kind, 1, target=target)
        exchange.step(1)
        return [await asyncio.wait_for(ws.recv(), WAIT_S) for _ in range(3)]


@pytest.mark.parametrize("kind", ["malformed", "truncated", "unknown-stream"])
def test_damaged_websocket_frames(exchange, kind):
    frames = asyncio.run(_frames(exchange, kind, "market"))
    parsed = []
    for frame in frames:
        try:
            parsed.append(json.loads(frame))
        except ValueError:
            parsed.append(None)
    if kind in {"malformed", "truncated"}:  # a truncated frame's content is lost
        assert parsed[0] is None
        assert parsed[1] is not None
    else:
        assert parsed[0]["stream"] == UNKNOWN_STREAM
        assert parsed[1]["stream"] == "btcusdt@kline_1m"
    assert exchange.status()["stats"]["faults_fired"][f"ws-{kind}"] == 1
