"""Local exchange WebSocket streams driven by python-binance's AsyncClient and BinanceSocketManager."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import websockets
from binance import AsyncClient
from binance.enums import FuturesType
from binance.ws.streams import BinanceSocketManager

from nancemakina.actors.backtest.kline_files import load_klines
from nancemakina.actors.domain.fills import exit_on_candle, market_fill_price
from nancemakina.actors.domain.model import Direction
from tests.integration.sim_support import (
    BTC,
    ETH,
    ROOT,
    START,
    async_client,
    release_sockets,
    running,
    socket_manager,
    subscribed,
    user_connected,
)
from tests.samples import sample
from tests.waiting import wait_until

KLINE_KEYS = {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"}


async def _until(sock, predicate, limit_s=5.0):
    async def loop():
        while True:
            msg = await sock.recv()
            if predicate(msg):
                return msg

    return await asyncio.wait_for(loop(), limit_s)


async def _drain(ws) -> None:
    while True:
        await asyncio.wait_for(ws.recv(), 5)


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
    except requests.ConnectionError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_replaying_all_btc_at_max_delivers_every_closed_kline_once_in_order():
    """Through the CLI in a child process, so the client does not share the exchange's GIL."""
    series = load_klines(BTC)
    port = _free_port()
    cmd = [
        str(Path(sys.executable).with_name("nancemakina")),
        "exchange",
        "--data",
        str(BTC),
        "--speed",
        "max",
        "--port",
        str(port),
        "--updates-per-candle",
        "0",
    ]
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/sim/v1/status"), 10, "the exchange to listen")
        urls = {"API_URL": f"http://127.0.0.1:{port}/api", "FUTURES_URL": f"http://127.0.0.1:{port}/fapi"}

        async def main():
            client = await type("C", (AsyncClient,), urls).create()
            bsm = type("B", (BinanceSocketManager,), {"FSTREAM_URL": f"ws://127.0.0.1:{port}/"})(
                client, max_queue_size=1_000_000
            )
            closed = []
            async with bsm.futures_multiplex_socket(["btcusdt@kline_1m"]) as sock, asyncio.timeout(60):
                while len(closed) < len(series.open_time):
                    msg = await sock.recv()
                    assert msg["stream"] == "btcusdt@kline_1m"
                    k = msg["data"]["k"]
                    if k["x"]:
                        closed.append(
                            (
                                k["t"],
                                float(k["o"]),
                                float(k["h"]),
                                float(k["l"]),
                                float(k["c"]),
                                float(k["v"]),
                            )
                        )
                # Leaving the library's socket waits for a message; a drop ends it at once. No reconnect
                # first: one racing the exit can leave python-binance's __aexit__ waiting forever.
                sock.MAX_RECONNECTS = 0
                await asyncio.to_thread(
                    requests.post, f"http://127.0.0.1:{port}/sim/v1/faults/drop-connections", timeout=5
                )
            await client.close_connection()
            return closed

        closed = asyncio.run(main())
        status = requests.get(f"http://127.0.0.1:{port}/sim/v1/status", timeout=5).json()
        assert status["done"] is True
        assert status["remaining"] == 0
    finally:
        child.terminate()
        child.wait(10)
    got = np.array(closed)
    assert np.array_equal(got[:, 0].astype(np.int64), series.open_time)
    for col, values in enumerate(
        (series.open, series.high, series.low, series.close, series.volume), start=1
    ):
        assert np.array_equal(got[:, col], values)


