"""The synthetic trade tape of one replayed symbol: trades derived deterministically from its 1m candles.

Klines say nothing about individual trades, so the local exchange makes up the fewest that agree with them:

* Each 1m candle trades at the four points of its price path — ``fills.candle_path`` with no position:
  open → first extreme → second extreme → close, the extremes in the candle's colour order (green: low
  first) — at open time + 0, 15, 30 and 45 s. The replay's intra-candle price updates walk the same path.
* Trade ids: a candle owns ``n`` consecutive ids, numbered from 1 at the data's first candle; ``n`` is the
  archive's trade count when the data has one (Binance's 12-column files), else 4 (0 for a candle without
  volume). The four trades split that range in order (trade j owns ids ``n·j/4 … n·(j+1)/4 − 1``; an empty
  share means no trade) and are served as aggregate trades with ``a`` = ``f`` = their first id.
* Quantity: the candle's volume in quantity steps, split by the same shares (floored cumulatively, so the
  trades sum to the volume exactly).
* Taker side: a trade below the previous one (the previous candle's close for the open) is
  seller-initiated (``m`` = buyer is maker = true); otherwise buyer-initiated.
* Kline statistics: ``n``, ``f``/``L`` are the id range; ``q`` (quote volume, coins for COIN-M), ``V`` and
  ``Q`` (taker-buy base and quote volume) are the archive's when given, else summed from these trades.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from ..backtest.kline_files import ArchiveColumns

TRADES_PER_CANDLE = 4
TRADE_SPACING_MS = 15_000


@dataclass(frozen=True, slots=True)
class Trade:
    """One synthetic (aggregate) trade."""

    agg_id: int
    price: float
    qty: float
    first_id: int
    last_id: int
    time: int
    buyer_maker: bool


def _paths(
    o: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
    prev: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """(prices, buyer-is-maker) of every candle's four trades, shape (candles, 4)."""
    green = c >= o
    path = np.stack([o, np.where(green, lo, h), np.where(green, h, lo), c], axis=1)
    before = np.concatenate([prev[:, None], path[:, :3]], axis=1)
    return path, path < before


def _units(units: npt.NDArray[np.int64], count: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Quantity steps of each of the four trades: the volume split by the trades' shares of the ids."""
    bounds = count[:, None] * np.arange(TRADES_PER_CANDLE + 1) // TRADES_PER_CANDLE
    cumulative = units[:, None] * bounds // np.maximum(count, 1)[:, None]
    return np.diff(cumulative, axis=1)


class Tape:
    """The trades and trade statistics of one symbol's 1m candles (see the module docstring)."""

    def __init__(
        self,
        *,
        open_time: npt.NDArray[np.int64],
        prices: tuple[npt.NDArray[np.float64], ...],
        volume: npt.NDArray[np.float64],
        step: float,
        contract_size: int,
        archive: ArchiveColumns | None,
    ) -> None:
        """``prices`` = (open, high, low, close); ``contract_size`` 0 for USDⓈ-M (quote = qty × price)."""
        self.t = open_time
        self.o, self.h, self.lo, self.c = prices
        self.step = step
        self.contract_size = contract_size
        self.units = np.rint(volume / step).astype(np.int64)
        if archive is not None:
            self.count = archive.count.astype(np.int64)
        else:
            self.count = np.where(self.units > 0, TRADES_PER_CANDLE, 0).astype(np.int64)
        self.first_id = 1 + np.cumsum(self.count) - self.count
        if archive is not None:
            self.quote = archive.quote_volume
            self.taker_base = archive.taker_buy_volume
            self.taker_quote = archive.taker_buy_quote_volume
            return
        path, maker = _paths(self.o, self.h, self.lo, self.c, self._previous(0, len(self.t)))
        qty = (_units(self.units, self.count) * step).astype(np.float64)
        notional = self._notional(qty, path)
        self.quote = notional.sum(axis=1)
        self.taker_base = np.where(maker, 0.0, qty).sum(axis=1)
        self.taker_quote = np.where(maker, 0.0, notional).sum(axis=1)

    def _previous(self, lo: int, hi: int) -> npt.NDArray[np.float64]:
        prev = self.c[max(lo - 1, 0) : hi - 1] if lo else np.concatenate([self.o[:1], self.c[: hi - 1]])
        return np.asarray(prev, dtype=np.float64)

    def _notional(
        self, qty: npt.NDArray[np.float64], price: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        if self.contract_size:
            return qty * self.contract_size / price
        return qty * price

    def trades(self, i: int, done: int = TRADES_PER_CANDLE) -> list[Trade]:
        """The trades of candle ``i`` among its first ``done`` path points (scalar ``_paths``/``_units``)."""
        o, h, lo, c = float(self.o[i]), float(self.h[i]), float(self.lo[i]), float(self.c[i])
        path = (o, lo, h, c) if c >= o else (o, h, lo, c)
        previous = float(self.c[i - 1]) if i else o
        count, units, first = int(self.count[i]), int(self.units[i]), int(self.first_id[i])
        found = []
        for j in range(done):
            lo_id, hi_id = count * j // TRADES_PER_CANDLE, count * (j + 1) // TRADES_PER_CANDLE
            before = previous if j == 0 else path[j - 1]
            if hi_id > lo_id:
                qty_units = units * hi_id // count - units * lo_id // count
                found.append(
                    Trade(
                        agg_id=first + lo_id,
                        price=path[j],
                        qty=qty_units * self.step,
                        first_id=first + lo_id,
                        last_id=first + hi_id - 1,
                        time=int(self.t[i]) + TRADE_SPACING_MS * j,
                        buyer_maker=path[j] < before,
                    )
                )
        return found

    def ids_done(self, i: int, done: int) -> int:
        """How many of candle ``i``'s trade ids its first ``done`` path points used."""
        return int(self.count[i]) * done // TRADES_PER_CANDLE

    def share(self, i: int, done: int) -> float:
        """The part of candle ``i``'s volume traded by its first ``done`` path points."""
        count = int(self.count[i])
        if not count:
            return done / TRADES_PER_CANDLE
        units = int(self.units[i])
        return (units * self.ids_done(i, done) // count) / units if units else done / TRADES_PER_CANDLE
