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


def _timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def test_nothing_pending_never_blocks() -> None:
    p = OrderPriority(hold_ms=50)
    assert _timed(p.step_aside) < 0.005
    assert p.stats().waits == 0


def test_reader_waits_until_the_entry_is_sent() -> None:
    p = OrderPriority(hold_ms=80)
    p.begin("BTCUSDT")
    timer = threading.Timer(0.02, p.end, args=("BTCUSDT",))
    timer.start()
    waited = _timed(p.step_aside)
    timer.join()
    assert 0.015 <= waited < 0.07  # released by end(), well before the hold ran out
    stats = p.stats()
    assert (stats.pending, stats.begun, stats.ended, stats.waits, stats.expired) == (0, 1, 1, 1, 0)
    assert stats.waited_s >= 0.015


def test_waits_for_every_pending_entry() -> None:
    p = OrderPriority(hold_ms=90)
    p.begin("BTCUSDT")
    p.begin("BTCUSDT")
    first = threading.Timer(0.01, p.end, args=("BTCUSDT",))
    second = threading.Timer(0.03, p.end, args=("BTCUSDT",))
    first.start()
    second.start()
    waited = _timed(p.step_aside)
    first.join()
    second.join()
    assert 0.025 <= waited < 0.085
    assert p.stats().pending == 0


def test_an_entry_that_never_ends_stalls_nothing_past_the_hold() -> None:
    p = OrderPriority(hold_ms=20)
    p.begin("BTCUSDT")  # its executor died with the message in its mailbox
    waited = _timed(p.step_aside)
    assert 0.015 <= waited < 0.06
    stats = p.stats()
    assert (stats.pending, stats.expired) == (0, 1)
    assert _timed(p.step_aside) < 0.005  # forgotten: the next frame does not wait again
    p.end("BTCUSDT")  # a late end() of the forgotten entry does not go negative
    assert p.stats().pending == 0


def test_each_begin_extends_the_hold_from_now() -> None:
    p = OrderPriority(hold_ms=30)
    p.begin("BTCUSDT")
    time.sleep(0.02)
    p.begin("BTCUSDT")
    waited = _timed(p.step_aside)
    assert waited >= 0.02  # measured from the second begin(), not the first


def test_zero_hold_turns_the_gate_off() -> None:
    p = OrderPriority(hold_ms=0)
    assert not p.enabled
    p.begin("BTCUSDT")
    assert _timed(p.step_aside) < 0.005
    assert p.stats().begun == 0


@pytest.mark.parametrize("hold", [-1.0, 100.5])
def test_hold_out_of_range_is_refused(hold: float) -> None:
    with pytest.raises(ValueError, match=r"hold_ms must be within 0\.\.100"):
        OrderPriority(hold_ms=hold)


def test_an_executor_never_waits_for_its_own_symbols_entries() -> None:
    p = OrderPriority(hold_ms=60)
    p.begin("BTCUSDT")  # queued in BTCUSDT's executor mailbox behind the caller
    assert _timed(lambda: p.step_aside(own="BTCUSDT")) < 0.005
    p.begin("ETHUSDT")
    timer = threading.Timer(0.02, p.end, args=("ETHUSDT",))
    timer.start()
    waited = _timed(lambda: p.step_aside(own="BTCUSDT"))  # waits for ETHUSDT's entry only
    timer.join()
    assert 0.015 <= waited < 0.05
    assert p.stats().pending == 1
    assert p.stats().expired == 0


# --- CandleTurn: the reader's hand-off to the pair it just told ------------------------------------------


def test_turn_wait_returns_when_the_pair_is_done() -> None:
    turn = CandleTurn()
    threading.Timer(0.02, turn.done).start()
    started = time.perf_counter()
    assert turn.wait(1.0)
    assert 0.01 < time.perf_counter() - started < 0.5


def test_turn_done_before_the_wait_does_not_block_and_twice_is_harmless() -> None:
    turn = CandleTurn()
    turn.done()
    turn.done()
    assert _timed(lambda: turn.wait(1.0)) < 0.05


def test_turn_never_done_blocks_only_for_the_limit() -> None:
    turn = CandleTurn()
    elapsed = _timed(lambda: turn.wait(0.03))
    assert 0.025 < elapsed < 0.5
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
    pair = PairTimeframe.start(
        symbol="BTCUSDT",
        timeframe="1m",
        contract=ContractType.USDT_M,
        params=StrategyParams(),
        trading=True,
        klines=_Klines(),
        portfolio=_broken_portfolio,
        executor=None,
        ledger=None,
    )
    try:
        turn = CandleTurn()
        kline = Kline(
            symbol="BTCUSDT", timeframe="1m", open_time_ms=0, open=1, high=1, low=1, close=1, volume=1
        )
        pair.tell(KlineClosed(kline=kline, received_ns=1, turn=turn))
        assert turn.wait(5.0)
    finally:
        pykka.ActorRegistry.stop_all(timeout=5)


def test_a_reload_turning_the_hold_off_releases_a_waiting_reader_at_once() -> None:
    p = OrderPriority(hold_ms=100)
    p.begin("BTCUSDT")  # its executor never ends it
    timer = threading.Timer(0.02, p.set_hold, args=(0.0,))
    timer.start()
    waited = _timed(p.step_aside)
    timer.join()
    assert waited < 0.08  # not the whole 100 ms hold
    stats = p.stats()
    assert (stats.pending, stats.begun, stats.ended, stats.expired) == (0, 1, 0, 1)
    assert not p.enabled
    p.begin("ETHUSDT")  # off: nothing is counted or waited for
    assert _timed(p.step_aside) < 0.005
    p.set_hold(5.0)
    assert p.enabled
    assert p.hold_ns == 5_000_000
    with pytest.raises(ValueError, match=r"0\.\.100"):
        p.set_hold(101.0)
