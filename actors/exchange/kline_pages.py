"""REST kline reading on top of one raw fetch: closed-only filtering, exact range pagination, warm-up.

Binance's klines endpoint also returns the candle in progress; a candle is closed when its close time
(open + interval - 1) is before the server time, which is read *before* the klines so a candle closing
between the two requests is never taken with partial data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..domain.model import TIMEFRAME_MS, ContractType, Kline
from .parse import MalformedPayload, parse_kline_row

MAX_LIMIT = 1500
"""Binance's largest klines ``limit``."""


class Fetch(Protocol):
    """One klines request → the raw JSON rows."""

    def __call__(
        self,
        symbol: str,
        contract: ContractType,
        interval: str,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> Any: ...


def klines_weight(limit: int) -> int:
    """Binance's klines weight: [1,100) 1, [100,500) 2, [500,1000] 5, above 10."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def _interval_ms(interval: str) -> int:
    try:
        return TIMEFRAME_MS[interval]
    except KeyError:
        raise ValueError(f"unknown kline interval {interval!r}; one of {list(TIMEFRAME_MS)}") from None


class KlineReader:
    """Reads closed klines through ``fetch``; ``server_time`` gives the market's server time in ms."""

    def __init__(self, fetch: Fetch, server_time: Callable[[ContractType], int]) -> None:
        self._fetch = fetch
        self._server_time = server_time

    def _page(
        self,
        symbol: str,
        contract: ContractType,
        interval: str,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[Kline]:
        body = self._fetch(symbol, contract, interval, start_ms=start_ms, end_ms=end_ms, limit=limit)
        if not isinstance(body, list):
            raise MalformedPayload(f"klines of {symbol}: expected a JSON list, got {type(body).__name__}")
        return [parse_kline_row(row, symbol, interval) for row in body]

    @staticmethod
    def _closed(klines: Iterable[Kline], interval_ms: int, server_ms: int) -> list[Kline]:
        return [k for k in klines if k.open_time_ms + interval_ms - 1 < server_ms]

    def klines(
        self,
        symbol: str,
        contract: ContractType,
        interval: str,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[Kline]:
        ms = _interval_ms(interval)
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"klines limit must be within 1..{MAX_LIMIT}, got {limit}")
        server_ms = self._server_time(contract)
        return self._closed(
            self._page(symbol, contract, interval, start_ms=start_ms, end_ms=end_ms, limit=limit),
            ms,
            server_ms,
        )

    def closed_range(
        self, symbol: str, contract: ContractType, interval: str, start_open_ms: int, end_open_ms: int
    ) -> list[Kline]:
        """Exactly the closed candles with open time in [start, end], ascending and deduped."""
        ms = _interval_ms(interval)
        if end_open_ms < start_open_ms:
            return []
        server_ms = self._server_time(contract)
        found: dict[int, Kline] = {}
        cursor = start_open_ms
        while cursor <= end_open_ms:
            limit = min(MAX_LIMIT, (end_open_ms - cursor) // ms + 1)
            page = self._page(symbol, contract, interval, start_ms=cursor, end_ms=end_open_ms, limit=limit)
            closed = self._closed(page, ms, server_ms)
            found.update(
                (k.open_time_ms, k) for k in closed if start_open_ms <= k.open_time_ms <= end_open_ms
            )
            last = max((k.open_time_ms for k in page), default=cursor - ms)
            # Fewer rows than asked, an open candle, or no progress: the venue has nothing further.
            if len(page) < limit or len(closed) < len(page) or last < cursor:
                break
            cursor = last + ms
        return [found[t] for t in sorted(found)]

    def recent_closed(self, symbol: str, contract: ContractType, interval: str, count: int) -> list[Kline]:
        """The last ``count`` closed candles, ascending (fewer when the history is shorter)."""
        ms = _interval_ms(interval)
        if count <= 0:
            return []
        server_ms = self._server_time(contract)
        found: dict[int, Kline] = {}
        end_ms: int | None = None
        while len(found) < count:
            # +1: the first page ends with the candle in progress.
            limit = min(MAX_LIMIT, count - len(found) + 1)
            page = self._page(symbol, contract, interval, start_ms=None, end_ms=end_ms, limit=limit)
            found.update((k.open_time_ms, k) for k in self._closed(page, ms, server_ms))
            if len(page) < limit:
                break
            first = min(k.open_time_ms for k in page)
            if end_ms is not None and first > end_ms:
                break
            end_ms = first - 1
        return [found[t] for t in sorted(found)[-count:]]
