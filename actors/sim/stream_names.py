"""Market stream names as Binance spells them, parsed into what the replay has to send on them.

=======================================================  =====================================================
``<symbol>@kline_<interval>``                            kline of ``interval`` (1m … 1M)
``<pair>_perpetual@continuousKline_<interval>``          the same candles as ``continuous_kline`` events
``<symbol>@aggTrade`` / ``<symbol>@trade``               one synthetic trade per price-path step
``<symbol>@markPrice[@1s]``, ``!markPrice@arr[@1s]``     ``markPriceUpdate`` (mark = index = last)
``<symbol>@ticker``, ``!ticker@arr``                     rolling 24 h ``24hrTicker``
``<symbol>@miniTicker``, ``!miniTicker@arr``             rolling 24 h ``24hrMiniTicker``
``<symbol>@bookTicker``, ``!bookTicker``                 top of the synthetic book
``<symbol>@depth<5|10|20>[@100ms|@250ms|@500ms]``         the synthetic book's top levels (partial depth)
``<symbol>@depth[@100ms|@250ms|@500ms]``                 the synthetic book's changed levels (diff depth)
=======================================================  =====================================================

Update-speed suffixes are accepted and ignored: every stream speaks once per replayed price update. Names
are matched case-insensitively after the symbol (Binance's are camel case). Any other name is accepted by
SUBSCRIBE and stays silent, as on Binance for a symbol that does not trade.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from ..domain.model import TIMEFRAME_MS


class Kind(StrEnum):
    """What a market stream carries."""

    KLINE = "kline"
    CONTINUOUS_KLINE = "continuous_kline"
    AGG_TRADE = "aggTrade"
    TRADE = "trade"
    MARK_PRICE = "markPriceUpdate"
    TICKER = "24hrTicker"
    MINI_TICKER = "24hrMiniTicker"
    BOOK_TICKER = "bookTicker"
    PARTIAL_DEPTH = "partialDepth"
    DIFF_DEPTH = "depthUpdate"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One subscribed stream name and what it asks for."""

    name: str
    """As subscribed (the ``stream`` of combined frames)."""
    kind: Kind
    token: str | None
    """Upper-case symbol (a pair for continuous klines); None for the all-market ``!…`` streams."""
    interval: str = ""
    levels: int = 0
    """Levels of a partial depth stream (5, 10 or 20)."""

    def matches(self, symbol: str) -> bool:
        """Whether this stream carries ``symbol`` (a COIN-M perpetual's continuous stream names its pair)."""
        if self.token is None:
            return True
        return self.token == symbol or (self.kind is Kind.CONTINUOUS_KLINE and f"{self.token}_PERP" == symbol)


_SPEED = r"(?:@(?:100ms|250ms|500ms|1s))?"
_PATTERNS: tuple[tuple[re.Pattern[str], Kind], ...] = (
    (re.compile(r"^([a-z0-9_]+)@kline_(\w+)$"), Kind.KLINE),
    (re.compile(r"^([a-z0-9]+)_perpetual@continuouskline_(\w+)$"), Kind.CONTINUOUS_KLINE),
    (re.compile(r"^([a-z0-9_]+)@aggtrade$"), Kind.AGG_TRADE),
    (re.compile(r"^([a-z0-9_]+)@trade$"), Kind.TRADE),
    (re.compile(r"^([a-z0-9_]+)@markprice" + _SPEED + "$"), Kind.MARK_PRICE),
    (re.compile(r"^([a-z0-9_]+)@ticker$"), Kind.TICKER),
    (re.compile(r"^([a-z0-9_]+)@miniticker$"), Kind.MINI_TICKER),
    (re.compile(r"^([a-z0-9_]+)@bookticker$"), Kind.BOOK_TICKER),
    (re.compile(r"^([a-z0-9_]+)@depth(5|10|20)" + _SPEED + "$"), Kind.PARTIAL_DEPTH),
    (re.compile(r"^([a-z0-9_]+)@depth" + _SPEED + "$"), Kind.DIFF_DEPTH),
)
_ALL_MARKET: dict[str, Kind] = {
    "!markprice@arr": Kind.MARK_PRICE,
    "!markprice@arr@1s": Kind.MARK_PRICE,
    "!ticker@arr": Kind.TICKER,
    "!miniticker@arr": Kind.MINI_TICKER,
    "!bookticker": Kind.BOOK_TICKER,
}
ARRAY_KINDS = frozenset({Kind.MARK_PRICE, Kind.TICKER, Kind.MINI_TICKER})
"""All-market streams of these kinds send one JSON array per update (``!bookTicker``: one per symbol)."""


def parse_stream(name: str) -> StreamSpec | None:
    """The stream ``name`` asks for, or None when the replay has nothing to send on it."""
    lowered = name.lower()
    kind = _ALL_MARKET.get(lowered)
    if kind is not None:
        return StreamSpec(name, kind, None)
    for pattern, kind in _PATTERNS:
        m = pattern.match(lowered)
        if m is None:
            continue
        token = m.group(1).upper()
        if kind in {Kind.KLINE, Kind.CONTINUOUS_KLINE}:
            interval = name[name.rindex("_") + 1 :]
            return StreamSpec(name, kind, token, interval=interval) if interval in TIMEFRAME_MS else None
        if kind is Kind.PARTIAL_DEPTH:
            return StreamSpec(name, kind, token, levels=int(m.group(2)))
        return StreamSpec(name, kind, token)
    return None
