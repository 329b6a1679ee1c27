"""ccxt (sync) ``binanceusdm`` and ``binancecoinm``, unchanged but for their base URLs, against the local exchange."""

from __future__ import annotations

import time

import ccxt
import pytest

from tests.contract.clients import AMOUNT, MARKETS, RAW, SYMBOL, USDM, ccxt_client


@pytest.fixture(scope="module", params=MARKETS)
def market(request):
    return request.param


@pytest.fixture(scope="module")
def client(market, exchange):
    client = ccxt_client(ccxt, market, exchange)
    before = exchange.status()["stats"].get("rest_requests", 0)
    client.load_markets()
    assert exchange.status()["stats"]["rest_requests"] - before == 1  # one exchangeInfo, nothing else
    return client


def last_price(client, market) -> float:
    return client.fetch_ticker(SYMBOL[market])["last"]


def test_markets_time_balance_and_settings(client, market, exchange):
    assert SYMBOL[market] in client.markets
    assert abs(client.fetch_time() - time.time() * 1000) < 5000  # the wall clock, as on Binance
    synced = ccxt_client(ccxt, market, exchange, adjustForTimeDifference=True)
    synced.load_markets()
    assert abs(synced.options["timeDifference"]) < 5000
    assert synced.fetch_balance()["free"]
    balance = client.fetch_balance()
    assert balance["total"]["USDT" if market == USDM else "BTC"] > 0
    symbol = SYMBOL[market]
    assert client.fetch_leverage_tiers([symbol])[symbol][0]["maxLeverage"] == 125
    client.set_leverage(10, symbol)
    assert client.fetch_leverage(symbol)["longLeverage"] == 10
    assert symbol in client.fetch_leverages([symbol])
    client.set_margin_mode("isolated", symbol)
    assert client.fetch_margin_mode(symbol)["marginMode"] == "isolated"
    client.set_margin_mode("cross", symbol)
    assert client.fetch_position_mode(symbol)["hedged"] is False


def test_market_data(client, market):
    symbol = SYMBOL[market]
    ticker = client.fetch_ticker(symbol)
    assert ticker["last"] > 0
    assert ticker["bid"] is None or ticker["bid"] < ticker["last"] + 1
    assert symbol in client.fetch_tickers()
    quotes = client.fetch_bids_asks([symbol])[symbol]
    assert quotes["ask"] > quotes["bid"]
    assert client.fetch_last_prices([symbol])[symbol]["price"] == ticker["last"]
    book = client.fetch_order_book(symbol, 5)
    assert (len(book["bids"]), len(book["asks"])) == (5, 5)
    assert book["asks"][0][0] > book["bids"][0][0]
    assert len(client.fetch_order_book(symbol, 1000)["bids"]) == 1000
    candles = client.fetch_ohlcv(symbol, "1m", limit=3)
    marks = client.fetch_ohlcv(symbol, "1m", limit=3, params={"price": "mark"})
    assert [c[:5] for c in candles] == [m[:5] for m in marks]
    trades = client.fetch_trades(symbol, limit=8)
    assert len(trades) == 8
    assert all(t["amount"] > 0 for t in trades)
    funding = client.fetch_funding_rate(symbol)
    assert funding["fundingRate"] == 0
    assert funding["markPrice"] == ticker["last"]
    assert client.fetch_funding_rate_history(symbol, limit=3)
    fee = client.fetch_trading_fee(symbol)
    assert (fee["maker"], fee["taker"]) == (0.0002, 0.0005)


def test_positions_and_market_orders(client, market):
    symbol, amount = SYMBOL[market], AMOUNT[market]
    order = client.create_order(symbol, "market", "buy", amount)
    assert (order["status"], order["filled"]) == ("closed", amount)
    positions = client.fetch_positions([symbol])
    assert [(p["symbol"], p["side"], p["contracts"]) for p in positions] == [(symbol, "long", amount)]
    by_account = client.fetch_positions([symbol], {"method": "account"})
    assert by_account[0]["contracts"] == amount
    assert client.fetch_order(order["id"], symbol)["status"] == "closed"
    close = client.create_order(symbol, "market", "sell", amount, None, {"reduceOnly": True})
    assert close["status"] == "closed"
    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        client.create_order(symbol, "market", "sell", amount, None, {"reduceOnly": True})


