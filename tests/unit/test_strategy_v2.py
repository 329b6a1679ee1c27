"""Every V2 rule: the order of the checks, the levels, the trend readings and their boundary, the decider."""

from __future__ import annotations

import dataclasses

import pytest

from nancemakina.actors.domain.exits import EntryFacts, ExitParams
from nancemakina.actors.domain.fills import ExitReason
from nancemakina.actors.domain.model import Direction, Kline, Outcome, SkipReason
from nancemakina.actors.domain.strategies import PairDecider, make_strategy
from nancemakina.actors.domain.strategy_v2 import BtcFilter, StopMode, V2Facts, V2Params, V2Strategy, judge_v2
from nancemakina.actors.domain.trend import TrendReading, TrendTrack, trend_boundary

MIN = 60_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % 3_600_000  # on the hour
PARAMS = V2Params(
    trend_timeframes=("15m", "1h"),
    btc_filter=BtcFilter(symbol="BTCUSDT", timeframe="15m"),
    max_funding_rate=0.001,
    max_concurrent=2,
)
GOOD = V2Facts(
    direction=Direction.LONG,
    signal_open_time_ms=T0,
    entry=100.0,
    atr=2.0,
    stoch_k=50.0,
    pivot=97.0,
    trends=(1, 1),
    btc_trend=1,
    funding=0.0001,
)


def verdict(facts: V2Facts, params: V2Params = PARAMS, **kw: object) -> SkipReason | None:
    args: dict[str, object] = {"position_open": False, "open_positions": 0, "last_taken_signal_ms": None} | kw
    decision = judge_v2(params, facts, symbol="ETHUSDT", timeframe="1m", **args)  # type: ignore[arg-type]
    return decision.reason


def test_taken_with_atr_levels() -> None:
    d = judge_v2(
        PARAMS,
        GOOD,
        symbol="ETHUSDT",
        timeframe="1m",
        position_open=False,
        open_positions=0,
        last_taken_signal_ms=None,
    )
    assert d.outcome is Outcome.TAKEN
    assert (d.entry, d.stop_loss, d.take_profit) == (100.0, 100.0 - 1.5 * 2.0, 100.0 + 3.0 * 2.0)
    assert d.decided_open_time_ms == d.signal_open_time_ms == T0
    short = dataclasses.replace(GOOD, direction=Direction.SHORT, trends=(-1, -1), btc_trend=-1)
    d = judge_v2(
        PARAMS,
        short,
        symbol="ETHUSDT",
        timeframe="1m",
        position_open=False,
        open_positions=0,
        last_taken_signal_ms=None,
    )
    assert (d.stop_loss, d.take_profit) == (103.0, 94.0)


def test_pivot_stop_mode() -> None:
    params = dataclasses.replace(PARAMS, stop_mode=StopMode.PIVOT)
    d = judge_v2(
        params,
        GOOD,
        symbol="ETHUSDT",
        timeframe="1m",
        position_open=False,
        open_positions=0,
        last_taken_signal_ms=None,
    )
    assert (d.stop_loss, d.take_profit) == (97.0, 106.0)
    assert verdict(dataclasses.replace(GOOD, pivot=101.0), params) is SkipReason.INVALID_STOP
    assert verdict(dataclasses.replace(GOOD, pivot=None), params) is SkipReason.INVALID_STOP


@pytest.mark.parametrize(
    ("change", "kw", "reason"),
    [
        ({"atr": None, "trends": (None, -1)}, {}, SkipReason.WARMUP),
        ({"stoch_k": None, "funding": None}, {}, SkipReason.WARMUP),
        ({"trends": (None, -1)}, {"position_open": True}, SkipReason.POSITION_OPEN),
        ({"trends": (None, -1)}, {"last_taken_signal_ms": T0 - 5 * MIN}, SkipReason.MIN_INTERVAL),
        ({"trends": (-1, None), "btc_trend": None}, {}, SkipReason.TREND_STALE),
        ({"trends": (1, 0), "btc_trend": None}, {}, SkipReason.TREND_FILTER),  # 0 agrees with neither side
        ({"btc_trend": None, "stoch_k": 99.0}, {}, SkipReason.BTC_STALE),
        ({"btc_trend": -1, "stoch_k": 99.0}, {}, SkipReason.BTC_FILTER),
        ({"stoch_k": 80.0, "funding": None}, {}, SkipReason.STOCH_RSI_FILTER),
        ({"funding": None, "atr": 0.0}, {}, SkipReason.FUNDING_UNKNOWN),
        ({"funding": -0.0011, "atr": 0.0}, {}, SkipReason.FUNDING_FILTER),
        ({"funding": 0.001, "atr": 0.0}, {}, SkipReason.INVALID_STOP),  # |rate| at the threshold passes
        ({}, {"open_positions": 2}, SkipReason.MAX_CONCURRENT),
        ({"stoch_k": 79.9}, {"open_positions": 1}, None),
    ],
)
def test_checks_in_order(change: dict[str, object], kw: dict[str, object], reason: SkipReason | None) -> None:
    assert verdict(dataclasses.replace(GOOD, **change), **kw) is reason  # type: ignore[arg-type]


