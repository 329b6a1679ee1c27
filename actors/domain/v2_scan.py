"""Vectorised twin of ``V2Strategy`` for the backtester: every crossover of a series with the facts the
incremental strategy would hold at it, bit for bit (``twins`` reproduce talipp's floats).

Higher timeframes come from the signal candles themselves: the candle of ``tf`` closing at ``B`` exists when
a signal candle closes at ``B``, and its close is that candle's close (which is what a candle of ``tf``
streamed by the exchange closes at; only the close matters to a trend). ``TrendSeries`` holds the trend of
every such candle; ``trend_at`` looks up the one a decision uses (``trend.trend_boundary``). The rules
themselves are ``strategy_v2.judge_v2``, shared with the incremental path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .crossover_scan import FloatArray, IntArray, crossover_indices, sides
from .model import TIMEFRAME_MS, Direction
from .strategy_v2 import StopMode, V2Facts, V2Params
from .trend import trend_boundary
from .twins import atr, ema, stoch_rsi

_UNKNOWN = 2
"""Trend code of a candle whose EMA is still warming up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendSeries:
    """The trend of every closed candle of one (symbol, timeframe), built from its signal candles."""

    timeframe: str
    close_times: IntArray
    codes: np.ndarray
    """+1, −1, 0, or 2 while the EMA warms up."""

    def trends_at(self, signal_open_times: IntArray) -> list[int | None]:
        """``trend_at`` of every signal candle opened at these times."""
        if not self.close_times.shape[0]:
            return [None] * signal_open_times.shape[0]
        tf_ms = TIMEFRAME_MS[self.timeframe]
        boundary = signal_open_times - signal_open_times % tf_ms
        j = np.minimum(np.searchsorted(self.close_times, boundary), self.close_times.shape[0] - 1)
        codes = np.where(self.close_times[j] == boundary, self.codes[j], _UNKNOWN)
        return [None if c == _UNKNOWN else c for c in codes.tolist()]

    def trend_at(self, signal_open_time_ms: int) -> int | None:
        """The trend a decision on the signal candle opened then uses; None when missing or warming."""
        boundary = trend_boundary(signal_open_time_ms, self.timeframe)
        j = int(np.searchsorted(self.close_times, boundary))
        if j >= self.close_times.shape[0] or int(self.close_times[j]) != boundary:
            return None
        code = int(self.codes[j])
        return None if code == _UNKNOWN else code


def trend_series(
    open_time: IntArray, close: FloatArray, *, signal_timeframe: str, timeframe: str, period: int
) -> TrendSeries:
    """Trends of ``timeframe``'s candles: close vs EMA(``period``) of the closes of the signal candles that
    close on one of its boundaries."""
    signal_ms = TIMEFRAME_MS[signal_timeframe]
    tf_ms = TIMEFRAME_MS[timeframe]
    ends = open_time + signal_ms
    on_boundary = np.flatnonzero(ends % tf_ms == 0)
    closes = close[on_boundary]
    average = ema(closes, period)
    with np.errstate(invalid="ignore"):
        codes = np.where(np.isnan(average), _UNKNOWN, np.sign(closes - average)).astype(np.int8)
    return TrendSeries(timeframe=timeframe, close_times=ends[on_boundary], codes=codes)


@dataclass(frozen=True, slots=True, kw_only=True)
class V2Scan:
    """A series' crossovers (all of them, for the reversal exit) and the facts at each."""

    crossovers: IntArray
    facts: tuple[V2Facts, ...]
    """Funding is left unknown here: it depends on the funding history, looked up by the engine."""


def _or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def scan_v2(  # noqa: PLR0917 - the arrays of a series, in their natural order
    params: V2Params,
    signal_timeframe: str,
    open_time: IntArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    *,
    btc: TrendSeries | None = None,
) -> V2Scan:
    """Every crossover of the series with ``V2Facts`` as ``V2Strategy`` builds them (``btc``: the BTC
    reference's trend series, when the filter applies to this symbol)."""
    side = sides(ema(close, params.ema_fast), ema(close, params.ema_slow))
    hits = crossover_indices(side)
    volatility = atr(high, low, close, params.atr_period)
    p = params
    k = None
    if p.stoch_rsi:
        k, _ = stoch_rsi(close, p.rsi_period, p.stoch_period, p.k_smoothing, p.d_smoothing)
    trends = [
        trend_series(open_time, close, signal_timeframe=signal_timeframe, timeframe=tf, period=p.trend_ema)
        for tf in p.trend_timeframes
    ]
    lookback = params.pivot_lookback
    times = open_time[hits]
    per_tf = [tr.trends_at(times) for tr in trends]
    btc_trends = btc.trends_at(times) if btc is not None else [None] * hits.shape[0]
    atrs = volatility[hits].tolist()
    ks = k[hits].tolist() if k is not None else None
    closes = close[hits].tolist()
    facts = []
    for n, i in enumerate(hits.tolist()):
        direction = Direction.LONG if side[i] > 0 else Direction.SHORT
        pivot = None
        if params.stop_mode is StopMode.PIVOT and i > 0:
            start = max(0, i - lookback)
            window = low[start:i] if direction is Direction.LONG else high[start:i]
            pivot = float(window.min() if direction is Direction.LONG else window.max())
        facts.append(
            V2Facts(
                direction=direction,
                signal_open_time_ms=int(times[n]),
                entry=closes[n],
                atr=_or_none(atrs[n]),
                stoch_k=None if ks is None else _or_none(ks[n]),
                pivot=pivot,
                trends=tuple(tr[n] for tr in per_tf),
                btc_trend=btc_trends[n],
                funding=None,
            )
        )
    return V2Scan(crossovers=hits, facts=tuple(facts))
