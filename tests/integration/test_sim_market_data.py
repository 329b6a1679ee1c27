"""Market data derived from the klines: REST tickers, book, trades, funding, and the streams that carry them."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from decimal import Decimal

import pytest
import requests
import websockets

from tests.integration.sim_support import BTC, START, running

MINUTE = 60_000


@pytest.fixture(scope="module")
def exchange():
    with running(data=(BTC, ("BTCUSD_PERP", BTC)), updates_per_candle=3) as ex:
        yield ex


def get(exchange, path: str, **params):
    answer = requests.get(f"{exchange.rest_url}{path}", params=params, timeout=5)
    return answer.status_code, answer.json()


def test_depth_and_book_ticker_are_one_book(exchange):
    status, book = get(exchange, "/fapi/v1/depth", symbol="BTCUSDT", limit=5)
    assert status == 200
    assert (len(book["bids"]), len(book["asks"])) == (5, 5)
    bid, ask = Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])
    assert ask - bid == Decimal("0.1")
    assert [Decimal(b[0]) for b in book["bids"]] == [bid - Decimal("0.1") * i for i in range(5)]
    _, top = get(exchange, "/fapi/v1/ticker/bookTicker", symbol="BTCUSDT")
    assert (top["bidPrice"], top["askPrice"]) == (book["bids"][0][0], book["asks"][0][0])
    _, coin = get(exchange, "/dapi/v1/depth", symbol="BTCUSD_PERP", limit=1000)
    assert (coin["symbol"], coin["pair"], len(coin["bids"])) == ("BTCUSD_PERP", "BTCUSD", 1000)
    assert get(exchange, "/fapi/v1/depth", symbol="BTCUSDT", limit=7) == (
        400,
        {"code": -4021, "msg": "'7' is not valid depth limit."},
    )


def test_tickers_premium_index_and_funding(exchange):
    _, ticker = get(exchange, "/fapi/v1/ticker/24hr", symbol="BTCUSDT")
    _, rows = get(exchange, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1440)
    assert ticker["openPrice"] == rows[0][1]
    assert ticker["lastPrice"] == rows[-1][4]
    assert ticker["highPrice"] == max(rows, key=lambda r: float(r[2]))[2]
    assert ticker["count"] == sum(r[8] for r in rows)
    assert ticker["lastId"] - ticker["firstId"] + 1 == ticker["count"]
    assert float(ticker["volume"]) == pytest.approx(sum(float(r[5]) for r in rows))
    assert isinstance(get(exchange, "/fapi/v1/ticker/24hr")[1], list)
    _, coin = get(exchange, "/dapi/v1/ticker/24hr", symbol="BTCUSD_PERP")
    assert isinstance(coin, list)
    assert {"pair", "baseVolume"} <= set(coin[0])
    assert get(exchange, "/fapi/v2/ticker/price", symbol="BTCUSDT")[1]["price"] == ticker["lastPrice"]
    assert get(exchange, "/dapi/v1/ticker/price", pair="BTCUSD")[1][0]["ps"] == "BTCUSD"
    _, premium = get(exchange, "/fapi/v1/premiumIndex", symbol="BTCUSDT")
    assert premium["markPrice"] == premium["indexPrice"] == ticker["lastPrice"]
    assert premium["nextFundingTime"] % (8 * 3_600_000) == 0
    _, funding = get(exchange, "/fapi/v1/fundingRate", symbol="BTCUSDT", limit=3)
    assert [r["fundingTime"] % (8 * 3_600_000) for r in funding] == [0]  # 10 h of history: one funding time
    assert funding[-1]["fundingTime"] <= START
    assert {r["fundingRate"] for r in funding} == {"0.00000000"}
    assert get(exchange, "/dapi/v1/fundingRate")[1]["code"] == -1102


def test_agg_trades_page_through_the_tape(exchange):
    _, recent = get(exchange, "/fapi/v1/aggTrades", symbol="BTCUSDT", limit=8)
    assert [t["a"] for t in recent] == list(range(recent[0]["a"], recent[0]["a"] + 8))
    assert recent[-1]["T"] == START - MINUTE + 45_000  # the last closed candle's close trade
    _, page = get(exchange, "/fapi/v1/aggTrades", symbol="BTCUSDT", fromId=recent[2]["a"], limit=3)
    assert page == recent[2:5]
    _, minute = get(exchange, "/fapi/v1/aggTrades", symbol="BTCUSDT", startTime=START - MINUTE, endTime=START)
    _, [row] = get(exchange, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1)
    assert next(t["p"] for t in minute) == row[1]
    assert sum(Decimal(t["q"]) for t in minute) == Decimal(row[5])
    assert (
        get(exchange, "/fapi/v1/aggTrades", symbol="BTCUSDT", startTime=0, endTime=7_200_000)[1]["code"]
        == -1127
    )


def test_continuous_and_mark_price_klines_follow_the_klines(exchange):
    _, rows = get(exchange, "/fapi/v1/klines", symbol="BTCUSDT", interval="5m", limit=3)
    _, cont = get(
        exchange,
        "/fapi/v1/continuousKlines",
        pair="BTCUSDT",
        contractType="PERPETUAL",
        interval="5m",
        limit=3,
    )
    assert cont == rows
    _, coin = get(
        exchange, "/dapi/v1/continuousKlines", pair="BTCUSD", contractType="PERPETUAL", interval="1m", limit=2
    )
    assert len(coin) == 2
    assert (
        get(
            exchange, "/fapi/v1/continuousKlines", pair="BTCUSDT", contractType="NEXT_QUARTER", interval="1m"
        )[1]
        == []
    )
    assert get(exchange, "/fapi/v1/continuousKlines", pair="BTCUSDT", contractType="X", interval="1m")[1] == {
        "code": -4104,
        "msg": "Invalid contract type",
    }
    _, mark = get(exchange, "/fapi/v1/markPriceKlines", symbol="BTCUSDT", interval="5m", limit=3)
    assert [m[:5] for m in mark] == [r[:5] for r in rows]
    assert {m[5] for m in mark} == {"0"}


STREAMS = [
    "btcusdt@aggTrade",
    "btcusdt@trade",
    "btcusdt@markPrice@1s",
    "btcusdt@ticker",
    "btcusdt@miniTicker",
    "btcusdt@bookTicker",
    "btcusdt@depth5@100ms",
    "btcusdt@depth@100ms",
    "!miniTicker@arr",
    "!markPrice@arr",
    "btcusd_perp@ticker",
]


def test_every_derived_stream_speaks_and_the_diff_stream_keeps_its_sequence(exchange):
    async def main():
        url = f"{exchange.ws_url}stream?streams={'/'.join(STREAMS)}"
        frames = defaultdict(list)
        async with websockets.connect(url, max_size=1 << 24) as ws:
            await asyncio.sleep(0.1)
            _, snapshot = await asyncio.to_thread(
                get, exchange, "/fapi/v1/depth", symbol="BTCUSDT", limit=1000
            )
            await asyncio.to_thread(exchange.step, 3)
            while True:
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    break
                frames[msg["stream"]].append(msg["data"])
        return snapshot, frames

    snapshot, frames = asyncio.run(main())
    assert set(frames) == set(STREAMS)
    trades = frames["btcusdt@aggTrade"]
    assert len(trades) == 12  # four per candle
    assert [t["a"] for t in trades] == list(range(trades[0]["a"], trades[0]["a"] + 12))
    diffs = frames["btcusdt@depth@100ms"]
    assert diffs[0]["pu"] == snapshot["lastUpdateId"]
    assert all(b["pu"] == a["u"] and b["U"] == a["u"] + 1 for a, b in itertools.pairwise(diffs))
    book = {"b": dict(snapshot["bids"]), "a": dict(snapshot["asks"])}
    for diff in diffs:
        for side in ("b", "a"):
            for price, qty in diff[side]:
                if qty == "0":
                    book[side].pop(price, None)
                else:
                    book[side][price] = qty
    best_bid = max(book["b"], key=Decimal)
    assert best_bid == frames["btcusdt@depth5@100ms"][-1]["b"][0][0]
    assert min(book["a"], key=Decimal) == frames["btcusdt@bookTicker"][-1]["a"]
    assert isinstance(frames["!miniTicker@arr"][0], list)
    assert {row["s"] for row in frames["!markPrice@arr"][0]} == {"BTCUSDT", "BTCUSD_PERP"}
    assert frames["btcusd_perp@ticker"][0]["ps"] == "BTCUSD"
