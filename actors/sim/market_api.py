"""Public market-data endpoints (security NONE) of both markets, served from the replayed feeds.

``klines``, ``continuousKlines``, ``markPriceKlines``, ``depth``, ``ticker/24hr``, ``ticker/price`` (and
USDⓈ-M's ``/fapi/v2/ticker/price``), ``ticker/bookTicker``, ``premiumIndex``, ``fundingRate`` and
``aggTrades``. How each value is derived from the klines: ``market_wire`` (tickers, mark price, funding),
``tape`` (trades) and ``depth`` (the book). As on Binance, USDⓈ-M answers one object when ``symbol`` is
given and an array otherwise; COIN-M always answers an array and also filters by ``pair``. Only symbols
with data are known (-1121 otherwise); a symbol listed at run time without data (paper trading's broker)
has no market data and answers -1121 too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..domain.model import TIMEFRAME_MS, ContractType
from . import guard, market_wire, params
from .errors import SimError
from .exchange import Request, SimExchange
from .market import MAX_KLINES_LIMIT, Feed
from .tape import TRADES_PER_CANDLE, Trade

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
CONTRACT_TYPES = frozenset({"PERPETUAL", "CURRENT_QUARTER", "NEXT_QUARTER", "TRADIFI_PERPETUAL"})


def _feed(v: SimExchange, r: Request, symbol: str) -> Feed:
    feed = v.feeds.get(symbol.upper())
    if feed is None or feed.contract_type is not r.contract_type:
        raise SimError(-1121, "Invalid symbol.")
    return feed


def _feeds(v: SimExchange, r: Request) -> tuple[list[Feed], bool]:
    """(the feeds asked for, whether to answer one object): ``symbol``, COIN-M's ``pair``, or all."""
    symbol, pair = r.params.get("symbol", ""), r.params.get("pair", "")
    coin = r.contract_type is ContractType.COIN_M
    if symbol and pair:
        raise SimError(-1128, "Combination of optional parameters invalid.")
    if symbol:
        return [_feed(v, r, symbol)], not coin
    feeds = [f for f in v.feeds.values() if f.contract_type is r.contract_type]
    if pair and coin:
        feeds = [f for f in feeds if market_wire.pair(f) == pair.upper()]
        if not feeds:
            raise SimError(-1121, "Invalid pair.")
    return sorted(feeds, key=lambda f: f.symbol), False


def _each(v: SimExchange, r: Request, row: Callable[[Feed], dict[str, Any]]) -> Any:
    feeds, single = _feeds(v, r)
    rows = [row(f) for f in feeds]
    return rows[0] if single else rows


def _price(v: SimExchange, feed: Feed) -> float:
    return v.book.marks.get(feed.symbol, feed.last_price())


def _limit(p: dict[str, str], default: int, most: int) -> int:
    limit = params.optional_int(p, "limit")
    limit = default if limit is None else limit
    if not 1 <= limit <= most:
        raise SimError(-1130, "Data sent for parameter 'limit' is not valid.")
    return limit


def _interval(p: dict[str, str]) -> str:
    interval = params.required(p, "interval")
    if interval not in TIMEFRAME_MS:
        raise SimError(-1120, "Invalid interval.")
    return interval


def _rows(feed: Feed, p: dict[str, str]) -> list[list[Any]]:
    interval = _interval(p)
    limit = _limit(p, 500, MAX_KLINES_LIMIT)
    return feed.klines(
        interval, params.optional_int(p, "startTime"), params.optional_int(p, "endTime"), limit
    )


async def klines(v: SimExchange, r: Request) -> Any:
    return _rows(_feed(v, r, params.required(r.params, "symbol")), r.params)


async def continuous_klines(v: SimExchange, r: Request) -> Any:
    pair = params.required(r.params, "pair").upper()
    kind = params.required(r.params, "contractType").upper()
    if kind not in CONTRACT_TYPES:
        raise SimError(-4104, "Invalid contract type")
    symbol = f"{pair}_PERP" if r.contract_type is ContractType.COIN_M else pair
    feed = _feed(v, r, symbol)
    return _rows(feed, r.params) if kind.endswith("PERPETUAL") else []


