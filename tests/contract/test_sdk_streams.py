"""Binance's official SDKs' WebSocket stream clients against the local exchange, and the raw stream frames
held against the SDKs' event models (strict types, every field present).

USDⓈ-M's SDK opens ``/market/stream``, ``/public/stream`` and ``/private/stream`` and subscribes with UUID
ids; COIN-M's opens ``/stream``. User data arrives on the listenKey's subscription.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from typing import Any

import aiohttp
import pytest

from tests.contract.clients import COINM, RAW, USDM, check_model, sdk_client
from tests.contract.conftest import signed

WS_MODELS = {
    USDM: "binance_sdk_derivatives_trading_usds_futures.websocket_streams.models",
    COINM: "binance_sdk_derivatives_trading_coin_futures.websocket_streams.models",
}
_SUBSCRIPTIONS = {
    "kline": ("kline_candlestick_streams", {"interval": "1m"}),
    "markPrice": ("mark_price_stream", {}),
    "ticker": ("individual_symbol_ticker_streams", {}),
    "miniTicker": ("individual_symbol_mini_ticker_stream", {}),
    "bookTicker": ("individual_symbol_book_ticker_streams", {}),
    "aggTrade": ("aggregate_trade_streams", {}),
    "depth5": ("partial_book_depth_streams", {"levels": 5}),
    "depth": ("diff_book_depth_streams", {}),
}
_RAW_STREAMS = {
    "@kline_1m": "KlineCandlestickStreamsResponse",
    "@markPrice@1s": "MarkPriceStreamResponse",
    "@ticker": "IndividualSymbolTickerStreamsResponse",
    "@miniTicker": "IndividualSymbolMiniTickerStreamResponse",
    "@bookTicker": "IndividualSymbolBookTickerStreamsResponse",
    "@aggTrade": "AggregateTradeStreamsResponse",
    "@depth5@100ms": "PartialBookDepthStreamsResponse",
    "@depth@100ms": "DiffBookDepthStreamsResponse",
}


def ws_model(market: str, name: str) -> Any:
    module = __import__(WS_MODELS[market], fromlist=[name])
    return getattr(module, name)


def stepping(exchange, steps: int) -> threading.Thread:
    thread = threading.Thread(target=lambda: [exchange.step() for _ in range(steps)])
    thread.start()
    return thread


@pytest.mark.parametrize("market", [USDM, COINM])
def test_sdk_stream_client_receives_every_stream_as_its_model(exchange, market, sdk_complaints):
    symbol = RAW[market]
    root = "/fapi" if market == USDM else "/dapi"
    key = signed(exchange, "POST", f"{root}/v1/listenKey")["listenKey"]

    async def main():
        streams = sdk_client(market, exchange).websocket_streams
        connection = await streams.create_connection()
        got: dict[str, list[Any]] = defaultdict(list)
        try:
            subscriptions = [
                getattr(connection, method)(symbol=symbol.lower(), **extra)
                for method, extra in _SUBSCRIPTIONS.values()
            ]
            handles = await asyncio.gather(*subscriptions, connection.user_data(key))  # each waits 0.5 s
            for name, handle in zip([*_SUBSCRIPTIONS, "user"], handles, strict=True):
                handle.on("message", lambda m, n=name: got[n].append(m))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(
                signed,
                exchange,
                "POST",
                f"{root}/v1/order",
                symbol=symbol,
                side="BUY",
                type="MARKET",
                quantity="0.002" if market == USDM else "1",
            )
            await asyncio.to_thread(lambda: [exchange.step() for _ in range(2)])
            await asyncio.sleep(0.2)
            if market == USDM:
                await asyncio.to_thread(exchange.expire_listen_key, key)
                await asyncio.sleep(0.2)
        finally:
            await connection.close_connection()
        return got

    got = asyncio.run(main())
    for name in _SUBSCRIPTIONS:
        assert got[name], f"no {name} message"
        assert all(type(m).__module__.startswith(WS_MODELS[market].rsplit(".", 1)[0]) for m in got[name]), (
            name
        )
    events = {type(m.actual_instance).__name__ for m in got["user"]}
    expected = {"OrderTradeUpdate", "AccountUpdate"} | (
        {"TradeLite", "ListenKeyExpired"} if market == USDM else set()
    )
    assert expected <= events


@pytest.mark.parametrize("market", [USDM, COINM])
def test_raw_stream_frames_match_the_event_models(exchange, market):
    symbol = RAW[market].lower()
    names = [symbol + suffix for suffix in _RAW_STREAMS]

    async def main():
        frames: dict[str, Any] = {}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                f"{exchange.ws_url}stream?streams={'/'.join(names)}", max_msg_size=1 << 24
            ) as ws,
        ):
            thread = stepping(exchange, 2)
            while len(frames) < len(names):
                msg = await asyncio.wait_for(ws.receive(), 5)
                data = json.loads(msg.data)
                frames.setdefault(data["stream"], data["data"])
            await asyncio.to_thread(thread.join)
        return frames

    frames = asyncio.run(main())
    for name, model in zip(names, _RAW_STREAMS.values(), strict=True):
        check_model(ws_model(market, model), frames[name], allow=frozenset({"e"}))
