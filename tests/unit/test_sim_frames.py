"""FrameSchedule: the local exchange's unclosed kline updates, at the path's corners or at Binance's rate."""

from __future__ import annotations

import pytest

from nancemakina.actors.sim.config import SimConfig
from nancemakina.actors.sim.frames import FrameSchedule

UP = (100.0, 104.0, 98.0, 103.0, 60.0)  # close above open: the path walks open → low → high → close
DOWN = (100.0, 101.0, 95.0, 96.0, 60.0)  # open → high → low → close


def test_binance_rate_is_a_push_every_250_ms_the_last_one_the_close() -> None:
    frames = FrameSchedule(update_interval_ms=250)
    assert len(frames) == 239  # with the closed candle at 60,000 ms: 240 pushes a minute
    assert frames.offsets_ms[:3] == (250, 500, 750)
    assert frames.offsets_ms[-1] == 59_750


def test_updates_walk_the_path_in_three_equal_legs_on_the_tick() -> None:
    frames = FrameSchedule(update_interval_ms=250)
    candles = [frames.partial(*UP, k, 0.1) for k in range(len(frames))]
    closes = [c[3] for c in candles]
    assert closes[0] == 100.0  # 250 ms after the open: a quarter tick down the first leg, rounded
    assert closes[4] == 99.9
    assert closes[79] == 98.0  # the adverse extreme at a third of the minute
    assert closes[159] == 104.0  # the favourable one at two thirds
    assert 103.0 <= closes[-1] <= 104.0  # on the way to the close
    assert min(closes[:80]) == 98.0
    assert all(abs(p * 10 - round(p * 10)) < 1e-9 for p in closes)  # every price on the 0.1 tick
    highs, lows = [c[1] for c in candles], [c[2] for c in candles]
    assert highs == sorted(highs)
    assert lows == sorted(lows, reverse=True)
    assert all(c[2] <= c[3] <= c[1] for c in candles)
    assert (highs[-1], lows[-1]) == (104.0, 98.0)
    volumes = [c[4] for c in candles]
    assert volumes[0] == 60.0 / 240
    assert volumes == sorted(volumes)
    assert volumes[-1] < 60.0
    down = [frames.partial(*DOWN, k, 0.1)[3] for k in (79, 159)]
    assert down == [101.0, 95.0]


def test_the_same_candle_always_gives_the_same_frames() -> None:
    a = [FrameSchedule(update_interval_ms=250).partial(*UP, k, 0.01) for k in range(239)]
    b = [FrameSchedule(update_interval_ms=250).partial(*UP, k, 0.01) for k in range(239)]
    assert a == b


def test_corner_updates_are_the_path_points() -> None:
    frames = FrameSchedule(updates_per_candle=3)
    assert frames.offsets_ms == (0, 15_000, 30_000)
    assert [frames.partial(*UP, k, 0.1)[3] for k in range(3)] == [100.0, 98.0, 104.0]
    assert frames.partial(*UP, 1, 0.1) == [100.0, 100.0, 98.0, 98.0, 30.0]
    assert len(FrameSchedule(updates_per_candle=0)) == 0


@pytest.mark.parametrize("interval", [0, 7, 70_000])
def test_an_interval_must_divide_the_minute(interval: int) -> None:
    with pytest.raises(ValueError, match="60000"):
        FrameSchedule(update_interval_ms=interval)
    with pytest.raises(ValueError, match="60000"):
        SimConfig(update_interval_ms=interval)
