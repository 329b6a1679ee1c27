"""The exits: the trailing stop on the candle path with the stop and target, time and reversal exits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nancemakina.actors.domain.exits import (
    EntryFacts,
    ExitParams,
    close_time_exit,
    entry_candle_open,
    placed_trailing,
    trailing_activation,
)
from nancemakina.actors.domain.fills import (
    ExitReason,
    TrailingStop,
    exit_on_candle,
    first_exit,
    first_trigger,
)
from nancemakina.actors.domain.model import Direction

LONG, SHORT = Direction.LONG, Direction.SHORT
TICK = Decimal("0.1")
MIN = 60_000


def armed(*, sell: bool, extreme: float, callback: float = 1.0) -> TrailingStop:
    return TrailingStop(sell=sell, callback_pct=callback, activation=None, extreme=extreme)


def test_without_a_trailing_stop_first_exit_is_first_trigger() -> None:
    paths = [
        (100.0, 98.0, 103.0, 101.0),
        (100.0, 102.5, 97.0, 99.0),
        (96.0, 95.0, 99.0, 98.0),
        (104.0, 103.0, 105.0, 104.5),
    ]
    for path in paths:
        for direction in (LONG, SHORT):
            stop, take = (97.5, 103.0) if direction is LONG else (102.5, 97.5)
            hit, after = first_exit(path, direction=direction, stop=stop, take_profit=take, trailing=None)
            assert hit == first_trigger(path, direction=direction, stop=stop, take_profit=take)
            assert after is None


def test_trailing_stop_follows_the_high_and_triggers_on_the_way_down() -> None:
    # LONG path open → low → high → close: the high lifts the extreme to 110, the close falls through 108.9.
    hit, after = first_exit(
        (100.0, 99.5, 110.0, 105.0),
        direction=LONG,
        stop=95.0,
        take_profit=120.0,
        trailing=armed(sell=True, extreme=100.0),
    )
    assert hit == (ExitReason.TRAILING_STOP, 110.0 * 0.99)
    assert after is None


def test_trailing_stop_never_triggers_while_the_price_moves_in_favour() -> None:
    hit, after = first_exit(
        (100.0, 99.5, 110.0, 109.5),
        direction=LONG,
        stop=95.0,
        take_profit=120.0,
        trailing=armed(sell=True, extreme=100.0),
    )
    assert hit is None
    assert after == armed(sell=True, extreme=110.0)  # carried to the next candle


def test_on_one_falling_move_the_higher_level_is_reached_first() -> None:
    # Extreme 110 → trailing level 108.9, above the stop at 108: the fall from 110 meets the trailing first.
    path = (110.0, 100.0, 101.0, 100.5)
    hit, _ = first_exit(
        path, direction=LONG, stop=108.0, take_profit=None, trailing=armed(sell=True, extreme=110.0)
    )
    assert hit == (ExitReason.TRAILING_STOP, 110.0 * 0.99)
    # the stop above the trailing level: the stop is met first
    hit, _ = first_exit(
        path, direction=LONG, stop=109.5, take_profit=None, trailing=armed(sell=True, extreme=110.0)
    )
    assert hit == (ExitReason.STOP_LOSS, 109.5)


def test_a_gap_through_both_fills_at_the_open_as_the_stop() -> None:
    hit, _ = first_exit(
        (90.0, 89.0, 92.0, 91.0),
        direction=LONG,
        stop=95.0,
        take_profit=None,
        trailing=armed(sell=True, extreme=110.0),
    )
    assert hit == (ExitReason.STOP_LOSS, 90.0)


def test_activation_arms_it_and_the_extreme_starts_there_for_a_short() -> None:
    trail = TrailingStop(sell=False, callback_pct=1.0, activation=95.0, extreme=None)
    # SHORT path open → high → low → close: the low 94 arms it (extreme 94), the close 95 > 94.94 triggers.
    hit, _ = first_exit(
        (100.0, 101.0, 94.0, 95.0), direction=SHORT, stop=105.0, take_profit=None, trailing=trail
    )
    assert hit == (ExitReason.TRAILING_STOP, 94.0 * 1.01)
    _, after = first_exit(
        (100.0, 101.0, 96.0, 97.0), direction=SHORT, stop=105.0, take_profit=None, trailing=trail
    )
    assert after == trail  # 96 did not reach 95: still unarmed


def test_exit_on_candle_takes_the_trailing_stop() -> None:
    hit = exit_on_candle(
        direction=SHORT, stop=110.0, take_profit=80.0, open_=100.0, high=101.0, low=90.0, close=95.0,
        trailing=armed(sell=False, extreme=100.0, callback=2.0),
    )  # fmt: skip
    assert hit == (ExitReason.TRAILING_STOP, 90.0 * 1.02)


def test_activation_price_rounds_away_from_the_entry() -> None:
    exits = ExitParams(callback_pct=0.5, activation_ratio=1.5)
    assert trailing_activation(exits, LONG, entry=100.0, stop=99.03, tick=TICK) == 101.5  # 101.455 → up
    assert trailing_activation(exits, SHORT, entry=100.0, stop=100.97, tick=TICK) == 98.5  # 98.545 → down
    assert (
        trailing_activation(ExitParams(activation_ratio=None), LONG, entry=100.0, stop=99.0, tick=TICK)
        is None
    )


def test_placed_trailing_is_armed_at_the_price_when_the_activation_is_already_reached() -> None:
    exits = ExitParams(callback_pct=0.5, activation_ratio=1.0)
    waiting = placed_trailing(exits, LONG, entry=100.0, stop=99.0, price=100.0, tick=TICK)
    assert waiting == TrailingStop(sell=True, callback_pct=0.5, activation=101.0, extreme=None)
    reached = placed_trailing(exits, LONG, entry=100.0, stop=99.0, price=101.2, tick=TICK)
    assert reached == TrailingStop(sell=True, callback_pct=0.5, activation=None, extreme=101.2)
    assert placed_trailing(ExitParams(), LONG, entry=100.0, stop=99.0, price=100.0, tick=TICK) is None


T0 = 1_750_000_020_000 - 1_750_000_020_000 % MIN


@pytest.mark.parametrize(
    ("exits", "minutes_after", "crossover", "expected"),
    [
        (ExitParams(time_exit_candles=3), 2, None, None),
        (ExitParams(time_exit_candles=3), 3, None, ExitReason.TIME_EXIT),
        (ExitParams(time_exit_candles=3), 5, None, ExitReason.TIME_EXIT),  # a candle missing: the next one
        (ExitParams(reversal_exit=True), 1, SHORT, ExitReason.REVERSAL),
        (ExitParams(reversal_exit=True), 1, LONG, None),  # with the position: no exit
        (ExitParams(reversal_exit=False), 1, SHORT, None),
        (ExitParams(time_exit_candles=3, reversal_exit=True), 3, SHORT, ExitReason.TIME_EXIT),  # time first
        (ExitParams(time_exit_candles=3, reversal_exit=True), 0, SHORT, None),  # the entry candle itself
    ],
)
def test_close_time_exits(
    exits: ExitParams, minutes_after: int, crossover: Direction | None, expected: ExitReason | None
) -> None:
    position = EntryFacts(direction=LONG, entry_open_time_ms=T0)
    assert (
        close_time_exit(
            exits,
            position,
            candle_open_time_ms=T0 + minutes_after * MIN,
            timeframe_ms=MIN,
            crossover=crossover,
        )
        is expected
    )
    assert (
        close_time_exit(exits, None, candle_open_time_ms=T0 + 9 * MIN, timeframe_ms=MIN, crossover=SHORT)
        is None
    )


def test_entry_candle_from_the_fill_time() -> None:
    assert entry_candle_open(T0 + MIN, MIN) == T0  # the replay's fill: exactly at the deciding candle's close
    assert entry_candle_open(T0 + MIN + 350, MIN) == T0  # live: a few ms after it
    t5 = T0 - T0 % (5 * MIN)
    assert entry_candle_open(t5 + 5 * MIN + 20, 5 * MIN) == t5