def test_kline_events_unclosed_then_closed_in_binance_format_for_two_symbols_and_5m():
    with running(data=(BTC, ETH)) as ex:

        async def main():
            client = await async_client(ex)
            bsm = socket_manager(client, ex)
            streams = ["btcusdt@kline_1m", "ethusdt@kline_1m", "btcusdt@kline_5m"]
            async with bsm.futures_multiplex_socket(streams) as sock:
                await subscribed(ex, *streams)
                await asyncio.to_thread(ex.step, 5)
                events = []
                while len([e for e in events if e["data"]["k"]["x"]]) < 11:
                    events.append(await asyncio.wait_for(sock.recv(), 5))
                release_sockets(ex, sock)
            await client.close_connection()
            return events

        events = asyncio.run(main())
    btc = [e["data"] for e in events if e["stream"] == "btcusdt@kline_1m"]
    assert [e["k"]["x"] for e in btc[:4]] == [False, False, False, True]
    assert set(btc[3]) == {"e", "E", "s", "k"}
    assert set(btc[3]["k"]) == KLINE_KEYS
    assert btc[3]["k"]["t"] == START
    assert btc[3]["k"]["T"] == START + 59_999
    assert btc[0]["k"]["c"] == btc[0]["k"]["o"]
    five = [e["data"]["k"] for e in events if e["stream"] == "btcusdt@kline_5m" and e["data"]["k"]["x"]]
    assert len(five) == 1
    assert five[0]["i"] == "5m"
    assert (five[0]["T"] + 1) % 300_000 == 0
    assert any(e["stream"] == "ethusdt@kline_1m" and e["data"]["k"]["x"] for e in events)


def test_subscribe_unsubscribe_list_and_limits():
    with running(max_frames_per_s=10, stream_cap=3) as ex:

        async def main():
            async with websockets.connect(f"{ex.ws_url}market/stream?streams=btcusdt@kline_1m") as ws:
                await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@kline_5m"], "id": 1}))
                assert json.loads(await ws.recv()) == {"result": None, "id": 1}
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
                assert json.loads(await ws.recv()) == {
                    "result": ["btcusdt@kline_1m", "btcusdt@kline_5m"],
                    "id": 2,
                }
                await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 3}))
                assert json.loads(await ws.recv()) == {"result": None, "id": 3}
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
                assert json.loads(await ws.recv())["result"] == ["btcusdt@kline_5m"]
                await ws.send(
                    json.dumps(
                        {"method": "SUBSCRIBE", "params": ["a@kline_1m", "b@kline_1m", "c@kline_1m"], "id": 5}
                    )
                )
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd.code == 1008
            async with websockets.connect(f"{ex.ws_url}ws") as ws:
                for i in range(30):
                    await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                with pytest.raises(websockets.ConnectionClosed):
                    await _drain(ws)

        asyncio.run(main())
        assert ex.status()["clients"]["ws_kicked"] == 2


