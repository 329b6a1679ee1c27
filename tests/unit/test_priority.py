"""OrderPriority: the reader blocks while an entry is pending, never longer than the hold, never on leaks.

CandleTurn: the reader waits for the pair it told, never longer than the limit, even if the pair fails."""

from __future__ import annotations

import threading
import time

import pykka
import pytest

from nancemakina.actors.domain.model import ContractType, Kline, PortfolioView
from nancemakina.actors.domain.strategy import StrategyParams
from nancemakina.actors.messages import KlineClosed
from nancemakina.actors.runtime.scheduling import CandleTurn, OrderPriority
from nancemakina.actors.tree.pair_timeframe import PairTimeframe
from nancemakina.actors.tree.rest_queue import RestQueue
from tests.unit.clock_support import WAIT_S, FakeClock, finished, returns_while_time_stands_still, started_in
from tests.waiting import wait_until


def test_nothing_pending_never_blocks() -> None:
    clock = FakeClock()
    p = OrderPriority(hold_ms=50, clock=clock)
    assert returns_while_time_stands_still(clock, p.step_aside)
    assert p.stats().waits == 0


def test_reader_waits_until_the_entry_is_sent() -> None:
    clock = FakeClock()
    p = OrderPriority(hold_ms=80, clock=clock)
    p.begin("BTCUSDT")
    reader = started_in(clock, p.step_aside)
    clock.advance_ms(20)
    p.end("BTCUSDT")
    assert finished(reader)  # released by end(), well before the hold ran out
    stats = p.stats()
    assert (stats.pending, stats.begun, stats.ended, stats.waits, stats.expired) == (0, 1, 1, 1, 0)
    assert stats.waited_s == pytest.approx(0.020)


def test_waits_for_every_pending_entry() -> None:
    clock = FakeClock()
    p = OrderPriority(hold_ms=90, clock=clock)
    p.begin("BTCUSDT")
    p.begin("BTCUSDT")
    reader = started_in(clock, p.step_aside)
    clock.advance_ms(10)
    p.end("BTCUSDT")
    clock.advance_ms(20)
    p.end("BTCUSDT")
    assert finished(reader)
    assert p.stats().pending == 0
    assert p.stats().waited_s == pytest.approx(0.030)  # until the second end(), not the first


def test_an_entry_that_never_ends_stalls_nothing_past_the_hold() -> None:
    clock = FakeClock()
    p = OrderPriority(hold_ms=20, clock=clock)
    p.begin("BTCUSDT")  # its executor died with the message in its mailbox
    reader = started_in(clock, p.step_aside)
    clock.advance_ms(20)
    assert finished(reader)
    stats = p.stats()
    assert (stats.pending, stats.expired, stats.waits) == (0, 1, 1)
    assert stats.waited_s == pytest.approx(0.020)
    assert returns_while_time_stands_still(clock, p.step_aside)  # forgotten: the next frame does not wait
    assert p.stats().waits == 1
    p.end("BTCUSDT")  # a late end() of the forgotten entry does not go negative
    assert p.stats().pending == 0


def test_the_default_clock_is_real_time() -> None:
    p = OrderPriority(hold_ms=20)
    started = time.perf_counter()  # the same clock as the default perf_counter_ns
    p.begin("BTCUSDT")
    p.step_aside()
    assert time.perf_counter() - started >= 0.0199  # a lower bound only: how late it wakes is the OS's
    assert p.stats().expired == 1


def test_each_begin_extends_the_hold_from_now() -> None:
    clock = FakeClock()
    p = OrderPriority(hold_ms=30, clock=clock)
    p.begin("BTCUSDT")
    clock.advance_ms(20)
    p.begin("BTCUSDT")
    reader = started_in(clock, p.step_aside)
    clock.advance_ms(20)  # 40 ms after the first begin(), 20 ms after the second
    clock.wait_read(reader)
    assert p.stats().expired == 0  # the reader saw the time and still waits (stats() takes its lock)
    clock.advance_ms(10)
    assert finished(reader)
    stats = p.stats()
    assert (stats.pending, stats.expired, stats.waits) == (0, 2, 1)  # both begin()s forgotten at once
    assert stats.waited_s == pytest.approx(0.030)  # measured from the second begin(), not the first


def test_zero_hold_turns_the_gate_off() -> None:
    clock = FakeClock()
    p = OrderPriority(hold_ms=0, clock=clock)
    assert not p.enabled
    p.begin("BTCUSDT")
    assert returns_while_time_stands_still(clock, p.step_aside)
    assert p.stats().begun == 0


