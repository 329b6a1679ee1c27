"""Exits beyond the stop-loss and take-profit, for both strategies: trailing stop, time exit, reversal exit.

- **Trailing stop** (``ExitParams.callback_pct`` set): a TRAILING_STOP_MARKET placed with the stop and the
  take-profit, for the entry's quantity, ``callbackRate`` = ``callback_pct``; its ``activatePrice`` is
  ``trailing_activation``. It is walked on the candle path by ``fills.first_exit``.
- **Time exit** (``time_exit_candles`` = N > 0): a position entered at the close of the signal-timeframe
  candle opened at ``e`` is closed at market at the close of the first candle opened at or after
  ``e + N × timeframe`` (``ExitReason.TIME_EXIT``) — the N-th candle after the entry's, counted in time so
  a missing candle does not stretch it.
- **Reversal exit** (``reversal_exit``): a crossover of the strategy against the position closes it at
  market at that candle's close (``ExitReason.REVERSAL``), whatever the filters say about the crossover
  itself; the crossover is then judged as an entry with the symbol flat, so a reversal can flip it.

Both close-time exits are decided by ``close_time_exit`` after the candle's path exits (the exchange's
stop, take-profit and trailing stop come first), the time exit before the reversal on the same candle.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from .fills import ExitReason, TrailingStop, to_decimal
from .model import Direction


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitParams:
    """The exits one pair trades with (all off by default: V1 and V2 then exit by stop and target only)."""

    callback_pct: float | None = None
    """Trailing stop's ``callbackRate`` in percent (0.1–10, one decimal); None: no trailing stop."""
    activation_ratio: float | None = 1.0
    """Activation at entry ± ratio × risk (risk = |entry − stop|); None: armed from placement."""
    time_exit_candles: int = 0
    """Close after this many signal candles; 0: no time exit."""
    reversal_exit: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryFacts:
    """What the close-time exits need to know of an open position."""

    direction: Direction
    entry_open_time_ms: int
    """Open time of the signal-timeframe candle at whose close the position was entered."""


def trailing_activation(
    exits: ExitParams, direction: Direction, *, entry: float, stop: float, tick: Decimal
) -> float | None:
    """``activatePrice``: entry ± ``activation_ratio`` × |entry − stop|, rounded to the tick *away* from the
    entry (LONG up, SHORT down, so rounding never brings it closer); None without a ratio, or when the
    rounded price would not lie beyond the entry."""
    if exits.activation_ratio is None:
        return None
    risk = abs(entry - stop)
    raw = entry + direction.sign * exits.activation_ratio * risk
    units = (to_decimal(raw) / tick).to_integral_value(
        rounding=ROUND_CEILING if direction is Direction.LONG else ROUND_FLOOR
    )
    price = float((units * tick).quantize(tick))
    beyond = price > entry if direction is Direction.LONG else price < entry
    return price if beyond else None


def placed_trailing(
    exits: ExitParams, direction: Direction, *, entry: float, stop: float, price: float, tick: Decimal
) -> TrailingStop | None:
    """The trailing stop placed with a position's protective orders while the price is ``price``.

    An activation already reached at ``price`` would be refused by Binance (-2021, "would immediately
    trigger"); the executor then places it without one, armed at the latest price, and so does this.
    """
    if exits.callback_pct is None:
        return None
    activation = trailing_activation(exits, direction, entry=entry, stop=stop, tick=tick)
    long = direction is Direction.LONG
    if activation is not None and (price >= activation if long else price <= activation):
        activation = None
    return TrailingStop(
        sell=long,
        callback_pct=exits.callback_pct,
        activation=activation,
        extreme=price if activation is None else None,
    )


def close_time_exit(
    exits: ExitParams,
    position: EntryFacts | None,
    *,
    candle_open_time_ms: int,
    timeframe_ms: int,
    crossover: Direction | None,
) -> ExitReason | None:
    """Whether the candle opened at ``candle_open_time_ms`` closes ``position`` at its close, and why.

    ``crossover``: the direction of the strategy's crossover on this candle, if it is one.
    """
    if position is None or candle_open_time_ms <= position.entry_open_time_ms:
        return None
    due = position.entry_open_time_ms + exits.time_exit_candles * timeframe_ms
    if exits.time_exit_candles > 0 and candle_open_time_ms >= due:
        return ExitReason.TIME_EXIT
    if exits.reversal_exit and crossover is not None and crossover is not position.direction:
        return ExitReason.REVERSAL
    return None


def entry_candle_open(opened_at_ms: int, timeframe_ms: int) -> int:
    """The candle a position was entered at, from the entry fill's exchange time: the signal candle that
    closed at or just before it (the fill follows the close of the deciding candle)."""
    return opened_at_ms - opened_at_ms % timeframe_ms - timeframe_ms