def test_short_stoch_and_filters_off() -> None:
    short = dataclasses.replace(GOOD, direction=Direction.SHORT, trends=(-1, -1), btc_trend=-1, stoch_k=20.0)
    assert verdict(short) is SkipReason.STOCH_RSI_FILTER
    off = dataclasses.replace(
        PARAMS, stoch_rsi=False, btc_filter=None, max_funding_rate=None, trend_timeframes=()
    )
    bare = dataclasses.replace(short, stoch_k=None, btc_trend=None, funding=None, trends=())
    assert verdict(bare, off) is None


def test_the_btc_reference_itself_ignores_the_btc_filter() -> None:
    d = judge_v2(
        PARAMS,
        dataclasses.replace(GOOD, btc_trend=None),
        symbol="BTCUSDT",
        timeframe="1m",
        position_open=False,
        open_positions=0,
        last_taken_signal_ms=None,
    )
    assert d.taken


def test_trend_boundary_when_both_candles_close_at_the_same_instant() -> None:
    # The 1m candle 09:59 → 10:00 uses the 1h candle that closed at 09:00; the one closing at 10:00 serves from
    # the 1m candle 10:00 → 10:01 on.
    ten = T0 + 10 * 3_600_000
    assert trend_boundary(ten - MIN, "1h") == ten - 3_600_000
    assert trend_boundary(ten, "1h") == ten
    reading = TrendReading(symbol="ETHUSDT", timeframe="1h", close_time_ms=ten, trend=1)
    assert not reading.current_for(ten - MIN)
    assert reading.current_for(ten)
    assert reading.current_for(ten + 59 * MIN)
    assert not reading.current_for(ten + 60 * MIN)


def test_trend_track_purges_and_publishes() -> None:
    track = TrendTrack("ETHUSDT", "15m", 3)
    readings = [track.add(T0 + k * 15 * MIN, c) for k, c in enumerate([10.0, 11.0, 12.0, 11.0, 8.0, 8.0])]
    assert [r.trend for r in readings] == [None, None, 1, 0, -1, -1]  # 11 on its EMA of 11: neither side
    assert readings[-1].close_time_ms == T0 + 6 * 15 * MIN
    for k in range(200):
        track.add(T0 + (6 + k) * 15 * MIN, 10.0 + k % 3)
    assert len(track._ema.input_values) <= 3 + 32


def candle(i: int, close: float, symbol: str = "ETHUSDT") -> Kline:
    return Kline(
        symbol=symbol,
        timeframe="1m",
        open_time_ms=T0 + i * MIN,
        open=close,
        high=close + 0.5,
        low=close - 0.5,
        close=close,
        volume=1.0,
    )


SMALL = V2Params(
    ema_fast=2,
    ema_slow=3,
    trend_timeframes=("5m",),
    trend_ema=2,
    stoch_rsi=False,
    atr_period=2,
    min_interval_ms=0,
)
# falling, then up: the fast EMA crosses the slow one upwards on candle 8.
CLOSES = [20.0, 19.0, 18.0, 17.0, 16.0, 15.0, 14.0, 13.0, 18.0, 19.0]


def run(strategy: V2Strategy, readings: dict[int, TrendReading]) -> list[tuple[int, SkipReason | None]]:
    out = []
    for i, c in enumerate(CLOSES):
        if i in readings:
            strategy.on_trend(readings[i])
        decision = strategy.on_closed_kline(candle(i, c), position_open=False, open_positions=0)
        if decision is not None:
            out.append((i, decision.reason))
    return out


def test_strategy_uses_the_current_trend_reading_only() -> None:
    five = T0 + 5 * MIN  # the 5m candle closing at 00:05 serves the 1m candles opened 00:05 … 00:09
    agrees = TrendReading(symbol="ETHUSDT", timeframe="5m", close_time_ms=five, trend=1)
    assert run(V2Strategy("ETHUSDT", "1m", SMALL), {}) == [(8, SkipReason.TREND_STALE)]
    assert run(V2Strategy("ETHUSDT", "1m", SMALL), {5: agrees}) == [(8, None)]
    against = dataclasses.replace(agrees, trend=-1)
    assert run(V2Strategy("ETHUSDT", "1m", SMALL), {5: against}) == [(8, SkipReason.TREND_FILTER)]
    older = dataclasses.replace(agrees, close_time_ms=T0)
    assert run(V2Strategy("ETHUSDT", "1m", SMALL), {5: older}) == [(8, SkipReason.TREND_STALE)]
    other = dataclasses.replace(agrees, symbol="SOLUSDT")  # not this pair's: ignored
    assert run(V2Strategy("ETHUSDT", "1m", SMALL), {5: other}) == [(8, SkipReason.TREND_STALE)]
    # a later reading first, then an older one: the newest is kept
    strategy = V2Strategy("ETHUSDT", "1m", SMALL)
    strategy.on_trend(agrees)
    strategy.on_trend(older)
    assert run(strategy, {}) == [(8, None)]


