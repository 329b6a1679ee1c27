"""Every V1 rule on hand-built candles, both directions, and the bounded-memory guarantee."""

from __future__ import annotations

import pytest

from nancemakina.actors.domain.model import Decision, Direction, Kline, Outcome, SkipReason
from nancemakina.actors.domain.strategy import PairStrategy, StrategyParams

T0 = 1_700_000_040_000 - (1_700_000_040_000 % 60_000)


def candle(
    i: int, close: float, *, low: float | None = None, high: float | None = None, volume: float = 1.0
) -> Kline:
    return Kline(
        symbol="TESTUSDT",
        timeframe="1m",
        open_time_ms=T0 + i * 60_000,
        open=close,
        high=max(close, high) if high is not None else close,
        low=min(close, low) if low is not None else close,
        close=close,
        volume=volume,
    )


SMALL = StrategyParams(short_period=2, long_period=4, pivot_lookback=3, tp_sl_ratio=2.0, min_interval_ms=0)


def feed(
    params: StrategyParams,
    closes: list[float],
    *,
    lows: dict[int, float] | None = None,
    volumes: dict[int, float] | None = None,
    position_open: bool = False,
    open_positions: int = 0,
) -> list[tuple[int, Decision]]:
    strategy = PairStrategy("TESTUSDT", "1m", params)
    out = []
    for i, c in enumerate(closes):
        k = candle(i, c, low=(lows or {}).get(i), volume=(volumes or {}).get(i, 1.0))
        d = strategy.on_closed_kline(k, position_open=position_open, open_positions=open_positions)
        if d is not None:
            out.append((i, d))
    return out


# short=2/long=4: sides at idx3..5 are -1, -1, +1 → LONG crossover on candle 5.
LONG_CLOSES = [10.0, 9.0, 8.0, 7.0, 6.0, 10.0, 12.0]
# mirror: rising then falling → SHORT on candle 5.
SHORT_CLOSES = [2.0, 3.0, 4.0, 5.0, 6.0, 2.0, 1.0]


def test_long_crossover_taken_with_pivot_stop_and_take_profit() -> None:
    [(i, d)] = feed(SMALL, LONG_CLOSES)
    assert i == 5
    assert d.direction is Direction.LONG
    assert d.outcome is Outcome.TAKEN
    assert d.reason is None
    assert d.signal_open_time_ms == d.decided_open_time_ms == T0 + 5 * 60_000
    assert d.entry == 10.0
    assert d.stop_loss == 6.0  # lowest low of candles 2..4 (8, 7, 6): the 3 before the signal candle
    assert d.take_profit == 10.0 + (10.0 - 6.0) * 2.0


def test_short_crossover_taken_with_pivot_high() -> None:
    [(i, d)] = feed(SMALL, SHORT_CLOSES)
    assert i == 5
    assert d.direction is Direction.SHORT
    assert d.taken
    assert d.stop_loss == 6.0  # highest high of candles 2..4
    assert d.take_profit == 2.0 - (6.0 - 2.0) * 2.0


def test_pivot_window_excludes_signal_candle_and_older_candles() -> None:
    # candle 1 has a deep low outside the 3-candle window; the signal candle's own low is ignored too.
    lows = {1: 1.0, 5: 0.5}
    [(_, d)] = feed(SMALL, LONG_CLOSES, lows=lows)
    assert d.stop_loss == 6.0


def test_tie_is_neither_side() -> None:
    # idx5: short (6+9)/2 = 7.5 == long (8+7+6+9)/4 = 7.5 → tie; idx6 goes above → LONG on 6.
    [(i, d)] = feed(SMALL, [10.0, 9.0, 8.0, 7.0, 6.0, 9.0, 12.0])
    assert i == 6
    assert d.direction is Direction.LONG


def test_tie_then_same_side_is_no_crossover() -> None:
    # -1, tie, -1 again: no crossover at all.
    assert feed(SMALL, [10.0, 9.0, 8.0, 7.0, 6.0, 9.0, 3.0]) == []