def test_user_stream_orders_algo_trigger_equals_backtester_exit():
    series = load_klines(BTC)
    i0 = int(np.searchsorted(series.open_time, START))
    entry_ref = float(series.close[i0 - 1])
    with running(slippage_pct=0.01) as ex:

        async def main():
            client = await async_client(ex)
            bsm = socket_manager(client, ex)
            async with bsm.futures_user_socket() as user:
                await user_connected(ex)
                await client.futures_create_order(
                    symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010", newClientOrderId="e1"
                )
                fill = await _until(
                    user, lambda m: m["e"] == "ORDER_TRADE_UPDATE" and m["o"]["X"] == "FILLED"
                )
                account = await _until(user, lambda m: m["e"] == "ACCOUNT_UPDATE")
                entry = float(fill["o"]["ap"])
                stop = round(entry * 0.997, 1)
                await client.futures_create_order(
                    symbol="BTCUSDT",
                    side="SELL",
                    type="STOP_MARKET",
                    stopPrice=f"{stop:.1f}",
                    closePosition="true",
                    clientAlgoId="sl",
                )
                take = round(entry * 1.003, 1)
                await client.futures_create_order(
                    symbol="BTCUSDT",
                    side="SELL",
                    type="TAKE_PROFIT_MARKET",
                    stopPrice=f"{take:.1f}",
                    closePosition="true",
                    clientAlgoId="tp",
                )
                new = await _until(user, lambda m: m["e"] == "ALGO_UPDATE" and m["o"]["caid"] == "tp")
                assert new["o"]["X"] == "NEW"
                steps = 0
                while len(await client.futures_get_open_algo_orders(symbol="BTCUSDT")) == 2:
                    await asyncio.to_thread(ex.step, 1)
                    steps += 1
                    assert steps < 2000
                exit_fill = await _until(
                    user, lambda m: m["e"] == "ORDER_TRADE_UPDATE" and m["o"]["X"] == "FILLED"
                )
                finished = await _until(user, lambda m: m["e"] == "ALGO_UPDATE" and m["o"]["X"] == "FINISHED")
                release_sockets(ex, user)
            await client.close_connection()
            return fill, account, stop, take, steps, exit_fill, finished

        fill, account, stop, take, steps, exit_fill, finished = asyncio.run(main())
    assert float(fill["o"]["ap"]) == market_fill_price(
        entry_ref, buy=True, slippage_pct=0.01, tick=ex.engine.specs["BTCUSDT"].tick_size
    )
    assert account["a"]["P"][0]["pa"] == "0.010"
    assert set(sample("nautilus__order_update_trade.json")["o"]) <= set(fill["o"])
    assert set(sample("nautilus__account_update.json")["a"]["P"][0]) <= set(account["a"]["P"][0])
    assert set(sample("nautilus__account_update.json")["a"]["B"][0]) <= set(account["a"]["B"][0])
    expected = None
    for i in range(i0, i0 + steps):
        expected = exit_on_candle(
            direction=Direction.LONG,
            stop=stop,
            take_profit=take,
            open_=float(series.open[i]),
            high=float(series.high[i]),
            low=float(series.low[i]),
            close=float(series.close[i]),
        )
        if expected:
            assert i == i0 + steps - 1
            break
    assert expected is not None
    reason, level = expected
    assert finished["o"]["caid"] == ("sl" if reason.value == "stop_loss" else "tp")
    assert float(exit_fill["o"]["ap"]) == market_fill_price(
        level, buy=False, slippage_pct=0.01, tick=ex.engine.specs["BTCUSDT"].tick_size
    )
    assert exit_fill["o"]["ot"] in {"STOP_MARKET", "TAKE_PROFIT_MARKET"}
    assert float(exit_fill["o"]["rp"]) != 0


def test_lock_step_pacer_over_http_holds_the_clock_until_acked():
    with running(pacer_timeout_s=5.0, updates_per_candle=1) as ex:
        pacer = requests.post(f"{ex.admin_url}/pacer", timeout=5).json()["pacerId"]

        async def main():
            client = await async_client(ex)
            bsm = socket_manager(client, ex)
            seen = []
            async with bsm.futures_multiplex_socket(["btcusdt@kline_1m"]) as sock:
                await subscribed(ex, "btcusdt@kline_1m")
                await asyncio.to_thread(ex.resume)
                for _ in range(5):
                    k = (await _until(sock, lambda m: m["data"]["k"]["x"]))["data"]["k"]
                    seen.append(k["t"])
                    # Deliberately let time pass: the clock must not move without our ack.
                    await asyncio.sleep(0.05)
                    clock = await asyncio.to_thread(requests.get, f"{ex.admin_url}/clock", timeout=5)
                    assert clock.json()["clockMs"] == k["T"] + 1  # the clock waits for us
                    rows = await client.futures_klines(symbol="BTCUSDT", interval="1m", limit=1)
                    assert rows[-1][0] == k["t"]
                    await asyncio.to_thread(
                        requests.post,
                        f"{ex.admin_url}/pacer/{pacer}/ack",
                        params={"openTime": k["t"]},
                        timeout=5,
                    )
                release_sockets(ex, sock)
            await client.close_connection()
            return seen

        seen = asyncio.run(main())
        assert seen == [START + i * 60_000 for i in range(5)]
        requests.delete(f"{ex.admin_url}/pacer/{pacer}", timeout=5)
        assert requests.get(f"{ex.admin_url}/status", timeout=5).json()["stats"]["pacer_timeouts"] == 0


def test_pacer_timeout_moves_on_and_is_counted():
    with running(pacer_timeout_s=0.2) as ex:
        ex.register_pacer()
        ex.step(2)
        assert ex.status()["stats"]["pacer_timeouts"] == 2


