"""``FrameSchedule``: when, inside one 1m candle, the replay sends each unclosed kline update, and the candle
as it stands at that moment.

Two ways, chosen by ``SimConfig``:

* ``updates_per_candle`` (0–3, the default 3): updates at the corners of the candle's path — the open, the
  first extreme, the second extreme — spread evenly over the candle. Cheap, and enough for tests and
  compressed replays, but at 1× that is 60 times quieter than the real venue.
* ``update_interval_ms`` (Binance: 250): a push every that many milliseconds of market time on every
  stream, as Binance's kline streams push while a market trades: unclosed updates at 250, 500, …, 59,750 ms
  and the closing push at 60,000 (the closed candle, sent by the replay), 240 pushes a minute. The price
  walks the candle's path (``fills.candle_path``: open → adverse extreme → favourable extreme → close) in
  three legs of equal time, interpolated linearly and rounded to the tick; high and low are those of the
  path walked so far, the volume grows in proportion to the time. The same candle always gives the same
  frames: a replay at 1× carries the real venue's load, deterministically.
"""

from __future__ import annotations

from ..domain.fills import candle_path

MINUTE_MS = 60_000
_LEGS = 3
"""The path's three legs: open → first extreme → second extreme → close, each a third of the candle."""


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

    def partial(  # noqa: PLR0917 - one argument per candle column, then the update and the tick
        self, o: float, h: float, lo: float, c: float, v: float, k: int, tick: float
    ) -> list[float]:
        """Update ``k``'s candle so far: ``[open, high, low, close, volume]``."""
        path = candle_path(o, h, lo, c, None)
        if not self.interpolated:
            walked = path[: k + 1]
            return [o, max(walked), min(walked), walked[-1], v * (k + 1) / (len(self) + 1)]
        fraction = self.fractions[k]
        leg = min(int(fraction * _LEGS), _LEGS - 1)
        start, end = path[leg], path[leg + 1]
        price = start + (end - start) * (fraction * _LEGS - leg)
        if tick > 0:
            price = round(round(price / tick) * tick, 12)
        walked = (*path[: leg + 1], price)
        return [o, max(walked), min(walked), price, v * fraction]