def test_limit_orders_by_time_in_force(client, market, exchange):
    symbol, amount = SYMBOL[market], AMOUNT[market]
    price = last_price(client, market)
    below = float(client.price_to_precision(symbol, price * 0.98))
    resting = client.create_order(symbol, "limit", "buy", amount, below)
    assert resting["status"] == "open"
    assert [o["id"] for o in client.fetch_open_orders(symbol)] == [resting["id"]]
    assert client.cancel_order(resting["id"], symbol)["status"] == "canceled"
    ioc = client.create_order(symbol, "limit", "buy", amount, below, {"timeInForce": "IOC"})
    assert client.fetch_order(ioc["id"], symbol)["status"] == "expired"
    with pytest.raises(ccxt.ExchangeError, match="-5021"):
        client.create_order(symbol, "limit", "buy", amount, below, {"timeInForce": "FOK"})
    above = float(client.price_to_precision(symbol, price * 1.01))
    with pytest.raises(ccxt.ExchangeError, match="-5022"):
        client.create_order(symbol, "limit", "buy", amount, above, {"postOnly": True})
    taker = client.create_order(symbol, "limit", "buy", amount, above)
    assert client.fetch_order(taker["id"], symbol)["status"] == "closed"
    maker = client.create_order(
        symbol, "limit", "sell", amount, float(client.price_to_precision(symbol, price + 2))
    )
    for _ in range(60):
        if client.fetch_order(maker["id"], symbol)["status"] == "closed":
            break
        exchange.step()
    trades = client.fetch_my_trades(symbol)
    assert [t["takerOrMaker"] for t in trades[-2:]] == ["taker", "maker"]
    assert {o["id"] for o in client.fetch_orders(symbol)} >= {
        resting["id"],
        ioc["id"],
        taker["id"],
        maker["id"],
    }
    kinds = {entry["type"] for entry in client.fetch_ledger()}
    assert {"transfer", "commission"} <= kinds


def test_conditional_orders_through_the_algo_service(client, market):
    symbol, amount = SYMBOL[market], AMOUNT[market]
    client.create_order(symbol, "market", "buy", amount)
    price = last_price(client, market)
    params = {"reduceOnly": True}
    stop = client.create_order(
        symbol,
        "market",
        "sell",
        amount,
        None,
        params | {"stopLossPrice": client.price_to_precision(symbol, price * 0.9)},
    )
    client.create_order(
        symbol,
        "market",
        "sell",
        amount,
        None,
        params | {"takeProfitPrice": client.price_to_precision(symbol, price * 1.1)},
    )
    client.create_order(symbol, "market", "sell", amount, None, params | {"trailingPercent": 1})
    limit = float(client.price_to_precision(symbol, price * 0.89))
    client.create_order(
        symbol,
        "limit",
        "sell",
        amount,
        limit,
        params | {"triggerPrice": client.price_to_precision(symbol, price * 0.9)},
    )
    open_ = client.fetch_open_orders(symbol, params={"trigger": True})
    assert len(open_) == 4
    assert client.fetch_order(stop["id"], symbol, {"trigger": True})["status"] == "open"
    client.cancel_order(stop["id"], symbol, {"trigger": True})
    assert len(client.fetch_open_orders(symbol, params={"trigger": True})) == 3
    client.cancel_all_orders(symbol, {"trigger": True})
    assert client.fetch_open_orders(symbol, params={"trigger": True}) == []


def test_create_orders_answers_each_order(client, market):
    symbol, amount = SYMBOL[market], AMOUNT[market]
    price = last_price(client, market)
    far = float(client.price_to_precision(symbol, price * 0.9))
    orders = client.create_orders(
        [
            {"symbol": symbol, "type": "limit", "side": "buy", "amount": amount, "price": far},
            {"symbol": symbol, "type": "limit", "side": "buy", "amount": amount, "price": far * 0.99},
        ]
    )
    assert [o["status"] for o in orders] == ["open", "open"]
    raw = {o["info"]["symbol"] for o in orders}
    assert raw == {RAW[market]}