async def mark_price_klines(v: SimExchange, r: Request) -> Any:
    """Mark price = last price: the klines' prices; no volume, and ``n`` = the price points walked."""
    rows = _rows(_feed(v, r, params.required(r.params, "symbol")), r.params)
    ms = TIMEFRAME_MS[r.params["interval"]]
    minutes = max(1, ms // 60_000)
    return [[*row[:5], "0", row[6], "0", TRADES_PER_CANDLE * minutes, "0", "0", "0"] for row in rows]


async def depth(v: SimExchange, r: Request) -> Any:
    feed = _feed(v, r, params.required(r.params, "symbol"))
    limit = params.optional_int(r.params, "limit") or 500
    if limit not in DEPTH_LIMITS:
        raise SimError(-4021, f"'{limit}' is not valid depth limit.")
    return market_wire.order_book(feed, limit, v.now_ms)


async def ticker_24hr(v: SimExchange, r: Request) -> Any:
    return _each(v, r, lambda f: market_wire.ticker_24hr(f, _price(v, f), v.now_ms))


async def ticker_price(v: SimExchange, r: Request) -> Any:
    return _each(v, r, lambda f: market_wire.price_ticker(f, _price(v, f), v.now_ms))


async def book_ticker(v: SimExchange, r: Request) -> Any:
    return _each(v, r, lambda f: market_wire.book_ticker(f, v.now_ms))


async def premium_index(v: SimExchange, r: Request) -> Any:
    return _each(v, r, lambda f: market_wire.premium_index(f, _price(v, f), v.now_ms))


async def funding_rate(v: SimExchange, r: Request) -> Any:
    """Settlements up to the replay clock: the funding-rate file's, else rate 0 every 8 h from the data."""
    p = r.params
    coin = r.contract_type is ContractType.COIN_M
    symbol = params.required(p, "symbol") if coin else p.get("symbol", "")
    feeds = [_feed(v, r, symbol)] if symbol else _feeds(v, r)[0]
    limit = _limit(p, 100, 1000)
    start, end = params.optional_int(p, "startTime"), params.optional_int(p, "endTime")
    every = market_wire.FUNDING_INTERVAL_MS
    last = min(v.now_ms, v.now_ms if end is None else end)
    rows: list[tuple[int, Feed, float | None]] = []
    for feed in feeds:
        if feed.funding is not None:
            history = feed.funding
            rows += [
                (t, feed, rate)
                for t, rate in zip(history.times_ms, history.rates, strict=True)
                if (start or 0) <= t <= last
            ]
        elif len(feed.t):
            first = max(int(feed.t[0]), start or 0)
            rows += [(t, feed, None) for t in range(-(-first // every) * every, last + 1, every)]
    rows.sort(key=lambda x: (x[0], x[1].symbol))
    chosen = rows[:limit] if start is not None else rows[-limit:]
    return [market_wire.funding_record(feed, t, rate) for t, feed, rate in chosen]


def _visible(feed: Feed, i: int) -> list[Trade]:
    """Candle ``i``'s trades the replay has reached."""
    if i < feed.closed:
        return feed.tape.trades(i)
    return feed.tape.trades(i, feed.live) if i == feed.closed and feed.live else []


async def agg_trades(v: SimExchange, r: Request) -> Any:
    p = r.params
    feed = _feed(v, r, params.required(p, "symbol"))
    limit = _limit(p, 500, 1000)
    from_id = params.optional_int(p, "fromId")
    start, end = params.optional_int(p, "startTime"), params.optional_int(p, "endTime")
    if start is not None and end is not None and not 0 <= end - start <= 3_600_000:
        raise SimError(-1127, "More than 1 hours between startTime and endTime.")
    tape, top = feed.tape, feed.closed + (1 if feed.live else 0)
    found: list[Trade] = []
    if from_id is None and start is None and end is None:
        i = top - 1
        while i >= 0 and len(found) < limit:
            found[:0] = _visible(feed, i)
            i -= 1
        return [market_wire.agg_trade(feed, t) for t in found[-limit:]]
    if from_id is not None:
        i = max(0, int(np.searchsorted(tape.first_id, from_id, side="right")) - 1)
    else:
        i = max(0, int(np.searchsorted(feed.t, (start or 0) - 60_000)))
    lowest, earliest, latest = from_id or 0, start or 0, end if end is not None else 1 << 62
    while i < top and len(found) < limit:
        found += [t for t in _visible(feed, i) if t.agg_id >= lowest and earliest <= t.time <= latest]
        if end is not None and int(feed.t[i]) > end:
            break
        i += 1
    return [market_wire.agg_trade(feed, t) for t in found[:limit]]


def _one_or_all(single: int, every: int) -> guard.Weight:
    return lambda p: single if p.get("symbol") else every


def _depth_weight(p: dict[str, str]) -> int:
    try:
        limit = int(p.get("limit") or 500)
    except ValueError:
        return 2
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


ENDPOINTS: list[tuple[str, Callable[..., Any], guard.Weight]] = [
    ("/v1/klines", klines, guard.klines_param_weight),
    ("/v1/continuousKlines", continuous_klines, guard.klines_param_weight),
    ("/v1/markPriceKlines", mark_price_klines, guard.klines_param_weight),
    ("/v1/depth", depth, _depth_weight),
    ("/v1/ticker/24hr", ticker_24hr, _one_or_all(1, 40)),
    ("/v1/ticker/price", ticker_price, _one_or_all(1, 2)),
    ("/v1/ticker/bookTicker", book_ticker, _one_or_all(2, 5)),
    ("/v1/premiumIndex", premium_index, _one_or_all(1, 10)),
    ("/v1/fundingRate", funding_rate, lambda _p: 1),
    ("/v1/aggTrades", agg_trades, lambda _p: 20),
]
"""(path under /fapi or /dapi, handler, weight); USDⓈ-M also serves ``/v2/ticker/price``."""
