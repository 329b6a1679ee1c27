"""Trends of higher timeframes, the purge rule that keeps talipp bounded, and when a trend is current.

A *trend* is the side of a closed candle's close relative to the EMA of the closes of its timeframe: +1
above, −1 below, 0 on the EMA (agreeing with neither side), ``None`` while the EMA warms up. A pair actor
of a higher timeframe keeps one ``TrendTrack`` and publishes a ``TrendReading`` after each closed candle;
the deciding actor keeps the latest reading per timeframe and asks ``TrendReading.current_for`` whether it
is the one a decision may use (the rule: ``trend_boundary``).

Purging (``purge``): talipp keeps every input unless purged, and below a minimum it silently changes its
outputs (it re-seeds, or freezes on the last value). The minimum (``min_retained``, measured by brute force
on the bundled data): SMA/EMA/ATR(p) keep p inputs, RSI(p) p + 1, StochRSI(r, s, k, d) r + s − 1 + max(k, d);
purging copies lists, so it runs in batches of ``PURGE_BATCH``.
"""

from __future__ import annotations

from dataclasses import dataclass

from talipp.indicators import EMA

from .model import TIMEFRAME_MS

PURGE_BATCH = 32
"""As V1 (``strategy._PURGE_BATCH``): memory flat from the first candles after warm-up, copies cheap."""


def min_retained_ema(period: int) -> int:
    """EMA/ATR(p) (and SMA): p inputs; with p − 1 the next add re-applies the first-value formula."""
    return period


def min_retained_rsi(period: int) -> int:
    """RSI(p): p + 1 inputs; with exactly p + 1 held its initial-average branch fires again."""
    return period + 1


def min_retained_stoch_rsi(rsi_period: int, stoch_period: int, k_smoothing: int, d_smoothing: int) -> int:
    """StochRSI: its two SMA smoothers are purged by the same count but hold r + s − 1 fewer values."""
    return rsi_period + stoch_period - 1 + max(k_smoothing, d_smoothing)


def purge(indicator: object, keep: int) -> None:
    """Drop the oldest inputs of a talipp indicator once it holds ``keep + PURGE_BATCH``, down to ``keep``."""
    held = len(indicator.input_values)  # type: ignore[attr-defined]
    if held > keep + PURGE_BATCH:
        indicator.purge_oldest(held - keep)  # type: ignore[attr-defined]


def trend_of(close: float, ema: float | None) -> int | None:
    """+1 when ``close`` is above its EMA, −1 below, 0 on it, None while the EMA is undefined."""
    if ema is None:
        return None
    return 1 if close > ema else (-1 if close < ema else 0)


def trend_boundary(signal_open_time_ms: int, timeframe: str) -> int:
    """Close time of the higher-timeframe candle a decision on the signal candle opened at this time uses.

    It is the last boundary of ``timeframe`` at or before the signal candle's *open*: the latest candle of
    that timeframe that had closed when the signal candle began. So when a 1h candle and a 1m candle close
    at the same instant (10:00), the 1m candle 09:59 → 10:00 is decided with the 1h candle that closed at
    09:00, and the 1h candle closing at 10:00 serves from the 1m candle 10:00 → 10:01 on. A decision never
    waits for another actor's candle of the same instant: live, the reading it needs arrived a whole
    signal candle earlier; in a replay the lock-step acknowledges a step only after the trend actors
    finished it.
    """
    tf_ms = TIMEFRAME_MS[timeframe]
    return signal_open_time_ms - signal_open_time_ms % tf_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendReading:
    """The trend of one closed candle of ``(symbol, timeframe)``, as its actor publishes it."""

    symbol: str
    timeframe: str
    close_time_ms: int
    """Open time + the timeframe's length: the instant the candle closed."""
    trend: int | None
    """+1, −1, 0 (on the EMA), or None while the EMA warms up (``trend_of``)."""

    def current_for(self, signal_open_time_ms: int) -> bool:
        """Whether a decision on the signal candle opened then uses this reading (``trend_boundary``)."""
        return self.close_time_ms == trend_boundary(signal_open_time_ms, self.timeframe)


class TrendTrack:
    """EMA(``period``) over one timeframe's closed candles and the trend of the latest one; bounded memory."""

    def __init__(self, symbol: str, timeframe: str, period: int) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.period = period
        self._tf_ms = TIMEFRAME_MS[timeframe]
        self._ema = EMA(period)
        self._keep = min_retained_ema(period)
        self.latest: TrendReading | None = None

    def add(self, open_time_ms: int, close: float) -> TrendReading:
        """Feed one closed candle (in order, each once); its reading."""
        self._ema.add(close)
        purge(self._ema, self._keep)
        self.latest = TrendReading(
            symbol=self.symbol,
            timeframe=self.timeframe,
            close_time_ms=open_time_ms + self._tf_ms,
            trend=trend_of(close, self._ema[-1]),
        )
        return self.latest

    @property
    def ema(self) -> float | None:
        """The EMA of the latest close (None while warming up or before the first candle)."""
        return self._ema[-1] if len(self._ema) else None
