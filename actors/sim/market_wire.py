"""Binance JSON of the market data derived from a feed: tickers, mark price, book top and depth, trades.

One builder per payload, shared by the REST endpoints (``market_api``) and the streams (``market_streams``),
so both always agree. Stream events carry the pair (``ps``) on both markets; REST rows only on COIN-M.
Derivations (see ``tape`` and ``depth`` for trades and the book):

* last price = the replay's current price (the path point the candle in progress has reached);
* 24 h statistics = the rolling window of 1m candles opened in the last 24 h of replay time, plus the
  part of the candle in progress walked so far (``Feed.window``);
* mark price = index price = estimated settle price = the last price (no separate index series exists);
* funding: without a funding-rate file, rate 0 (``lastFundingRate``/``r``/``fundingRate`` =
  ``"0.00000000"``) every 8 h at 00:00, 08:00 and 16:00 UTC; with one (``SimConfig.funding_rates``, Binance's
  archive), ``lastFundingRate`` and ``r`` are the last settled rate at or before the replay clock and
  ``nextFundingTime``/``T`` its settlement plus its interval (``domain.funding.FundingHistory``), as the
  backtest reads them; ``fundingRate`` lists the file's settlements. Interest rate 0.01 %; no funding fee
  is charged (the backtester charges none).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..domain.model import ContractType
from .depth import BookMove, Level
from .market import Candle, Feed
from .tape import Trade

FUNDING_INTERVAL_MS = 8 * 3_600_000
ZERO_RATE = "0.00000000"
INTEREST_RATE = "0.00010000"


def next_funding(now_ms: int) -> int:
    return (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS


def rate_text(rate: float) -> str:
    """A rate as Binance writes it (8 decimals), or exactly when 8 decimals would change its float."""
    text = f"{rate:.8f}"
    return text if float(text) == rate else format(Decimal(repr(rate)), "f")


def funding_now(feed: Feed, now_ms: int) -> tuple[str, int]:
    """(``lastFundingRate``, ``nextFundingTime``) at ``now_ms``."""
    reading = None if feed.funding is None else feed.funding.reading_at(now_ms)
    if reading is None:
        return ZERO_RATE, next_funding(now_ms)
    return rate_text(reading.rate), reading.next_funding_ms


def _coin(feed: Feed) -> bool:
    return feed.contract_type is ContractType.COIN_M


def pair(feed: Feed) -> str:
    return feed.symbol.removesuffix("_PERP") if _coin(feed) else feed.symbol


def _pair_fields(feed: Feed, key: str = "pair") -> dict[str, str]:
    return {key: pair(feed)} if _coin(feed) else {}


def last_trade(feed: Feed) -> Trade | None:
    """The most recent synthetic trade the replay has reached."""
    if feed.live and feed.closed < len(feed.t):
        found = feed.tape.trades(feed.closed, feed.live)
        if found:
            return found[-1]
    for i in range(feed.closed - 1, max(-1, feed.closed - 1000), -1):
        found = feed.tape.trades(i)
        if found:
            return found[-1]
    return None


def _window(feed: Feed, price: float, now_ms: int) -> Candle:
    found = feed.window(now_ms)
    if found is not None:
        return found
    return Candle(now_ms, price, price, price, price, 0.0, 0.0, 0, 0.0, 0.0, -1, -1)


def _stats(feed: Feed, price: float, now_ms: int) -> dict[str, Any]:
    w = _window(feed, price, now_ms)
    change = price - w.o
    trade = last_trade(feed)
    if _coin(feed):
        average = w.v * feed.spec.contract_size / w.q if w.q else price
    else:
        average = w.q / w.v if w.v else price
    return {
        "w": w,
        "change": feed.price(change),
        "percent": f"{change / w.o * 100 if w.o else 0.0:.3f}",
        "average": feed.price(average),
        "last": feed.price(price),
        "last_qty": feed.qty(trade.qty if trade else 0.0),
    }


def ticker_24hr(feed: Feed, price: float, now_ms: int) -> dict[str, Any]:
    """``GET /v1/ticker/24hr`` row."""
    s = _stats(feed, price, now_ms)
    w: Candle = s["w"]
    volume = "baseVolume" if _coin(feed) else "quoteVolume"
    return {
        "symbol": feed.symbol,
        **_pair_fields(feed),
        "priceChange": s["change"],
        "priceChangePercent": s["percent"],
        "weightedAvgPrice": s["average"],
        "lastPrice": s["last"],
        "lastQty": s["last_qty"],
        "openPrice": feed.price(w.o),
        "highPrice": feed.price(w.h),
        "lowPrice": feed.price(w.lo),
        "volume": feed.qty(w.v),
        volume: f"{w.q:.8f}",
        "openTime": w.open_time,
        "closeTime": now_ms,
        "firstId": w.first_id,
        "lastId": w.last_id,
        "count": w.n,
    }


def ticker_event(feed: Feed, price: float, now_ms: int, *, mini: bool) -> dict[str, Any]:
    """``24hrTicker`` / ``24hrMiniTicker`` stream event."""
    s = _stats(feed, price, now_ms)
    w: Candle = s["w"]
    prices = {"c": s["last"], "o": feed.price(w.o), "h": feed.price(w.h), "l": feed.price(w.lo)}
    volumes = {"v": feed.qty(w.v), "q": f"{w.q:.8f}"}
    head = {"e": "24hrMiniTicker" if mini else "24hrTicker", "E": now_ms, "s": feed.symbol, "ps": pair(feed)}
    if mini:
        return head | prices | volumes
    return (
        head
        | {"p": s["change"], "P": s["percent"], "w": s["average"], "Q": s["last_qty"]}
        | prices
        | volumes
        | {"O": w.open_time, "C": now_ms, "F": w.first_id, "L": w.last_id, "n": w.n}
    )


def price_ticker(feed: Feed, price: float, now_ms: int) -> dict[str, Any]:
    """``GET /v1/ticker/price`` (and ``/fapi/v2/ticker/price``) row."""
    return {"symbol": feed.symbol, **_pair_fields(feed, "ps"), "price": feed.price(price), "time": now_ms}


def book_ticker(feed: Feed, now_ms: int) -> dict[str, Any]:
    """``GET /v1/ticker/bookTicker`` row."""
    bid, bid_qty, ask, ask_qty = feed.depth.top()
    head: dict[str, Any] = {"lastUpdateId": feed.depth.update_id} if _coin(feed) else {}
    return head | {
        "symbol": feed.symbol,
        **_pair_fields(feed),
        "bidPrice": bid,
        "bidQty": bid_qty,
        "askPrice": ask,
        "askQty": ask_qty,
        "time": now_ms,
    }


def book_ticker_event(feed: Feed, now_ms: int) -> dict[str, Any]:
    bid, bid_qty, ask, ask_qty = feed.depth.top()
    return {
        "e": "bookTicker",
        "u": feed.depth.update_id,
        "E": now_ms,
        "T": now_ms,
        "s": feed.symbol,
        "ps": pair(feed),
        "b": bid,
        "B": bid_qty,
        "a": ask,
        "A": ask_qty,
    }


def premium_index(feed: Feed, price: float, now_ms: int) -> dict[str, Any]:
    """``GET /v1/premiumIndex`` row."""
    mark = feed.price(price)
    rate, next_ms = funding_now(feed, now_ms)
    return {
        "symbol": feed.symbol,
        **_pair_fields(feed),
        "markPrice": mark,
        "indexPrice": mark,
        "estimatedSettlePrice": mark,
        "lastFundingRate": rate,
        "interestRate": INTEREST_RATE,
        "nextFundingTime": next_ms,
        "time": now_ms,
    }


def mark_price_event(feed: Feed, price: float, now_ms: int) -> dict[str, Any]:
    mark = feed.price(price)
    body: dict[str, Any] = {"e": "markPriceUpdate", "E": now_ms, "s": feed.symbol, "p": mark, "i": mark}
    rate, next_ms = funding_now(feed, now_ms)
    body |= {"P": mark, "r": rate, "T": next_ms}
    return body if _coin(feed) else body | {"ap": mark}


def agg_trade(feed: Feed, trade: Trade) -> dict[str, Any]:
    """``GET /v1/aggTrades`` row."""
    qty = feed.qty(trade.qty)
    body: dict[str, Any] = {"a": trade.agg_id, "p": feed.price(trade.price), "q": qty}
    if not _coin(feed):
        body["nq"] = qty
    return body | {"f": trade.first_id, "l": trade.last_id, "T": trade.time, "m": trade.buyer_maker}


def agg_trade_event(feed: Feed, trade: Trade, now_ms: int) -> dict[str, Any]:
    return {"e": "aggTrade", "E": now_ms, "s": feed.symbol, **agg_trade(feed, trade)}


def trade_event(feed: Feed, trade: Trade, now_ms: int) -> dict[str, Any]:
    """``trade`` stream event (one per synthetic trade; ccxt.pro's default trade stream)."""
    return {
        "e": "trade",
        "E": now_ms,
        "T": trade.time,
        "s": feed.symbol,
        "t": trade.first_id,
        "p": feed.price(trade.price),
        "q": feed.qty(trade.qty),
        "X": "MARKET",
        "m": trade.buyer_maker,
    }


def order_book(feed: Feed, limit: int, now_ms: int) -> dict[str, Any]:
    """``GET /v1/depth``."""
    bids, asks = feed.depth.levels(limit)
    head: dict[str, Any] = {"lastUpdateId": feed.depth.update_id}
    if _coin(feed):
        head |= {"symbol": feed.symbol, "pair": pair(feed)}
    return head | {"E": now_ms, "T": now_ms, "bids": bids, "asks": asks}


def depth_event(
    feed: Feed, move: BookMove, bids: list[Level], asks: list[Level], now_ms: int
) -> dict[str, Any]:
    """``depthUpdate`` (diff or partial) stream event."""
    return {
        "e": "depthUpdate",
        "E": now_ms,
        "T": now_ms,
        "s": feed.symbol,
        "ps": pair(feed),
        "U": move.first_update,
        "u": move.last_update,
        "pu": move.previous_update,
        "b": bids,
        "a": asks,
    }


def funding_record(feed: Feed, time_ms: int, rate: float | None = None) -> dict[str, Any]:
    """``GET /v1/fundingRate`` row (rate 0 without a funding-rate file)."""
    shown = ZERO_RATE if rate is None else rate_text(rate)
    body: dict[str, Any] = {"symbol": feed.symbol, "fundingTime": time_ms, "fundingRate": shown}
    return body if _coin(feed) else body | {"markPrice": feed.price(feed.price_at(time_ms))}