def test_confirmation_enters_at_confirming_close() -> None:
    params = StrategyParams(
        short_period=2, long_period=4, pivot_lookback=3, tp_sl_ratio=2.0, buffer_candles=1
    )
    [(i, d)] = feed(params, LONG_CLOSES)
    assert i == 6
    assert d.taken
    assert d.signal_open_time_ms == T0 + 5 * 60_000
    assert d.decided_open_time_ms == T0 + 6 * 60_000
    assert d.entry == 12.0
    assert d.stop_loss == 6.0


def test_not_confirmed_when_side_reverts_and_reversal_is_a_new_crossover() -> None:
    params = StrategyParams(
        short_period=2, long_period=4, pivot_lookback=3, buffer_candles=1, min_interval_ms=0
    )
    decisions = feed(params, [10.0, 9.0, 8.0, 7.0, 6.0, 10.0, 2.0, 1.0])
    (i, d), (j, e) = decisions
    assert (i, d.direction, d.reason) == (6, Direction.LONG, SkipReason.NOT_CONFIRMED)
    assert d.outcome is Outcome.SKIPPED
    assert (j, e.direction, e.signal_open_time_ms) == (7, Direction.SHORT, T0 + 6 * 60_000)
    assert e.taken


def test_tie_during_confirmation_breaks_it() -> None:
    params = StrategyParams(short_period=2, long_period=4, pivot_lookback=3, buffer_candles=2)
    # LONG at 5 (side +1); idx6: short (10+x)/2 == long (7+6+10+x)/4 → x = 3 gives a tie.
    [(i, d)] = feed(params, [10.0, 9.0, 8.0, 7.0, 6.0, 10.0, 3.0, 20.0])
    assert i == 6
    assert d.reason is SkipReason.NOT_CONFIRMED


def test_min_interval_counts_candle_time_since_last_taken_signal() -> None:
    closes = [10.0, 9.0, 8.0, 7.0, 6.0, 10.0, 12.0, 3.0]  # LONG at 5, SHORT at 7
    params = StrategyParams(short_period=2, long_period=4, pivot_lookback=3, min_interval_ms=3 * 60_000)
    (_, first), (_, second) = feed(params, closes)
    assert first.taken
    assert second.reason is SkipReason.MIN_INTERVAL
    loose = StrategyParams(short_period=2, long_period=4, pivot_lookback=3, min_interval_ms=2 * 60_000)
    (_, first), (_, second) = feed(loose, closes)
    assert first.taken
    assert second.taken  # exactly 2 minutes of candle time apart is allowed


def test_skipped_signal_does_not_restart_the_interval() -> None:
    closes = [10.0, 9.0, 8.0, 7.0, 6.0, 10.0, 12.0, 3.0]
    params = StrategyParams(short_period=2, long_period=4, pivot_lookback=3, min_interval_ms=3 * 60_000)
    decisions = feed(params, closes, position_open=True)
    assert [d.reason for _, d in decisions] == [SkipReason.POSITION_OPEN, SkipReason.POSITION_OPEN]


def test_invalid_stop_when_entry_not_beyond_pivot() -> None:
    # LONG on idx5 with entry 7.9 while the previous candle's low is 8.
    params = StrategyParams(short_period=2, long_period=4, pivot_lookback=1)
    [(i, d)] = feed(params, [20.0, 9.0, 8.0, 7.0, 8.0, 7.9])
    assert i == 5
    assert d.direction is Direction.LONG
    assert d.reason is SkipReason.INVALID_STOP
    assert d.take_profit is None


def test_invalid_stop_short() -> None:
    params = StrategyParams(short_period=2, long_period=4, pivot_lookback=1)
    [(_, d)] = feed(params, [1.0, 9.0, 10.0, 11.0, 10.0, 10.1])
    assert d.direction is Direction.SHORT
    assert d.reason is SkipReason.INVALID_STOP