def test_a_reading_of_the_same_instant_told_early_does_not_hide_the_one_in_use() -> None:
    # In a replay step (or live) the 5m actor may tell the reading of the candle closing at 00:10 before the
    # 1m candle 00:09 → 00:10 is decided; that candle still uses the reading of 00:05.
    five = TrendReading(symbol="ETHUSDT", timeframe="5m", close_time_ms=T0 + 5 * MIN, trend=1)
    ten = dataclasses.replace(five, close_time_ms=T0 + 10 * MIN, trend=-1)
    strategy = V2Strategy("ETHUSDT", "1m", SMALL)
    strategy.on_trend(five)
    strategy.on_trend(ten)
    assert run(strategy, {}) == [(8, None)]


def test_btc_readings_reach_only_the_btc_check() -> None:
    params = dataclasses.replace(
        SMALL, trend_timeframes=(), btc_filter=BtcFilter(symbol="BTCUSDT", timeframe="5m")
    )
    btc = TrendReading(symbol="BTCUSDT", timeframe="5m", close_time_ms=T0 + 5 * MIN, trend=-1)
    assert run(V2Strategy("ETHUSDT", "1m", params), {}) == [(8, SkipReason.BTC_STALE)]
    assert run(V2Strategy("ETHUSDT", "1m", params), {3: btc}) == [(8, SkipReason.BTC_FILTER)]
    assert run(V2Strategy("ETHUSDT", "1m", params), {3: dataclasses.replace(btc, trend=1)}) == [(8, None)]


def test_decider_closes_on_reversal_then_judges_the_crossover_flat() -> None:
    params = dataclasses.replace(SMALL, trend_timeframes=())
    decider = PairDecider(make_strategy("ETHUSDT", "1m", params), ExitParams(reversal_exit=True))
    short = EntryFacts(direction=Direction.SHORT, entry_open_time_ms=T0)
    outcomes = [
        decider.on_closed_kline(candle(i, c), position=short, open_positions=2) for i, c in enumerate(CLOSES)
    ]
    assert outcomes[8].exit is ExitReason.REVERSAL
    assert outcomes[8].decision is not None
    assert outcomes[8].decision.taken  # flat after the exit: the crossover flips the position
    assert all(o.exit is None for k, o in enumerate(outcomes) if k != 8)
    again = decider.on_closed_kline(candle(8, 18.0), position=short, open_positions=2)
    assert again.exit is None  # a repeated candle changes nothing
    assert again.decision is None


def test_decider_time_exit_before_the_decision() -> None:
    decider = PairDecider(make_strategy("ETHUSDT", "1m", SMALL), ExitParams(time_exit_candles=3))
    position = EntryFacts(direction=Direction.LONG, entry_open_time_ms=T0 + 5 * MIN)
    exits = [
        decider.on_closed_kline(candle(i, c), position=position, open_positions=1).exit
        for i, c in enumerate(CLOSES)
    ]
    assert exits == [None] * 8 + [ExitReason.TIME_EXIT, ExitReason.TIME_EXIT]


def test_memory_stays_bounded() -> None:
    params = V2Params(trend_timeframes=("5m",), stop_mode=StopMode.PIVOT)
    strategy = V2Strategy("ETHUSDT", "1m", params)
    for i in range(3_000):
        close = 100.0 + (i % 37) * 0.1 - (i % 11) * 0.05
        strategy.on_trend(TrendReading(symbol="ETHUSDT", timeframe="5m", close_time_ms=T0 + i * MIN, trend=1))
        strategy.on_closed_kline(candle(i, close), position_open=False, open_positions=0)
    held = {
        "ema_fast": len(strategy._fast.input_values),
        "ema_slow": len(strategy._slow.input_values),
        "atr": len(strategy._atr.input_values),
        "stoch": len(strategy._stoch.input_values) if strategy._stoch is not None else 0,
    }
    assert held["ema_fast"] <= 9 + 32
    assert held["ema_slow"] <= 21 + 32
    assert held["atr"] <= 14 + 32
    assert held["stoch"] <= 14 + 14 - 1 + 3 + 32
    assert len(strategy._lows) == params.pivot_lookback + 1
    assert all(len(r) <= 2 for r in strategy._trends.values())
