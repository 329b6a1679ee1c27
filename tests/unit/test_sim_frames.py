"""FrameSchedule: the local exchange's unclosed kline updates, at the path's corners or at Binance's rate."""

from __future__ import annotations

import pytest

from nancemakina.actors.sim.config import SimConfig
from nancemakina.actors.sim.frames import FrameSchedule

UP = (100.0, 98.0, 104.0, 103.0)  # a rising candle's path: open → low → high → close
DOWN = (100.0, 101.0, 95.0, 96.0)  # open → high → low → close


def test_binance_rate_is_a_push_every_250_ms_the_last_one_the_close() -> None:
    frames = FrameSchedule(update_interval_ms=250)
    assert len(frames) == 239  # with the closed candle at 60,000 ms: 240 pushes a minute
    assert frames.offsets_ms[:3] == (250, 500, 750)
    assert frames.offsets_ms[-1] == 59_750


def test_updates_walk_the_path_from_trade_to_trade_on_the_tick() -> None:
    frames = FrameSchedule(update_interval_ms=250)
    points = [frames.point(UP, k, 0.1) for k in range(len(frames))]
    prices = [p for _, p in points]
    assert prices[0] == 100.0  # 250 ms after the open: a third of a tick down the first leg, rounded
    assert prices[2] == 99.9
    assert prices[59] == 98.0  # the adverse extreme at the tape's second trade, +15 s
    assert prices[119] == 104.0  # the favourable one at its third, +30 s
    assert prices[179:] == [103.0] * 60  # the close from its last, +45 s, on
    assert min(prices[:60]) == 98.0
    assert all(abs(p * 10 - round(p * 10)) < 1e-9 for p in prices)  # every price on the 0.1 tick
    reached = [done for done, _ in points]  # path points passed: the tape's trades happen there
    assert reached == sorted(reached)
    assert (reached[0], reached[59], reached[119], reached[179]) == (1, 2, 3, 4)
    assert [frames.point(DOWN, k, 0.1)[1] for k in (59, 119)] == [101.0, 95.0]


def test_the_same_candle_always_gives_the_same_frames() -> None:
    a = [FrameSchedule(update_interval_ms=250).point(UP, k, 0.01) for k in range(239)]
    b = [FrameSchedule(update_interval_ms=250).point(UP, k, 0.01) for k in range(239)]
    assert a == b


def test_corner_updates_are_the_path_points() -> None:
    frames = FrameSchedule(updates_per_candle=3)
    assert frames.offsets_ms == (0, 15_000, 30_000)
    assert [frames.point(UP, k, 0.1) for k in range(3)] == [(1, 100.0), (2, 98.0), (3, 104.0)]
    assert len(FrameSchedule(updates_per_candle=0)) == 0


@pytest.mark.parametrize("interval", [0, 7, 70_000])
def test_an_interval_must_divide_the_minute(interval: int) -> None:
    with pytest.raises(ValueError, match="60000"):
        FrameSchedule(update_interval_ms=interval)
    with pytest.raises(ValueError, match="60000"):
        SimConfig(update_interval_ms=interval)
