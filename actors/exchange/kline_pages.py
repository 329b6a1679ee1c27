"""REST kline reading on top of one raw fetch: closed-only filtering, exact range pagination, warm-up.

Binance's klines endpoint also returns the candle in progress; a candle is closed when its close time
(open + interval - 1) is before the venue's clock. That clock is known without asking (the tracked
``ServerClock``, or the local exchange's replay clock in the answer's own ``X-SIM-Clock-Ms`` header); only a
venue whose clock is known neither way is asked ``GET /time`` first, *before* the klines, so a candle closing
between the two requests is never taken with partial data.

The weight of a klines request depends on its ``limit`` alone ([1,100) 1, [100,500) 2, [500,1000] 5, above
10), so reads are shaped to the candles they need: a warm-up asks for exactly ``count`` candles ending at the
last closed one (no spare row for the candle in progress), split into the pages of least total weight
(``page_plan``: 500 candles cost 3 as 499 + 1, not 5 in one page).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from ..domain.model import TIMEFRAME_MS, ContractType, Kline
from .parse import MalformedPayload, parse_kline_row
from .transport import Transport, endpoint, replay_clock_in

MAX_LIMIT = 1500
"""Binance's largest klines ``limit``."""
_PAGE_TOPS = (99, 499, 1000, MAX_LIMIT)
"""The largest ``limit`` of each weight bracket: the only page sizes worth cutting a read into."""


@dataclass(frozen=True, slots=True)
class Page:
    """One klines answer: the raw rows, and the replay clock it carried (the local exchange only)."""

    rows: Any
    clock_ms: int | None = None


