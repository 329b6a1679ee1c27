"""DecidingFirst: indicator-only candles of a close wait for its deciding ones, bounded, keys in order."""

from __future__ import annotations

from nancemakina.actors.domain.model import Kline
from nancemakina.actors.tree.market.deciding_first import MAX_HOLD_S, DecidingFirst

M = 60_000
T = 1_748_205_300_000
"""A close on a 5-minute boundary."""


def candle(symbol: str, timeframe: str, close_ms: int) -> Kline:
    minutes = {"1m": 1, "5m": 5, "15m": 15}[timeframe]
    return Kline(
        symbol=symbol, timeframe=timeframe, open_time_ms=close_ms - minutes * M,
        open=1.0, high=1.0, low=1.0, close=1.0, volume=1.0, closed=True,
    )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rig(deciding: int = 2) -> tuple[DecidingFirst, Clock, list[float]]:
    clock, scheduled = Clock(), []
    first = DecidingFirst(lambda close: deciding if close % (5 * M) == 0 else 0, clock=clock,
                          schedule=scheduled.append)  # fmt: skip
    return first, clock, scheduled


def names(held: list[tuple[Kline, int]]) -> list[str]:
    return [f"{k.symbol}:{k.timeframe}@{n}" for k, n in held]


def test_indicator_candles_wait_until_the_last_deciding_candle_of_their_close():
    first, _, scheduled = rig()
    assert first.admit(candle("A", "5m", T), 1) == []
    assert first.admit(candle("B", "5m", T), 2) == []
    assert scheduled == [MAX_HOLD_S + 0.001]  # one timer per close, when it first holds
    assert first.told(candle("A", "1m", T)) == []
    assert names(first.told(candle("B", "1m", T))) == ["A:5m@1", "B:5m@2"]
    assert names(first.admit(candle("C", "5m", T), 3)) == ["C:5m@3"]  # the close is complete
    assert first.held_total == 2


def test_a_close_without_deciding_candles_holds_nothing():
    first, _, scheduled = rig()
    assert names(first.admit(candle("A", "1m", T + M), 1)) == ["A:1m@1"]
    assert scheduled == []


def test_after_the_limit_held_candles_are_overdue_and_new_ones_pass():
    first, clock, _ = rig()
    first.admit(candle("A", "5m", T), 1)
    first.told(candle("A", "1m", T))  # B's 1m never comes
    clock.now += MAX_HOLD_S / 2
    assert first.overdue() == []
    clock.now += MAX_HOLD_S
    assert names(first.overdue()) == ["A:5m@1"]
    assert names(first.admit(candle("B", "5m", T), 2)) == ["B:5m@2"]
    assert first.holding() == 0


def test_a_later_candle_of_a_held_key_releases_it_first():
    first, clock, _ = rig()
    first.admit(candle("A", "15m", T + 10 * M), 1)  # 5m boundary, deciding candles pending
    clock.now += 0.01
    out = first.admit(candle("A", "15m", T + 25 * M), 2)
    assert names(out) == ["A:15m@1", "A:15m@2"]
    assert first.holding() == 0
    assert first.told(candle("X", "1m", T + 10 * M)) == []  # nothing left to release for that close


def test_take_gives_up_a_keys_held_candle_before_its_repair():
    first, _, _ = rig()
    first.admit(candle("A", "5m", T), 1)
    first.admit(candle("B", "5m", T), 2)
    assert names(first.take([("B", "5m")])) == ["B:5m@2"]
    first.told(candle("A", "1m", T))
    assert names(first.told(candle("B", "1m", T))) == ["A:5m@1"]


def test_old_closes_are_forgotten():
    first, clock, _ = rig()
    for k in range(100):
        first.told(candle("A", "1m", T + k * 5 * M))
        clock.now += 61.0
    assert len(first._closes) <= 2
