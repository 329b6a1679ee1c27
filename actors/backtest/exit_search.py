"""Where the batch driver finds an open position's exit without walking every candle in Python.

Path exits (stop-loss, take-profit, trailing stop) are searched with numpy for the candles that *may* exit,
a superset; each candidate is then walked with the shared rule (``fills.first_exit``) in time order, with
the trailing stop reconstructed as it stood at that candle, so the result is exactly what the incremental
driver finds candle by candle. Close-time exits (time, reversal) are plain index lookups.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..domain.crossover_scan import IntArray
from ..domain.exits import ExitParams
from ..domain.fills import ExitReason, TrailingStop, candle_path, first_exit
from ..domain.model import TIMEFRAME_MS, Direction
from .account import Position
from .kline_files import KlineSeries

_FIRST_CHUNK = 256
_SLACK = 1e-9
"""Relative widening of the raw trailing levels in the superset search (far above float rounding)."""


def walk_candle(
    series: KlineSeries, pos: Position, i: int
) -> tuple[tuple[ExitReason, float] | None, TrailingStop | None]:
    """The shared rule on candle ``i`` of ``series`` for ``pos``: its exit, and its trailing stop after."""
    path = candle_path(
        float(series.open[i]),
        float(series.high[i]),
        float(series.low[i]),
        float(series.close[i]),
        pos.direction,
    )
    return first_exit(
        path, direction=pos.direction, stop=pos.stop, take_profit=pos.take_profit, trailing=pos.trailing
    )


def find_path_exit(
    series: KlineSeries, pos: Position, start: int, end: int
) -> tuple[int, ExitReason, float] | None:
    """First candle in ``[start, end]`` on which ``pos`` exits by its stop, take-profit or trailing stop."""
    chunk = _FIRST_CHUNK
    trailing = pos.trailing
    while start <= end:
        stop = min(end + 1, start + chunk)
        found = _search_chunk(series, replace(pos, trailing=trailing), start, stop)
        if isinstance(found, tuple):
            return found
        trailing = found
        start = stop
        chunk *= 4
    return None


def _search_chunk(
    series: KlineSeries, pos: Position, start: int, stop: int
) -> tuple[int, ExitReason, float] | TrailingStop | None:
    """The exit in ``[start, stop)``, else the trailing stop as it stands after the chunk."""
    long = pos.direction is Direction.LONG
    o, h, lo, c = (a[start:stop] for a in (series.open, series.high, series.low, series.close))
    adverse, favourable = (lo, h) if long else (h, lo)
    mask = (
        (adverse <= pos.stop) | (favourable >= pos.take_profit)
        if long
        else (adverse >= pos.stop) | (favourable <= pos.take_profit)
    )
    trail = pos.trailing
    before = None
    if trail is not None:
        start_extreme = _start_extreme(trail, float(o[0]))
        favourable = h if long else lo
        running = np.maximum.accumulate if long else np.minimum.accumulate
        pick = np.maximum if long else np.minimum
        before = np.empty_like(favourable)
        before[0] = start_extreme
        if favourable.shape[0] > 1:
            before[1:] = pick(running(favourable[:-1]), start_extreme)
        peak_open = pick(before, o)  # the extreme the open and the adverse segment see
        peak_close = pick(peak_open, favourable)  # the extreme the closing segment sees
        factor = 1.0 - trail.callback_pct / 100.0 if long else 1.0 + trail.callback_pct / 100.0
        if trail.extreme is not None or trail.activation is None:
            armed_open = armed_close = np.ones(o.shape[0], dtype=bool)
        elif long:
            armed_open, armed_close = peak_open >= trail.activation, peak_close >= trail.activation
        else:
            armed_open, armed_close = peak_open <= trail.activation, peak_close <= trail.activation
        # A superset of the candles that may trigger it: the extreme a move sees is at most these peaks, and
        # the levels (computed in decimals) are widened by a hair so float rounding cannot drop one.
        if long:
            factor *= 1.0 + _SLACK
            mask |= (armed_open & (lo <= peak_open * factor)) | (armed_close & (c <= peak_close * factor))
        else:
            factor *= 1.0 - _SLACK
            mask |= (armed_open & (h >= peak_open * factor)) | (armed_close & (c >= peak_close * factor))
    for j in np.flatnonzero(mask).tolist():
        state = trail if trail is None or before is None else _state_before(trail, float(before[j]))
        hit, _ = walk_candle(series, replace(pos, trailing=state), start + j)
        if hit is not None:
            return start + j, hit[0], hit[1]
    if trail is None or before is None:
        return None
    _, after = walk_candle(series, replace(pos, trailing=_state_before(trail, float(before[-1]))), stop - 1)
    return after


def _start_extreme(trail: TrailingStop, first_open: float) -> float:
    """The best price seen before the chunk: the armed extreme, else a price that arms nothing yet (the
    chunk's first open stands in: an unarmed stop has seen nothing beyond its activation)."""
    return trail.extreme if trail.extreme is not None else first_open


def _state_before(trail: TrailingStop, best: float) -> TrailingStop:
    """The trailing stop at the start of a candle, given the best price of the path since the chunk began
    (``trailing_trigger``: it arms at the first price at or beyond its activation, and its extreme is the
    best price since)."""
    if trail.extreme is not None:
        extreme = max(trail.extreme, best) if trail.sell else min(trail.extreme, best)
        return replace(trail, extreme=extreme)
    if trail.activation is None or (best >= trail.activation if trail.sell else best <= trail.activation):
        return replace(trail, extreme=best)
    return trail


def time_exit_index(series: KlineSeries, exits: ExitParams, entry_index: int) -> int | None:
    """The candle a time exit closes the position entered at ``entry_index`` (None: off, or past the data)."""
    if exits.time_exit_candles <= 0:
        return None
    due = int(series.open_time[entry_index]) + exits.time_exit_candles * TIMEFRAME_MS[series.timeframe]
    j = int(np.searchsorted(series.open_time, due, side="left"))
    return j if j < len(series) else None


def reversal_index(crossovers: IntArray | None, exits: ExitParams, entry_index: int) -> int | None:
    """Where a reversal exit closes: the next crossover after the entry, always against it (None: none)."""
    if not exits.reversal_exit or crossovers is None:
        return None
    k = int(np.searchsorted(crossovers, entry_index, side="right"))
    return int(crossovers[k]) if k < crossovers.shape[0] else None
