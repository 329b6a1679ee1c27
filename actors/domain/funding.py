"""Funding rates as the V2 funding filter reads them: the last settled rate, known from the candle after it.

A ``FundingReading`` is what the bot knows at a moment: the latest funding rate (a fraction per interval,
0.0001 = 0.01 %) and when the next settlement is due. Live, the signal pair actor reads it from
``premiumIndex`` (``lastFundingRate``, ``nextFundingTime``) when it warms up and again right after deciding
the first candle that closes at or after ``next_funding_ms``; a backtest takes it from Binance's funding
archive (``FundingHistory``): the latest settlement at or before the signal candle's open, its next
settlement one ``funding_interval_hours`` later. Either way a decision on the candle opened at ``t`` uses a
settlement only once ``t`` has reached it, and a reading counts as unknown from ``next_funding_ms +
STALE_AFTER_MS`` on (the refresh failed, or the archive ends).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

STALE_AFTER_MS = 3_600_000
"""How long past its next settlement a reading may still be used: one hour."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingReading:
    """The funding rate known at some moment, and when the next settlement is due."""

    rate: float
    next_funding_ms: int

    def usable_for(self, signal_open_time_ms: int) -> bool:
        """Whether a decision on the candle opened at this time may use the reading (not stale)."""
        return signal_open_time_ms < self.next_funding_ms + STALE_AFTER_MS


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingHistory:
    """One symbol's settlements, oldest first: times rounded to the minute, interval and rate of each."""

    symbol: str
    times_ms: tuple[int, ...]
    """Settlement times, rounded to the minute (the archive stamps them a few ms late: …000001)."""
    intervals_ms: tuple[int, ...]
    rates: tuple[float, ...]

    def reading_at(self, signal_open_time_ms: int) -> FundingReading | None:
        """What the live bot would hold when deciding the candle opened at this time (None before the first
        settlement of the history)."""
        j = bisect_right(self.times_ms, signal_open_time_ms) - 1
        if j < 0:
            return None
        return FundingReading(rate=self.rates[j], next_funding_ms=self.times_ms[j] + self.intervals_ms[j])

    def covers(self, start_ms: int, end_ms: int) -> bool:
        """Whether every moment in [start, end] has a usable reading (the archive spans the data)."""
        first = self.reading_at(start_ms)
        last = self.reading_at(end_ms)
        return (
            first is not None and first.usable_for(start_ms) and last is not None and last.usable_for(end_ms)
        )


def funding_rate_for(reading: FundingReading | None, signal_open_time_ms: int) -> float | None:
    """The rate a decision on the candle opened at this time uses, or None when unknown."""
    if reading is None or not reading.usable_for(signal_open_time_ms):
        return None
    return reading.rate
