"""WeightBudget with an injected clock: budget, safety margin, Retry-After, deadline, counters."""

from __future__ import annotations

import threading

import pytest

from nancemakina.actors.exchange.errors import BudgetSpent, RateLimited
from nancemakina.actors.exchange.ratelimit import WeightBudget


class FakeClock:
    def __init__(self, now: float = 1_000_040.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def budget(limit: int = 100, **kw) -> tuple[WeightBudget, FakeClock]:
    clock = FakeClock()
    return WeightBudget(limit, clock=clock, sleep=clock.sleep, **kw), clock


def test_spends_up_to_the_safety_margin_without_waiting():
    b, clock = budget(100, safety=0.1)
    for _ in range(9):
        assert b.acquire(10) == 0.0
    assert b.used_weight == 90
    assert clock.slept == []


def test_market_data_reads_leave_a_reserve_for_the_reads_that_protect_positions():
    b, clock = budget(100, safety=0.1, bulk_share=0.7)
    for _ in range(7):
        assert b.acquire(10, bulk=True) == 0.0  # warm-up and backfill klines: up to 70
    assert b.acquire(10) == 0.0  # an order lookup or a reconciliation still goes at once
    assert b.acquire(10) == 0.0
    assert clock.slept == []
    assert b.acquire(10, bulk=True) > 0  # a bulk read waits for the next minute


def test_an_order_is_never_held_by_spent_weight_only_by_a_ban():
    b, clock = budget(100, safety=0.1)
    b.acquire(90)
    b.record_used(2400)  # the venue says the minute is spent (another process on this IP)
    assert b.admit() == 0.0
    assert clock.slept == []
    b.record_rate_limited(7.0)  # a 429: nothing goes, orders included, until Retry-After
    assert b.admit() == pytest.approx(7.0)


def test_waits_for_the_next_minute_when_the_margin_would_be_crossed():
    b, _ = budget(100, safety=0.1)
    b.acquire(85)
    waited = b.acquire(10)
    assert waited == pytest.approx(40.05)  # 1_000_040 → next minute at 1_000_080, plus slack
    assert b.used_weight == 10
    snap = b.snapshot()
    assert snap.waits == 1
    assert snap.waited_s == pytest.approx(40.05)


def test_raises_instead_of_waiting_past_the_deadline():
    b, clock = budget(100, max_wait_s=5.0)
    b.acquire(90)
    with pytest.raises(BudgetSpent, match="would wait") as info:  # ours: nothing was sent
        b.acquire(10)
    assert info.value.retry_after_s == pytest.approx(40.05)
    assert clock.slept == []
    assert b.acquire(10, max_wait_s=60.0) > 0


def test_venue_reported_weight_is_adopted_when_higher():
    b, _ = budget(2400)
    b.acquire(5)
    b.record_used(2000)
    assert b.used_weight == 2000
    b.record_used(10)
    assert b.used_weight == 2000
    b.record_used(None)
    assert b.used_weight == 2000


def test_minute_rollover_resets_the_estimate():
    b, clock = budget(100)
    b.acquire(50)
    clock.now += 60
    assert b.used_weight == 0


def test_retry_after_blocks_everyone_and_counts():
    b, clock = budget(2400)
    b.record_rate_limited(3.0)
    assert b.snapshot().blocked_until == clock.now + 3.0
    assert b.acquire(1) == pytest.approx(3.0)
    b.record_rate_limited(120.0, banned=True)
    with pytest.raises(RateLimited, match="Retry-After") as info:
        b.acquire(1)
    assert not isinstance(info.value, BudgetSpent)  # the venue's word, not our own spending
    assert (b.responses_429, b.responses_418) == (1, 1)


def test_limit_from_exchange_info():
    b, _ = budget(2400)
    b.set_limit(1200)
    assert (b.limit, b.usable, b.bulk_usable) == (1200, 1176, 1080)
    b.set_limit(0)
    assert b.limit == 1200


def test_bulk_reads_leave_the_rest_of_the_minute_to_everything_else():
    b, clock = budget(100)  # usable 98, bulk share 90
    for _ in range(9):
        assert b.acquire(10, bulk=True) == 0.0
    assert b.acquire(5) == 0.0  # an order lookup, a balance: no wait behind the warm-up
    assert b.acquire(3) == 0.0
    waited = b.acquire(1, bulk=True)  # the next klines read waits for the next minute
    assert waited == pytest.approx(40.05)
    assert clock.slept == [pytest.approx(40.05)]


def test_bulk_share_must_be_a_fraction():
    with pytest.raises(ValueError, match="bulk_share"):
        WeightBudget(10, bulk_share=0.0)


def test_single_request_heavier_than_the_margin_passes_on_an_empty_minute():
    b, clock = budget(10, safety=0.5)
    assert b.acquire(40) == 0.0
    assert clock.slept == []


def test_invalid_arguments():
    with pytest.raises(ValueError, match="limit"):
        WeightBudget(0)
    with pytest.raises(ValueError, match="safety"):
        WeightBudget(10, safety=1.0)


def test_thread_safe_accounting():
    b = WeightBudget(10_000_000)
    threads = [threading.Thread(target=lambda: [b.acquire(1) for _ in range(1000)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b.used_weight in {8000, 0}  # 0 only if a wall-clock minute rolled over mid-test
