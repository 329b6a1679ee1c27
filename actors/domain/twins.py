"""Batch twins of talipp 2.7's EMA, ATR, RSI and StochRSI for the V2 backtest: the same floats, bit for bit.

Each function takes float64 arrays and returns float64 arrays of the same length, NaN where talipp's output
is ``None`` (warm-up). Nothing approximates: every value comes from the same IEEE-754 operations, in the same
order, on the same operands as talipp's incremental code, so ``==`` holds and the 64-bit patterns agree
(``tests/unit/test_twins.py`` checks them against talipp itself). How:

- Seeds (EMA's and ATR's first value, RSI's initial averages) are ``sum(list) / period`` with Python's
  builtin ``sum`` over Python floats, as talipp does; never ``np.sum`` (pairwise). CPython 3.12 made the
  builtin compensated, so calling it — not re-implementing it — keeps the twin equal on every interpreter.
- Element-wise steps without carried state (true range, price changes, gains and losses, RSI from its two
  averages, StochRSI's raw %K, window max/min) are numpy ufuncs: +, −, ×, ÷ and abs round each element
  correctly, so they equal the scalar results.
- SMA's update is a sum of independent steps: ``crossover_scan.talipp_sma`` (``numpy.cumsum``).
- EMA, ATR (Wilder) and RSI's averages round a product or a quotient of the previous value at every step;
  no re-association reproduces those roundings, so they run as one plain Python loop over floats
  (~20 M steps/s, far from the backtest's bottleneck).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .crossover_scan import FloatArray, talipp_sma


def ema(values: FloatArray, period: int) -> FloatArray:
    """talipp EMA: ``sum(first p)/p`` at index p−1, then ``m·x + (1−m)·prev`` with m = 2/(p+1)."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    if n < period:
        return out
    xs = values.tolist()
    seed = sum(xs[:period]) / period
    mult = 2.0 / (period + 1.0)
    keep = 1.0 - mult
    y = seed
    chain = [seed]
    push = chain.append
    for x in xs[period:]:
        y = mult * x + keep * y  # talipp: float(mult * x + (1.0 - mult) * prev); float() is a no-op here
        push(y)
    out[period - 1 :] = chain
    return out


def true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """talipp's TR: ``high − low`` on the first candle, then ``max(h − l, |h − c'|, |l − c'|)``."""
    tr = high - low
    if high.shape[0] > 1:
        prev = close[:-1]
        tr[1:] = np.maximum(np.maximum(tr[1:], np.abs(high[1:] - prev)), np.abs(low[1:] - prev))
    return tr


def _wilder(xs: list[float], seed: float, period: int) -> list[float]:
    """``y = (y'·(p−1) + x)/p`` from ``seed`` over ``xs``: the seed, then one value per x."""
    p = float(period)
    pm1 = float(period - 1)  # talipp multiplies by the int p−1: int → float is exact, the same product
    y = seed
    chain = [seed]
    push = chain.append
    for x in xs:
        y = (y * pm1 + x) / p
        push(y)
    return chain


def atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    """talipp ATR: ``sum(TR[0..p−1])/p`` at index p−1, then Wilder ``(prev·(p−1) + TR)/p``."""
    n = high.shape[0]
    out = np.full(n, np.nan)
    if n < period:
        return out
    tr = true_range(high, low, close).tolist()
    seed = sum(tr[:period]) / period
    out[period - 1 :] = _wilder(tr[period:], seed, period)
    return out


def rsi(close: FloatArray, period: int) -> FloatArray:
    """talipp RSI: first at index ``period``; 100 when avg_loss == 0, else ``100 − 100/(1 + g/l)``.

    Its seed (a talipp quirk kept on purpose): the first p−1 changes averaged over p−1; the Wilder step
    then runs from change p on, so the first RSI already includes one step.
    """
    if period < 2:
        raise ValueError("talipp's RSI divides by period − 1: the period must be at least 2")
    n = close.shape[0]
    out = np.full(n, np.nan)
    if n < period + 1:
        return out
    change = close[1:] - close[:-1]
    init = change[: period - 1].tolist()
    g0 = float(sum(c for c in init if c > 0)) / (period - 1)
    l0 = float(sum(-1 * c for c in init if c < 0)) / (period - 1)
    rest = change[period - 1 :]
    gain = np.array(_wilder(np.where(rest > 0, rest, 0.0).tolist(), g0, period)[1:])
    loss = np.array(_wilder(np.where(rest < 0, -rest, 0.0).tolist(), l0, period)[1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        values = 100.0 - (100.0 / (1.0 + gain / loss))
    values[loss == 0] = 100.0
    out[period:] = values
    return out


def stoch_rsi(
    close: FloatArray, rsi_period: int, stoch_period: int, k_smoothing: int, d_smoothing: int
) -> tuple[FloatArray, FloatArray]:
    """talipp StochRSI with SMA smoothing: ``(k, d)``, NaN where talipp's field is None.

    Raw %K at input i (from i = rsi_period + stoch_period − 1) over the last ``stoch_period`` RSI values:
    100 when max == min, else ``100·(rsi − min)/(max − min)``; k = SMA(raw, k_smoothing), d = SMA(k, d).
    """
    n = close.shape[0]
    k = np.full(n, np.nan)
    d = np.full(n, np.nan)
    first = rsi_period + stoch_period - 1
    if n <= first:
        return k, d
    r = rsi(close, rsi_period)
    window = sliding_window_view(r[rsi_period:], stoch_period)
    hi = window.max(axis=1)
    lo = window.min(axis=1)
    span = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = 100.0 * (r[first:] - lo) / span
    raw[span == 0] = 100.0
    smoothed = talipp_sma(raw, k_smoothing)
    k[first:] = smoothed
    if raw.shape[0] >= k_smoothing:
        d[first + k_smoothing - 1 :] = talipp_sma(smoothed[k_smoothing - 1 :], d_smoothing)
    return k, d