@pytest.mark.parametrize(("signal_volume", "expected"), [(1.0, SkipReason.VOLUME_FILTER), (10.0, None)])
def test_volume_filter(signal_volume: float, expected: SkipReason | None) -> None:
    params = StrategyParams(
        short_period=2, long_period=4, pivot_lookback=3, volume_filter=True, volume_period=3, volume_ratio=1.5
    )
    [(_, d)] = feed(params, LONG_CLOSES, volumes={5: signal_volume})
    assert d.reason is expected


@pytest.mark.parametrize(("min_width", "expected"), [(1000.0, SkipReason.VOLATILITY_FILTER), (1.0, None)])
def test_volatility_filter(min_width: float, expected: SkipReason | None) -> None:
    params = StrategyParams(
        short_period=2,
        long_period=4,
        pivot_lookback=3,
        volatility_filter=True,
        bb_period=3,
        bb_min_width_pct=min_width,
    )
    [(_, d)] = feed(params, SHORT_CLOSES)
    assert d.reason is expected


def test_position_open_skips() -> None:
    [(_, d)] = feed(SMALL, LONG_CLOSES, position_open=True)
    assert d.reason is SkipReason.POSITION_OPEN


def test_max_concurrent_skips_only_at_the_limit() -> None:
    params = StrategyParams(short_period=2, long_period=4, pivot_lookback=3, max_concurrent=2)
    [(_, d)] = feed(params, LONG_CLOSES, open_positions=2)
    assert d.reason is SkipReason.MAX_CONCURRENT
    [(_, d)] = feed(params, LONG_CLOSES, open_positions=1)
    assert d.taken


def test_rule_order_first_failure_wins() -> None:
    # position open AND volume too low: position_open is evaluated first.
    params = StrategyParams(
        short_period=2, long_period=4, pivot_lookback=3, volume_filter=True, volume_period=3
    )
    [(_, d)] = feed(params, LONG_CLOSES, position_open=True)
    assert d.reason is SkipReason.POSITION_OPEN


def test_duplicate_and_old_candles_are_ignored() -> None:
    strategy = PairStrategy("TESTUSDT", "1m", SMALL)
    for i, c in enumerate(LONG_CLOSES[:5]):
        strategy.on_closed_kline(candle(i, c), position_open=False, open_positions=0)
    again = strategy.on_closed_kline(candle(4, 100.0), position_open=False, open_positions=0)
    assert again is None
    assert strategy.snapshot().candles == 5
    d = strategy.on_closed_kline(candle(5, 10.0), position_open=False, open_positions=0)
    assert d is not None
    assert d.taken


def test_memory_stays_bounded() -> None:
    params = StrategyParams(volume_filter=True, volatility_filter=True)
    strategy = PairStrategy("TESTUSDT", "1m", params)
    for i in range(20_000):
        c = 100.0 + (i % 37) - (i % 53) * 0.5
        strategy.on_closed_kline(candle(i, c, volume=1.0 + i % 5), position_open=False, open_positions=0)
    for indicator in (strategy._short, strategy._long, strategy._volume, strategy._bands):
        assert indicator is not None
        assert len(indicator.input_values) <= params.long_period + 1 + 32
        assert len(indicator.output_values) <= params.long_period + 1 + 32


def test_snapshot_reports_state() -> None:
    strategy = PairStrategy("TESTUSDT", "1m", SMALL)
    for i, c in enumerate(LONG_CLOSES):
        strategy.on_closed_kline(candle(i, c), position_open=False, open_positions=0)
    snap = strategy.snapshot()
    assert snap.candles == 7
    assert snap.side == 1
    assert snap.sma_short == 11.0
    assert snap.last_decision is not None
    assert snap.last_decision.direction is Direction.LONG
    assert len(snap.recent) == 5
