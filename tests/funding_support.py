"""SYNTHETIC funding rates for tests, in Binance's public-archive format. Not real data.

The repository holds no real funding-rate archive. These files have the archive's exact layout (header
``calc_time,funding_interval_hours,last_funding_rate``, settlement times a millisecond late as Binance stamps
them, 8 h intervals) and made-up rates from a seeded generator, spread so that a 0.01 % threshold skips some
signals and lets others through. They exercise the funding filter's plumbing; they say nothing about markets.
"""

from __future__ import annotations

import random
from pathlib import Path

from nancemakina.actors.backtest.funding_files import HEADER

EIGHT_HOURS_MS = 8 * 3_600_000
FIRST_SETTLEMENT_MS = 1_748_131_200_000
"""2025-05-25 00:00 UTC: the last settlement before the bundled month's first candle."""
LAST_SETTLEMENT_MS = 1_750_809_600_000
"""2025-06-25 00:00 UTC: after its last candle."""


def write_synthetic_funding(folder: Path, symbol: str, *, seed: int = 19, spread: float = 0.0002) -> Path:
    """A SYNTHETIC ``<symbol>-fundingRate-2025-05.csv`` covering the bundled month (rates uniform in ±spread)."""
    rng = random.Random(f"{symbol}-{seed}")
    lines = [",".join(HEADER)]
    t = FIRST_SETTLEMENT_MS
    while t <= LAST_SETTLEMENT_MS:
        lines.append(f"{t + 1},8,{rng.uniform(-spread, spread):.8f}")
        t += EIGHT_HOURS_MS
    path = folder / f"{symbol}-fundingRate-2025-05.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