class Fetch(Protocol):
    """One klines request → its ``Page``."""

    def __call__(
        self,
        symbol: str,
        contract: ContractType,
        interval: str,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> Page: ...


class TransportFetch:
    """One klines request through a gateway's ``Transport`` (python-binance's ``futures_klines``), weighed by
    its limit; on the local exchange (``local``) with the replay clock of its answer."""

    def __init__(self, transport: Transport, *, local: bool) -> None:
        self._t = transport
        self._local = local

    def __call__(
        self,
        symbol: str,
        contract: ContractType,
        interval: str,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> Page:
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        client = self._t.client
        fn = client.futures_klines if contract is ContractType.USDT_M else client.futures_coin_klines

        def read() -> Page:
            rows = fn(**params)
            if not self._local:
                return Page(rows)
            # under the transport's lock, so the response read here is this request's
            return Page(rows, replay_clock_in(client.response.headers))

        page: Page = self._t.call(endpoint("GET", contract, "klines"), klines_weight(limit), read)
        return page


def klines_weight(limit: int) -> int:
    """Binance's klines weight: [1,100) 1, [100,500) 2, [500,1000] 5, above 10."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


_EXACT_UP_TO = 3000
"""Plans up to this many candles are searched exhaustively; longer reads add pages of 499, the cheapest
candles per weight (2 for 499), until the rest is that short."""


@cache
def _plans() -> tuple[tuple[int, ...], ...]:
    """The cheapest plan for every count up to ``_EXACT_UP_TO``: least weight, then fewest pages, then the
    largest pages first."""
    best: list[tuple[int, int, tuple[int, ...]]] = [(0, 0, ())]
    for n in range(1, _EXACT_UP_TO + 1):
        options = {p for p in _PAGE_TOPS if p < n} | ({n} if n <= MAX_LIMIT else set())
        candidates = []
        for p in options:
            weight, pages, rest = best[n - p]
            plan = tuple(sorted((p, *(-x for x in rest)), reverse=True))
            candidates.append((weight + klines_weight(p), pages + 1, tuple(-x for x in plan)))
        best.append(min(candidates))
    return tuple(tuple(-x for x in plan) for _, _, plan in best)


def page_plan(count: int) -> tuple[int, ...]:
    """Page limits adding up to ``count`` at the least total weight, then in the fewest pages (largest first).

    >>> page_plan(212), page_plan(500), sum(map(klines_weight, page_plan(500)))
    ((212,), (499, 1), 3)
    """
    if count <= 0:
        return ()
    extra = max(0, -(-(count - _EXACT_UP_TO) // 499))
    rest = _plans()[count - 499 * extra]
    return tuple(sorted((*rest, *(499,) * extra), reverse=True))


def plan_weight(count: int) -> int:
    """Request weight of reading ``count`` candles the cheapest way."""
    return sum(klines_weight(p) for p in page_plan(count))


def _interval_ms(interval: str) -> int:
    try:
        return TIMEFRAME_MS[interval]
    except KeyError:
        raise ValueError(f"unknown kline interval {interval!r}; one of {list(TIMEFRAME_MS)}") from None


class KlineReader:
    """Reads closed klines through ``fetch`` (see the module docstring).

    ``known_clock()`` is a time the venue's market clock has certainly reached, or None when unknown without a
    request; ``server_time(contract)`` asks the venue. ``clock_in_answers``: every answer carries the replay
    clock (the local exchange), so closedness is read from the answer itself.
    """

    def __init__(
        self,
        fetch: Fetch,
        server_time: Callable[[ContractType], int],
        known_clock: Callable[[], int | None] = lambda: None,
        *,
        clock_in_answers: bool = False,
    ) -> None:
        self._fetch = fetch
        self._server_time = server_time
        self._known_clock = known_clock
        self._clock_in_answers = clock_in_answers

    def _bound_before(self, contract: ContractType) -> int | None:
        """Closedness bound known before the request; asks the venue only when nothing else can tell."""
        known = self._known_clock()
        if known is not None or self._clock_in_answers:
            return known
        return self._server_time(contract)

    def _page(
        self,
        symbol: str,
        contract: ContractType,
        interval: str,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        bound: int | None,
    ) -> tuple[list[Kline], list[Kline]]:
        """(every candle of the answer, the closed ones): closed by the answer's own clock if it has one."""
        page = self._fetch(symbol, contract, interval, start_ms=start_ms, end_ms=end_ms, limit=limit)
        if not isinstance(page.rows, list):
            raise MalformedPayload(
                f"klines of {symbol}: expected a JSON list, got {type(page.rows).__name__}"
            )
        klines = [parse_kline_row(row, symbol, interval) for row in page.rows]
        clock = page.clock_ms if page.clock_ms is not None else bound
        if clock is None:
            raise MalformedPayload(f"klines of {symbol}: the local exchange sent no replay clock header")
        return klines, self._closed(klines, _interval_ms(interval), clock)

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
        _interval_ms(interval)
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"klines limit must be within 1..{MAX_LIMIT}, got {limit}")
        bound = self._bound_before(contract)
        return self._page(
            symbol, contract, interval, start_ms=start_ms, end_ms=end_ms, limit=limit, bound=bound
        )[1]

    def closed_range(
        self, symbol: str, contract: ContractType, interval: str, start_open_ms: int, end_open_ms: int
    ) -> list[Kline]:
        """Exactly the closed candles with open time in [start, end], ascending and deduped."""
        ms = _interval_ms(interval)
        if end_open_ms < start_open_ms:
            return []
        bound = self._bound_before(contract)
        found: dict[int, Kline] = {}
        cursor = start_open_ms
        for limit in page_plan((end_open_ms - start_open_ms) // ms + 1):
            page, closed = self._page(
                symbol, contract, interval, start_ms=cursor, end_ms=end_open_ms, limit=limit, bound=bound
            )
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
        """The last ``count`` closed candles, ascending (fewer when the history is shorter).

        With the venue's clock known before the request, exactly ``count`` candles ending at the last closed
        one, in the cheapest pages; otherwise one spare row for the candle in progress.
        """
        ms = _interval_ms(interval)
        if count <= 0:
            return []
        bound = self._bound_before(contract)
        found: dict[int, Kline] = {}
        if bound is not None:
            end_ms: int | None = (bound - ms) // ms * ms  # open time of the last candle closed by `bound`
            plan = page_plan(count)
        else:
            end_ms, plan = (
                None,
                (*page_plan(min(MAX_LIMIT, count + 1)), *page_plan(max(0, count - MAX_LIMIT))),
            )
        for limit in plan:
            page, closed = self._page(
                symbol, contract, interval, start_ms=None, end_ms=end_ms, limit=limit, bound=bound
            )
            found.update((k.open_time_ms, k) for k in closed)
            if len(page) < limit:
                break
            first = min(k.open_time_ms for k in page)
            if end_ms is not None and first > end_ms:
                break
            end_ms = first - 1
        return [found[t] for t in sorted(found)[-count:]]
