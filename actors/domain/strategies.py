"""The one small interface both strategies implement, and the per-pair decider that adds the exits to it.

A ``SignalStrategy`` (V1 ``strategy.PairStrategy``, V2 ``strategy_v2.V2Strategy``) is a pure state machine
on closed candles of one (symbol, signal timeframe): ``observe`` feeds a candle and says whether it is a
crossover; ``decide`` then settles the decision it is due, on the portfolio as it stands after the
candle's exits. ``PairDecider`` puts the close-time exits (``exits.close_time_exit``) between the two, so
that a reversal exit closes the position before the crossover that caused it is judged: the pair actor,
the incremental backtest and (through the same functions) the batch backtest all run this sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .exits import EntryFacts, ExitParams, close_time_exit
from .fills import ExitReason
from .model import TIMEFRAME_MS, Decision, Direction, Kline
from .strategy import PairStrategy, StrategyParams, StrategySnapshot
from .strategy_v2 import V2Params, V2Strategy
from .trend import TrendReading

AnyParams = StrategyParams | V2Params
"""A pair's strategy settings: their type says which strategy (``StrategyParams`` is V1's)."""


class SignalStrategy(Protocol):
    """What the pair actor and the backtester call on either strategy."""

    symbol: str
    timeframe: str

    @property
    def last_open_time_ms(self) -> int | None:
        """Open time of the newest candle fed (older or equal ones are ignored)."""
        ...

    def observe(self, kline: Kline) -> Direction | None:
        """Feed one closed candle; the direction of the crossover it is, if it is one."""
        ...

    def decide(
        self, *, position_open: bool, open_positions: int, funding: float | None = None
    ) -> Decision | None:
        """The decision the last observed candle settles, if any."""
        ...

    def on_trend(self, reading: TrendReading) -> None:
        """A higher timeframe's (or the BTC reference's) reading."""
        ...

    def record_rejection(self, decision: Decision) -> None:
        """The executor refused a taken decision: it no longer counts for ``min_interval``."""
        ...

    def snapshot(self) -> StrategySnapshot:
        """State for the inspection shell."""
        ...


def make_strategy(symbol: str, timeframe: str, params: AnyParams) -> SignalStrategy:
    """The strategy ``params`` names, fresh."""
    if isinstance(params, V2Params):
        return V2Strategy(symbol, timeframe, params)
    return PairStrategy(symbol, timeframe, params)


def strategy_name(params: AnyParams) -> str:
    """``v1`` or ``v2``."""
    return "v2" if isinstance(params, V2Params) else "v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class CandleOutcome:
    """What one closed candle asks of the pair: close the position at its close, and/or a decision."""

    exit: ExitReason | None = None
    decision: Decision | None = None


class PairDecider:
    """A strategy with the pair's close-time exits (see the module docstring)."""

    def __init__(self, strategy: SignalStrategy, exits: ExitParams) -> None:
        self.strategy = strategy
        self.exits = exits
        self._tf_ms = TIMEFRAME_MS[strategy.timeframe]

    def on_closed_kline(
        self,
        kline: Kline,
        *,
        position: EntryFacts | None,
        open_positions: int,
        funding: float | None = None,
        position_open: bool | None = None,
    ) -> CandleOutcome:
        """One closed candle, after the path exits of its instant.

        ``position``: this symbol's open position, for the exits (None when flat or when no exit may be
        asked); ``position_open``: whether the symbol holds one (default: ``position`` is given);
        ``open_positions``: across all symbols, this one included. Older or repeated candles change nothing.
        """
        last = self.strategy.last_open_time_ms
        if last is not None and kline.open_time_ms <= last:
            return CandleOutcome()
        crossover = self.strategy.observe(kline)
        exit_ = close_time_exit(
            self.exits,
            position,
            candle_open_time_ms=kline.open_time_ms,
            timeframe_ms=self._tf_ms,
            crossover=crossover,
        )
        held = position is not None if position_open is None else position_open
        still_open = held and exit_ is None
        if exit_ is not None:
            open_positions -= 1
        decision = self.strategy.decide(
            position_open=still_open, open_positions=open_positions, funding=funding
        )
        return CandleOutcome(exit=exit_, decision=decision)
