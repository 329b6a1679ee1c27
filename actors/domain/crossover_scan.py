"""Vectorised twin of ``PairStrategy`` for the backtester: same candles in, same candidates out, bit for bit.

talipp's SMA is recursive: its first value is ``sum(window) / period`` and every later one is
``previous − (leaving − entering) / period``. ``numpy.cumsum`` accumulates strictly left to right, so seeding
it with the first value and feeding the negated steps reproduces talipp's floats exactly, not approximately.
Bollinger width and the volume SMA are only needed on signal candles; they are computed there with talipp's
own formulas. The rule evaluation itself is ``strategy.judge``, shared with the incremental path.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt

import numpy as np
import numpy.typing as npt

from .model import Direction
from .strategy import Candidate, StrategyParams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def talipp_sma(values: FloatArray, period: int) -> FloatArray:
    """SMA with talipp's exact floating-point recurrence; NaN before the first full window."""
    out = np.full(values.shape[0], np.nan)
    if values.shape[0] < period:
        return out
    steps = np.empty(values.shape[0] - period + 1)
    steps[0] = float(sum(values[:period].tolist())) / period
    steps[1:] = -((values[:-period] - values[period:]) / float(period))
    out[period - 1 :] = np.cumsum(steps)
    return out


def talipp_bb_width_pct(
    closes: FloatArray, central: FloatArray, i: int, period: int, mult: float
) -> float | None:
    """talipp BB (SMA central band, population std-dev) width at candle ``i`` as % of its close."""
    if i + 1 < period or np.isnan(central[i]):
        return None
    window = closes[i + 1 - period : i + 1].tolist()
    mean = sum(window) / period
    std = sqrt(sum([(x - mean) ** 2 for x in window]) / period)
    cb = float(central[i])
    width: float = ((cb + mult * std) - (cb - mult * std)) / float(closes[i]) * 100.0
    return width


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannedCandidate:
    """A crossover found by the scan, with the index of the candle that settles it."""

    candidate: Candidate
    signal_index: int
    decided_index: int
    confirmed: bool


def sides(short: FloatArray, long: FloatArray) -> npt.NDArray[np.int8]:
    """+1 where short > long, −1 where below, 0 on a tie or while either SMA is warming up."""
    with np.errstate(invalid="ignore"):
        side = np.sign(short - long)
    side[np.isnan(side)] = 0
    return side.astype(np.int8)


def crossover_indices(side: npt.NDArray[np.int8]) -> IntArray:
    """Candles whose side is opposite to the last non-tie side before them."""
    n = side.shape[0]
    idx = np.arange(n, dtype=np.int64)
    last_nonzero = np.maximum.accumulate(np.where(side != 0, idx, -1))
    prev_last = np.empty(n, dtype=np.int64)
    prev_last[0] = -1
    prev_last[1:] = last_nonzero[:-1]
    prev_side = np.where(prev_last >= 0, side[np.maximum(prev_last, 0)], 0)
    hits = (side != 0) & (prev_side != 0) & (side != prev_side)
    return np.flatnonzero(hits).astype(np.int64)


def scan(  # noqa: PLR0917 - the five arrays of a series, in their natural order
    params: StrategyParams,
    open_time: IntArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    volume: FloatArray,
) -> list[ScannedCandidate]:
    """Every crossover of a series with its deciding candle, as ``PairStrategy`` would see them."""
    short = talipp_sma(close, params.short_period)
    long = talipp_sma(close, params.long_period)
    side = sides(short, long)
    hits = crossover_indices(side)
    volume_sma = talipp_sma(volume, params.volume_period) if params.volume_filter else None
    central = talipp_sma(close, params.bb_period) if params.volatility_filter else None
    n = close.shape[0]
    lookback = params.pivot_lookback
    buffer = params.buffer_candles
    found: list[ScannedCandidate] = []
    for i in hits.tolist():
        sign = int(side[i])
        direction = Direction.LONG if sign > 0 else Direction.SHORT
        start = max(0, i - lookback)
        if start < i:
            window = low[start:i] if sign > 0 else high[start:i]
            pivot: float | None = float(window.min() if sign > 0 else window.max())
        else:
            pivot = None
        vsma = None
        if volume_sma is not None and not np.isnan(volume_sma[i]):
            vsma = float(volume_sma[i])
        width = (
            talipp_bb_width_pct(close, central, i, params.bb_period, params.bb_std)
            if central is not None
            else None
        )
        cand = Candidate(
            direction=direction,
            signal_open_time_ms=int(open_time[i]),
            pivot=pivot,
            volume=float(volume[i]),
            volume_sma=vsma,
            bb_width_pct=width,
        )
        if buffer == 0:
            found.append(ScannedCandidate(candidate=cand, signal_index=i, decided_index=i, confirmed=True))
            continue
        follow = side[i + 1 : i + 1 + buffer]
        breaks = np.flatnonzero(follow != sign)
        if breaks.shape[0]:
            found.append(
                ScannedCandidate(
                    candidate=cand, signal_index=i, decided_index=i + 1 + int(breaks[0]), confirmed=False
                )
            )
        elif i + buffer < n:
            found.append(
                ScannedCandidate(candidate=cand, signal_index=i, decided_index=i + buffer, confirmed=True)
            )
    return found
