"""The local exchange's WebSocket paths and request frames as ccxt.pro and Binance's SDKs use them."""

from __future__ import annotations

import asyncio
import json

import pytest
import requests
import websockets

from tests.integration.sim_support import BTC, running, sync_client

UUID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


@pytest.fixture(scope="module")
def exchange():
    with running(data=(BTC, ("BTCUSD_PERP", BTC))) as ex:
        yield ex


async def _recv(ws, seconds: float = 5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), seconds))


async def _until(ws, predicate, seconds: float = 5.0):
    async def loop():
        while True:
            msg = await _recv(ws, seconds)
            if predicate(msg):
                return msg

    return await asyncio.wait_for(loop(), seconds)


def _trade(exchange, contract: str = "USDT_M") -> None:
    client = sync_client(exchange)
    if contract == "USDT_M":
        client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
        client.futures_create_order(
            symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.002", reduceOnly="true"
        )
    else:
        client.futures_coin_create_order(symbol="BTCUSD_PERP", side="BUY", type="MARKET", quantity="1")


def test_market_ws_index_path_then_subscribe_streams_klines(exchange):
    async def main():
        async with websockets.connect(f"{exchange.ws_url}market/ws/0") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 1}))
            assert await _recv(ws) == {"result": None, "id": 1}
            await asyncio.to_thread(exchange.step)
            return await _until(ws, lambda m: m.get("e") == "kline")

    event = asyncio.run(main())
    assert event["s"] == "BTCUSDT"


def test_ids_are_echoed_verbatim_and_bad_ids_refused(exchange):
    async def main():
        answers = []
        async with websockets.connect(f"{exchange.ws_url}market/stream") as ws:
            for rid in (UUID, 7, None, True, -1, 1.5):
                await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": rid}))
                answers.append(await _recv(ws))
            await ws.send(json.dumps({"method": "FOO", "id": 3}))
            answers.append(await _recv(ws))
            await ws.send("{not json")
            answers.append(await _recv(ws))
        return answers

    uuid, seven, *bad, unknown, garbage = asyncio.run(main())
    assert uuid == {"result": None, "id": UUID}
    assert seven == {"result": None, "id": 7}
    for answer in bad:
        assert answer["error"] == {
            "code": 2,
            "msg": "Invalid request: request ID must be an unsigned integer",
        }
    assert unknown["error"]["code"] == 2
    assert "unknown variant" in unknown["error"]["msg"]
    assert garbage["error"]["code"] == 3


def test_properties_list_and_multi_segment_paths(exchange):
    async def main():
        async with websockets.connect(f"{exchange.ws_url}public/ws/btcusdt@depth/btcusdt@bookTicker") as ws:
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            listed = await _recv(ws)
            await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 2}))
            before = await _recv(ws)
            await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 3}))
            await _recv(ws)
            await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", 1], "id": 4}))
            wrong = await _recv(ws)
            await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["colour"], "id": 5}))
            unknown = await _recv(ws)
            await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 6}))
            after = await _recv(ws)
        return listed, before, wrong, unknown, after

    listed, before, wrong, unknown, after = asyncio.run(main())
    assert listed == {"result": ["btcusdt@depth", "btcusdt@bookTicker"], "id": 1}
    assert before == {"result": False, "id": 2}
    assert wrong["error"] == {"code": 1, "msg": "Invalid value type: expected Boolean"}
    assert unknown["error"] == {"code": 0, "msg": "Unknown property"}
    assert after == {"result": True, "id": 6}


def test_private_stream_subscribe_with_a_listen_key_delivers_combined_user_events(exchange):
    key = sync_client(exchange).futures_stream_get_listen_key()

    async def main():
        async with websockets.connect(f"{exchange.ws_url}private/stream") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [key], "id": UUID}))
            assert await _recv(ws) == {"result": None, "id": UUID}
            await asyncio.to_thread(_trade, exchange)
            return await _until(ws, lambda m: m["data"].get("e") == "ORDER_TRADE_UPDATE")

    frame = asyncio.run(main())
    assert frame["stream"] == key
    assert frame["data"]["o"]["s"] == "BTCUSDT"


def test_events_filter_bogus_keys_and_expiry_keep_the_socket_open(exchange):
    key = sync_client(exchange).futures_stream_get_listen_key()

    async def main():
        url = f"{exchange.ws_url}private/ws?listenKey={key}&events=ACCOUNT_UPDATE"
        async with websockets.connect(url) as ws, websockets.connect(f"{exchange.ws_url}ws/notakey") as bogus:
            await asyncio.to_thread(_trade, exchange)
            first = await _recv(ws)
            await asyncio.to_thread(exchange.expire_listen_key, key)
            expired = await _until(ws, lambda m: m.get("e") == "listenKeyExpired")
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
            still_open = await _recv(ws)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(bogus.recv(), 0.3)
        return first, expired, still_open

    first, expired, still_open = asyncio.run(main())
    assert first["e"] == "ACCOUNT_UPDATE"
    assert expired["listenKey"] == key
    assert still_open == {"result": [], "id": 9}


def test_coin_m_user_socket_by_path_and_status_counts(exchange):
    key = requests.post(
        f"{exchange.dapi_url}/v1/listenKey", headers={"X-MBX-APIKEY": exchange.api_key}, timeout=5
    ).json()["listenKey"]

    async def main():
        async with websockets.connect(f"{exchange.ws_url}ws/{key}") as ws:
            clients = (await asyncio.to_thread(exchange.status))["clients"]
            await asyncio.to_thread(_trade, exchange, "COIN_M")
            event = await _until(ws, lambda m: m.get("e") == "ORDER_TRADE_UPDATE")
        return clients, event

    clients, event = asyncio.run(main())
    assert clients["user_clients"] == 1
    assert event["o"]["s"] == "BTCUSD_PERP"