def test_coin_m_multiplex_and_user_stream():
    with running(data=(("BTCUSD_PERP", BTC),)) as ex:

        async def main():
            client = await async_client(ex)
            bsm = socket_manager(client, ex)
            async with bsm.futures_multiplex_socket(
                ["btcusd_perp@kline_1m"], futures_type=FuturesType.COIN_M
            ) as sock:
                await subscribed(ex, "btcusd_perp@kline_1m")
                await asyncio.to_thread(ex.step, 1)
                kline = await _until(sock, lambda m: m["data"]["k"]["x"])
                release_sockets(ex, sock)
            async with bsm.coin_futures_user_socket() as user:
                await user_connected(ex)
                await client.futures_coin_create_order(
                    symbol="BTCUSD_PERP", side="SELL", type="MARKET", quantity="3"
                )
                update = await _until(user, lambda m: m["e"] == "ACCOUNT_UPDATE")
                release_sockets(ex, user)
            await client.close_connection()
            return kline, update

        kline, update = asyncio.run(main())
    assert kline["data"]["s"] == "BTCUSD_PERP"
    assert update["a"]["B"][0]["a"] == "BTC"
    assert update["a"]["P"][0]["pa"] == "-3"


def test_finite_speed_spreads_updates_over_the_candle():
    with running(paused=False, speed=1200.0, hold_until_client=True) as ex:  # a 1m candle lasts 50 ms

        async def main():
            async with websockets.connect(f"{ex.ws_url}market/stream?streams=btcusdt@kline_1m") as ws:
                stamps = []
                for _ in range(12):
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    stamps.append((time.perf_counter(), msg["data"]["k"]["x"]))
            return stamps

        stamps = asyncio.run(main())
    assert [x for _, x in stamps] == [False, False, False, True] * 3
    assert stamps[-1][0] - stamps[3][0] >= 0.09  # two more candles of 50 ms each
    # updates are spread over their candle, not bunched: a busy client may read some of them late (and two
    # at once), so look at every gap inside a candle rather than one
    inside = [b[0] - a[0] for a, b in itertools.pairwise(stamps) if not a[1]]
    assert max(inside) >= 0.005


def test_binance_frame_rate_pushes_every_250_ms_of_market_time_along_the_path():
    """``update_interval_ms=250``: per stream and 1m candle, 239 unclosed frames at 250 ms steps of the
    replay clock, walking open → adverse → favourable → close on the tick between the tape's trades (+0,
    15, 30, 45 s), then the closed candle."""
    series = load_klines(BTC)
    i = int(np.searchsorted(series.open_time, START))
    with running(update_interval_ms=250) as ex:

        async def main():
            url = f"{ex.ws_url}market/stream?streams=btcusdt@kline_1m/btcusdt@kline_5m"
            async with websockets.connect(url) as ws:
                await subscribed(ex, "btcusdt@kline_1m", "btcusdt@kline_5m")
                ex.step(1)
                return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2 * 240)]

        frames = asyncio.run(main())
    one = [f["data"] for f in frames if f["stream"] == "btcusdt@kline_1m"]
    five = [f["data"] for f in frames if f["stream"] == "btcusdt@kline_5m"]
    assert [k["k"]["x"] for k in one] == [False] * 239 + [True]
    assert [k["E"] - START for k in one[:-1]] == list(range(250, 60_000, 250))
    assert len(five) == 240
    o, h, lo, c = (float(a[i]) for a in (series.open, series.high, series.low, series.close))
    closes = [float(k["k"]["c"]) for k in one]
    adverse, favourable = (lo, h) if c >= o else (h, lo)
    assert closes[59] == adverse
    assert closes[119] == favourable
    assert closes[179:] == [c] * 61
    highs = [float(k["k"]["h"]) for k in one]
    assert highs == sorted(highs)
    assert all(round(p * 10) == p * 10 for p in closes)  # BTCUSDT's tick: 0.1
    assert [float(k["k"]["c"]) for k in five[:-1]] == closes[:-1]  # the 5m candle so far moves with it
