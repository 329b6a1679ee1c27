"""OrderBudget with an injected clock: Binance's order windows, the venue's counts, the reserve for stops."""

from __future__ import annotations

import pytest

from nancemakina.actors.exchange.errors import RateLimited
from nancemakina.actors.exchange.order_rate import OrderBudget
from tests.unit.test_gateway_ratelimit import FakeClock


def orders(ten_s: int = 10, minute: int = 100, **kw) -> tuple[OrderBudget, FakeClock]:
    clock = FakeClock(1_000_041.0)  # 1 s into a 10 s window
    return OrderBudget(ten_s, minute, clock=clock, sleep=clock.sleep, **kw), clock


def test_entries_leave_the_reserve_of_each_window_to_stops_and_closes():
    budget, clock = orders(10, reserve=0.2)
    for _ in range(8):
        assert budget.acquire(protective=False) == 0.0
    assert budget.acquire(protective=True) == 0.0  # a stop still goes at once
    assert budget.acquire(protective=True) == 0.0
    assert clock.slept == []
    assert budget.acquire(protective=False) == pytest.approx(9.05)  # the next 10 s window
    assert budget.snapshot().waits == 1


def test_the_venues_counts_are_adopted_when_higher():
    budget, _ = orders(10, 100)
    budget.record_counts(10, 40)
    snap = budget.snapshot()
    assert (snap.used_10s, snap.used_1m) == (10, 40)
    budget.max_wait_s = 0.0
    with pytest.raises(RateLimited, match="new orders: 10/10 per 10 s"):
        budget.acquire(protective=True)


def test_a_refusal_by_the_venue_fills_the_window():
    budget, clock = orders(10, 100)
    budget.record_refused()
    assert budget.acquire(protective=True) == pytest.approx(9.05)
    assert budget.snapshot().refused == 1
    assert clock.slept == [pytest.approx(9.05)]


def test_exchange_info_limits_are_adopted():
    budget, _ = orders()
    budget.set_limits(300, 1200)
    snap = budget.snapshot()
    assert (snap.limit_10s, snap.limit_1m) == (300, 1200)
