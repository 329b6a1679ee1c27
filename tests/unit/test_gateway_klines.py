"""KlineReader against a hand-written fake of Binance's klines endpoint (which includes the open candle)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.kline_pages import (
    MAX_LIMIT,
    KlineReader,
    Page,
    klines_weight,
    page_plan,
    plan_weight,
)

USD = ContractType.USDT_M
M = 60_000
T0 = 1_700_000_040_000 // M * M


class FakeVenue:
    """Candles every minute from T0; the candle containing ``now`` is in progress and is returned too."""

    def __init__(self, count: int, *, missing: set[int] | None = None, clock_header: bool = False) -> None:
        self.now = T0 + count * M + 30_000  # mid-way through candle ``count``
        self.opens = [T0 + i * M for i in range(count + 1) if i not in (missing or set())]
        self.calls: list[dict[str, Any]] = []
        self.time_calls = 0
        self.clock_header = clock_header

    def server_time(self, _contract: ContractType) -> int:
        self.time_calls += 1
        return self.now

    def fetch(self, symbol, contract, interval, *, start_ms, end_ms, limit):
        assert interval == "1m"
        self.calls.append({"start": start_ms, "end": end_ms, "limit": limit})
        rows = [t for t in self.opens if t <= self.now]
        if start_ms is not None:
            rows = [t for t in rows if t >= start_ms]
        if end_ms is not None:
            rows = [t for t in rows if t <= end_ms]
        rows = rows[:limit] if start_ms is not None else rows[-limit:]
        table = [[t, "1", "2", "0.5", "1.5", "10", t + M - 1, "0", 1, "0", "0", "0"] for t in rows]
        return Page(table, self.now if self.clock_header else None)


def reader(venue: FakeVenue) -> KlineReader:
    """A venue whose clock is unknown without asking: ``GET /time`` before the klines."""
    return KlineReader(venue.fetch, venue.server_time)


def tracked(venue: FakeVenue, lag_ms: int = 1_000) -> KlineReader:
    """A venue whose clock is tracked (``ServerClock``): known, ``lag_ms`` behind, without a request."""
    return KlineReader(venue.fetch, venue.server_time, lambda: venue.now - lag_ms)


def test_single_request_drops_the_open_candle():
    venue = FakeVenue(10)
    klines = reader(venue).klines("X", USD, "1m", start_ms=None, end_ms=None, limit=5)
    assert [k.open_time_ms for k in klines] == [T0 + i * M for i in range(6, 10)]
    assert all(k.closed for k in klines)


def test_range_is_exact_ordered_and_paginated_in_the_cheapest_pages():
    venue = FakeVenue(4000)
    start, end = T0 + 7 * M, T0 + 3456 * M
    klines = reader(venue).closed_range("X", USD, "1m", start, end)
    assert [k.open_time_ms for k in klines] == list(range(start, end + 1, M))
    assert [c["limit"] for c in venue.calls] == list(page_plan(3450))
    assert all(c["limit"] <= MAX_LIMIT for c in venue.calls)
    assert sum(klines_weight(c["limit"]) for c in venue.calls) == plan_weight(3450) < 3 * 10


def test_range_reaching_into_the_present_stops_at_the_last_closed():
    venue = FakeVenue(100)
    klines = reader(venue).closed_range("X", USD, "1m", T0 + 90 * M, T0 + 200 * M)
    assert [k.open_time_ms for k in klines] == [T0 + i * M for i in range(90, 100)]
    assert len(venue.calls) == 1


def test_range_with_venue_gaps_returns_what_exists():
    venue = FakeVenue(3000, missing={5, 1600, 1601})
    klines = reader(venue).closed_range("X", USD, "1m", T0, T0 + 2999 * M)
    assert len(klines) == 3000 - 3
    assert T0 + 1600 * M not in {k.open_time_ms for k in klines}
    assert [k.open_time_ms for k in klines] == sorted({k.open_time_ms for k in klines})


def test_empty_and_inverted_ranges():
    venue = FakeVenue(10)
    assert reader(venue).closed_range("X", USD, "1m", T0 + 5 * M, T0 + 4 * M) == []
    assert reader(venue).closed_range("X", USD, "1m", T0 + 50 * M, T0 + 60 * M) == []


def test_recent_closed_pages_backwards():
    venue = FakeVenue(5000)
    klines = reader(venue).recent_closed("X", USD, "1m", 3200)
    assert [k.open_time_ms for k in klines] == [T0 + i * M for i in range(1800, 5000)]
    assert venue.time_calls == 1


def test_a_tracked_clock_reads_exactly_the_candles_needed_without_asking_the_time():
    venue = FakeVenue(5000)
    klines = tracked(venue).recent_closed("X", USD, "1m", 212)
    assert [k.open_time_ms for k in klines] == [T0 + i * M for i in range(5000 - 212, 5000)]
    # no spare row for the open candle: one page of 212 (weight 2) ending at the last closed candle
    assert venue.calls == [{"start": None, "end": T0 + 4999 * M, "limit": 212}]
    assert venue.time_calls == 0


def test_a_tracked_clock_splits_a_warm_up_into_the_cheapest_pages():
    venue = FakeVenue(5000)
    klines = tracked(venue).recent_closed("X", USD, "1m", 500)
    assert len(klines) == 500
    assert [c["limit"] for c in venue.calls] == [499, 1]  # weight 3, against 5 for one page of 500
    assert venue.calls[1]["end"] == T0 + (5000 - 499) * M - 1


def test_a_candle_closing_within_the_clocks_margin_is_left_to_the_stream():
    venue = FakeVenue(100)
    venue.now = T0 + 100 * M + 200  # candle 99 closed 200 ms ago; the tracked clock is 1 s behind
    klines = tracked(venue).recent_closed("X", USD, "1m", 10)
    assert [k.open_time_ms for k in klines] == [T0 + i * M for i in range(89, 99)]


def test_the_local_exchange_tells_closedness_in_each_answer():
    venue = FakeVenue(100, clock_header=True)
    local = KlineReader(venue.fetch, venue.server_time, clock_in_answers=True)
    klines = local.recent_closed("X", USD, "1m", 20)
    assert [k.open_time_ms for k in klines] == [T0 + i * M for i in range(80, 100)]
    assert local.klines("X", USD, "1m", start_ms=None, end_ms=None, limit=5)[-1].open_time_ms == T0 + 99 * M
    assert venue.time_calls == 0


def test_recent_closed_with_short_history():
    venue = FakeVenue(50)
    klines = reader(venue).recent_closed("X", USD, "1m", 200)
    assert len(klines) == 50
    assert reader(venue).recent_closed("X", USD, "1m", 0) == []


def test_bad_arguments():
    venue = FakeVenue(5)
    with pytest.raises(ValueError, match="interval"):
        reader(venue).klines("X", USD, "7m", start_ms=None, end_ms=None, limit=5)
    with pytest.raises(ValueError, match="limit"):
        reader(venue).klines("X", USD, "1m", start_ms=None, end_ms=None, limit=1501)


@pytest.mark.parametrize(
    ("limit", "weight"), [(1, 1), (99, 1), (100, 2), (499, 2), (500, 5), (1000, 5), (1001, 10), (1500, 10)]
)
def test_klines_weight(limit, weight):
    assert klines_weight(limit) == weight


@pytest.mark.parametrize(
    ("count", "plan"),
    [(1, (1,)), (99, (99,)), (212, (212,)), (499, (499,)), (500, (499, 1)), (999, (999,)), (1500, None)],
)
def test_page_plan_is_the_least_weight(count, plan):
    pages = page_plan(count)
    assert sum(pages) == count
    if plan is not None:
        assert pages == plan
    # no plan of up to four pages, all but the last at a bracket's top, does better
    tops = (1, 99, 100, 499, 500, 1000, 1500)
    plans = [
        (*head, count - sum(head))
        for n in range(4)
        for head in itertools.product(tops, repeat=n)
        if 1 <= count - sum(head) <= MAX_LIMIT
    ]
    assert plan_weight(count) == min(sum(map(klines_weight, p)) for p in plans)