@pytest.mark.parametrize("hold", [-1.0, 100.5])
def test_hold_out_of_range_is_refused(hold: float) -> None:
    with pytest.raises(ValueError, match=r"hold_ms must be within 0\.\.100"):
        OrderPriority(hold_ms=hold)


def test_an_executor_never_waits_for_its_own_symbols_entries() -> None:
    clock = FakeClock()
    p = OrderPriority(hold_ms=60, clock=clock)
    p.begin("BTCUSDT")  # queued in BTCUSDT's executor mailbox behind the caller
    assert returns_while_time_stands_still(clock, lambda: p.step_aside(own="BTCUSDT"))
    p.begin("ETHUSDT")
    reader = started_in(clock, lambda: p.step_aside(own="BTCUSDT"))  # waits for ETHUSDT's entry only
    clock.advance_ms(20)
    p.end("ETHUSDT")
    assert finished(reader)
    stats = p.stats()
    assert stats.waited_s == pytest.approx(0.020)
    assert stats.pending == 1
    assert stats.expired == 0


# --- CandleTurn: the reader's hand-off to the pair it just told ------------------------------------------


def test_turn_wait_returns_when_the_pair_is_done() -> None:
    turn = CandleTurn()
    assert not turn.wait(0.0)  # not done yet: the reader would block
    pair = threading.Thread(target=turn.done)
    pair.start()
    assert turn.wait(WAIT_S)  # True: woken by done(), not by the limit
    pair.join()


def test_turn_done_before_the_wait_does_not_block_and_twice_is_harmless() -> None:
    turn = CandleTurn()
    turn.done()
    turn.done()
    assert turn.wait(0.0)  # done already: a wait that may not block succeeds
    assert not turn.wait(0.0)  # one-shot: the second done() did not count twice


def test_turn_never_done_blocks_only_for_the_limit() -> None:
    # Real time: the limit is the lock's own acquire timeout, there is no clock to inject.
    turn = CandleTurn()
    started = time.perf_counter()
    assert not turn.wait(0.03)
    assert 0.025 < time.perf_counter() - started < 0.5
    assert not turn.wait(0.0)


class _Klines:
    def recent_closed_klines(self, symbol, contract, interval, count):  # type: ignore[no-untyped-def]
        return []

    def closed_klines_range(self, symbol, contract, interval, start, end):  # type: ignore[no-untyped-def]
        return []


def _broken_portfolio() -> PortfolioView:
    raise RuntimeError("portfolio snapshot failed")


def test_a_pair_finishes_its_turn_even_when_the_candle_fails() -> None:
    """A pair crashing on a candle must not hold the reader for the whole hand-off limit."""
    klines = RestQueue([_Klines()])
    klines.start()
    pair = PairTimeframe.start(
        symbol="BTCUSDT",
        timeframe="1m",
        contract=ContractType.USDT_M,
        params=StrategyParams(),
        trading=True,
        rest=klines,
        portfolio=_broken_portfolio,
        executor=None,
        ledger=None,
    )
    try:
        turn = CandleTurn()
        kline = Kline(
            symbol="BTCUSDT", timeframe="1m", open_time_ms=0, open=1, high=1, low=1, close=1, volume=1
        )
        wait_until(lambda: pair.proxy().status().get().warm, 5, "warm")
        pair.tell(KlineClosed(kline=kline, received_ns=1, turn=turn))
        assert turn.wait(5.0)
    finally:
        pykka.ActorRegistry.stop_all(timeout=5)
        klines.close()


def test_a_reload_turning_the_hold_off_releases_a_waiting_reader_at_once() -> None:
    clock = FakeClock()
    p = OrderPriority(hold_ms=100, clock=clock)
    p.begin("BTCUSDT")  # its executor never ends it
    reader = started_in(clock, p.step_aside)
    p.set_hold(0.0)
    assert finished(reader)  # no time passed: not the whole 100 ms hold
    stats = p.stats()
    assert (stats.pending, stats.begun, stats.ended, stats.expired) == (0, 1, 0, 1)
    assert not p.enabled
    p.begin("ETHUSDT")  # off: nothing is counted or waited for
    assert returns_while_time_stands_still(clock, p.step_aside)
    p.set_hold(5.0)
    assert p.enabled
    assert p.hold_ns == 5_000_000
    with pytest.raises(ValueError, match=r"0\.\.100"):
        p.set_hold(101.0)
