"""``FrameSchedule``: when, inside one 1m candle, the replay sends each unclosed kline update, and where on
the candle's path the price is at that moment.

Two ways, chosen by ``SimConfig``:

* ``updates_per_candle`` (0–3, the default 3): updates at the corners of the candle's path — the open, the
  first extreme, the second extreme — spread evenly over the candle. Cheap, and enough for tests and
  compressed replays, but at 1× that is 60 times quieter than the real venue.
* ``update_interval_ms`` (Binance: 250): a push every that many milliseconds of market time on every
  stream, as Binance's kline streams push while a market trades: unclosed updates at 250, 500, …, 59,750 ms
  and the closing push at 60,000 (the closed candle, sent by the replay), 240 pushes a minute. The price
  walks the candle's path (``Feed.path``: open → adverse extreme → favourable extreme → close) from one of
  the tape's trades to the next (``tape``: at +0, 15, 30 and 45 s), interpolated linearly and rounded to
  the tick, and stays at the close from the last trade on; the candle's volume and trade count advance with
  those trades. The same candle always gives the same frames: a replay at 1× carries the real venue's
  load, deterministically.
"""

from __future__ import annotations

from collections.abc import Sequence

from .tape import TRADE_SPACING_MS, TRADES_PER_CANDLE

MINUTE_MS = 60_000
_LEGS = TRADES_PER_CANDLE - 1
"""The path's three legs: open → first extreme → second extreme → close, between the tape's trades."""


class FrameSchedule:
    """The unclosed updates of one 1m candle (see the module docstring)."""

    def __init__(self, *, updates_per_candle: int = 3, update_interval_ms: int | None = None) -> None:
        if update_interval_ms is not None:
            if not 0 < update_interval_ms <= MINUTE_MS or MINUTE_MS % update_interval_ms:
                raise ValueError(f"update_interval_ms must divide 60000, got {update_interval_ms}")
            count = MINUTE_MS // update_interval_ms  # the last push of the minute is the closed candle
            self.offsets_ms = tuple(k * update_interval_ms for k in range(1, count))
        else:
            if not 0 <= updates_per_candle <= _LEGS:
                raise ValueError("updates_per_candle must be within 0..3")
            n = updates_per_candle
            self.offsets_ms = tuple(MINUTE_MS * k // (n + 1) for k in range(n))
        self.interpolated = update_interval_ms is not None
        self.fractions = tuple(ms / MINUTE_MS for ms in self.offsets_ms)
        """When each update is sent, as a fraction of the candle's duration (0 = its open)."""

    def __len__(self) -> int:
        return len(self.offsets_ms)

    def point(self, path: Sequence[float], k: int, tick: float) -> tuple[int, float]:
        """Update ``k`` on ``path`` (the candle's four points): (path points reached, the price then)."""
        if not self.interpolated:
            return k + 1, path[k]
        at = self.offsets_ms[k]
        leg = at // TRADE_SPACING_MS
        if leg >= _LEGS:
            return TRADES_PER_CANDLE, path[-1]
        start, end = path[leg], path[leg + 1]
        price = start + (end - start) * (at - leg * TRADE_SPACING_MS) / TRADE_SPACING_MS
        if tick > 0:
            price = round(round(price / tick) * tick, 12)
        return leg + 1, price
