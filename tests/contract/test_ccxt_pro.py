"""ccxt.pro ``binanceusdm`` and ``binancecoinm`` streams, unchanged but for their base URLs.

The exchange's clock is paused; each watch runs while a thread steps the clock until the watch returns.
"""

from __future__ import annotations

import asyncio
import threading

import ccxt.pro as ccxtpro
import pytest

from tests.contract.clients import AMOUNT, MARKETS, SYMBOL, ccxt_client


@pytest.fixture(params=MARKETS)
def market(request):
    return request.param


def watch(exchange, market, make_watch, *, trade=None, updates: int = 1, steps: int = 12):
    """Run ``make_watch(client)`` ``updates`` times while the clock steps (and ``trade(client)`` trades)."""

    async def main():
        client = ccxt_client(ccxtpro, market, exchange)
        stop = threading.Event()
        try:
            await client.load_markets()
            first = asyncio.ensure_future(make_watch(client))
            await asyncio.sleep(0.1)  # subscribed (and, for the order book, snapshot fetched)
            if trade is not None:
                await trade(client)
            stepper = threading.Thread(
                target=lambda: [stop.wait(0.05) or exchange.step() for _ in range(steps)]
            )
            stepper.start()
            results = [await asyncio.wait_for(first, 10)]
            results += [await asyncio.wait_for(make_watch(client), 10) for _ in range(updates - 1)]
            stop.set()
            stepper.join()
            return results
        finally:
            stop.set()
            await client.close()

    return asyncio.run(main())


def test_watch_ohlcv_ticker_tickers_and_mark_price(exchange, market):
    symbol = SYMBOL[market]
    [candles] = watch(exchange, market, lambda c: c.watch_ohlcv(symbol, "1m"))
    assert candles[-1][4] > 0
    [ticker] = watch(exchange, market, lambda c: c.watch_ticker(symbol))
    assert ticker["last"] > 0
    assert ticker["symbol"] == symbol
    [tickers] = watch(exchange, market, lambda c: c.watch_tickers([symbol]))
    assert symbol in tickers
    [mark] = watch(exchange, market, lambda c: c.watch_mark_price(symbol))
    assert mark["markPrice"] > 0


def test_watch_bids_asks_trades_and_a_synced_order_book(exchange, market):
    symbol = SYMBOL[market]
    [quotes] = watch(exchange, market, lambda c: c.watch_bids_asks([symbol]))
    assert quotes[symbol]["ask"] > quotes[symbol]["bid"]
    [trades] = watch(exchange, market, lambda c: c.watch_trades(symbol))
    assert trades[-1]["price"] > 0
    [agg] = watch(exchange, market, lambda c: c.watch_trades(symbol, params={"name": "aggTrade"}))
    assert agg[-1]["amount"] > 0
    books = watch(exchange, market, lambda c: c.watch_order_book(symbol), updates=3)  # nonces must chain
    best = books[-1]
    assert best["asks"][0][0] - best["bids"][0][0] > 0
    assert len(best["bids"]) >= 900


def test_user_streams_orders_trades_balance_and_positions(exchange, market):
    symbol, amount = SYMBOL[market], AMOUNT[market]

    async def buy(client):
        await client.create_order(symbol, "market", "buy", amount)

    [orders] = watch(exchange, market, lambda c: c.watch_orders(symbol), trade=buy, steps=0)
    assert orders[-1]["status"] in {"open", "closed"}
    [trades] = watch(exchange, market, lambda c: c.watch_my_trades(symbol), trade=buy, steps=0)
    assert trades[-1]["amount"] == amount
    [balance] = watch(exchange, market, lambda c: c.watch_balance(), trade=buy, steps=0)
    assert balance["total"]
    [positions] = watch(exchange, market, lambda c: c.watch_positions([symbol]), trade=buy, steps=0)
    assert positions[-1]["symbol"] == symbol
    assert positions[-1]["contracts"] > 0
