"""Replayed market data: one ``Feed`` per symbol, klines of any interval aggregated from 1m, wire formats.

A feed knows how many of its 1m candles the simulated clock has closed (``closed``); REST klines and the
higher-interval streams only ever see those. A higher-interval candle is aligned to its interval boundary
and closes together with its last 1m candle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..domain.fills import InstrumentSpec
from ..domain.model import TIMEFRAME_MS, ContractType
from ..exchange.instruments import SymbolCatalog, parse_symbol

MINUTE_MS = 60_000
MAX_KLINES_LIMIT = 1500


class KlineArrays(Protocol):
    """What the replay needs of ``actors.datafiles.KlineSeries``."""

    @property
    def symbol(self) -> str: ...
    @property
    def open_time(self) -> npt.NDArray[np.int64]: ...
    @property
    def open(self) -> npt.NDArray[np.float64]: ...
    @property
    def high(self) -> npt.NDArray[np.float64]: ...
    @property
    def low(self) -> npt.NDArray[np.float64]: ...
    @property
    def close(self) -> npt.NDArray[np.float64]: ...
    @property
    def volume(self) -> npt.NDArray[np.float64]: ...


def contract_type_of(symbol: str) -> ContractType:
    """``*_PERP`` and delivery symbols (``USD_``) trade on COIN-M; everything else on USDⓈ-M."""
    return ContractType.COIN_M if symbol.endswith("_PERP") or "USD_" in symbol else ContractType.USDT_M


@dataclass(eq=False, slots=True)
class Feed:
    """One replayed symbol: its 1m arrays, its spec and how far the clock has closed it."""

    symbol: str
    contract_type: ContractType
    spec: InstrumentSpec
    info: dict[str, Any]
    t: npt.NDArray[np.int64]
    o: npt.NDArray[np.float64]
    h: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    c: npt.NDArray[np.float64]
    v: npt.NDArray[np.float64]
    source: str = "bundled"
    """Where its exchangeInfo entry came from (``SymbolCatalog``); ``synthetic`` must be announced."""
    closed: int = 0
    """Number of 1m candles closed by the simulated clock (they are ``[0, closed)``)."""
    running: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def from_series(
        cls, series: KlineArrays, symbol: str | None = None, catalog: SymbolCatalog | None = None
    ) -> Feed:
        """``series`` as ``symbol`` (default: the series'), listed with ``catalog``'s entry for it."""
        catalog = catalog or SymbolCatalog()
        sym = (symbol or series.symbol).upper()
        ctype = contract_type_of(sym)
        prices = np.asarray(series.close)
        listing = catalog.listing(sym, ctype, prices[:: max(1, len(prices) // 2000)].tolist())
        return cls(
            symbol=sym,
            contract_type=ctype,
            spec=parse_symbol(listing.entry, ctype),
            info=dict(listing.entry),
            source=listing.source,
            t=np.asarray(series.open_time, dtype=np.int64),
            o=np.asarray(series.open, dtype=np.float64),
            h=np.asarray(series.high, dtype=np.float64),
            low=np.asarray(series.low, dtype=np.float64),
            c=np.asarray(series.close, dtype=np.float64),
            v=np.asarray(series.volume, dtype=np.float64),
        )

    def price(self, value: float) -> str:
        return f"{value:.{self.spec.price_precision}f}"

    def qty(self, value: float) -> str:
        return f"{value:.{max(self.spec.quantity_precision, 3)}f}"

    def quote_volume(self, volume: float, price: float) -> float:
        if self.contract_type is ContractType.COIN_M:
            return volume * self.spec.contract_size / price if price else 0.0
        return volume * price

    def last_price(self) -> float:
        """Price a market order fills at between candles: the last closed close (or the first open)."""
        return float(self.c[self.closed - 1]) if self.closed else float(self.o[0])

    def klines(self, interval: str, start: int | None, end: int | None, limit: int) -> list[list[Any]]:
        """REST klines of closed candles, with Binance's startTime/endTime/limit semantics."""
        ms = TIMEFRAME_MS[interval]
        k = ms // MINUTE_MS
        t = self.t[: self.closed]
        if start is not None:
            lo = int(np.searchsorted(t, (start + ms - 1) // ms * ms))
            hi = len(t) if end is None else int(np.searchsorted(t, end // ms * ms + ms))
            hi = min(hi, lo + (limit + 1) * k)
        else:
            hi = len(t) if end is None else min(len(t), int(np.searchsorted(t, end // ms * ms + ms)))
            lo = max(0, hi - (limit + 1) * k)
        if lo >= hi:
            return []
        lo = int(np.searchsorted(t, int(t[lo]) // ms * ms))
        rows = self._aggregate(lo, hi, ms)
        if start is not None:
            rows = [r for r in rows if r[0] >= start]
        if end is not None:
            rows = [r for r in rows if r[0] <= end]
        return rows[:limit] if start is not None else rows[-limit:]

    def _aggregate(self, lo: int, hi: int, ms: int) -> list[list[Any]]:
        t = self.t[lo:hi]
        buckets = t // ms * ms
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
        ends = np.r_[starts[1:], len(t)]
        highs = np.maximum.reduceat(self.h[lo:hi], starts)
        lows = np.minimum.reduceat(self.low[lo:hi], starts)
        vols = np.add.reduceat(self.v[lo:hi], starts)
        rows: list[list[Any]] = []
        for j, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            open_time = int(buckets[s])
            if int(t[e - 1]) + MINUTE_MS < open_time + ms and lo + e == self.closed:
                continue  # the last bucket is still open
            o, c = float(self.o[lo + s]), float(self.c[lo + e - 1])
            rows.append(
                self._row(open_time, ms, o, float(highs[j]), float(lows[j]), c, float(vols[j]), e - s)
            )
        return rows

    def _row(  # noqa: PLR0917 - one argument per kline column
        self, open_time: int, ms: int, o: float, h: float, lo: float, c: float, v: float, n: int
    ) -> list[Any]:
        quote = self.quote_volume(v, (h + lo + c) / 3)
        return [
            open_time,
            self.price(o),
            self.price(h),
            self.price(lo),
            self.price(c),
            self.qty(v),
            open_time + ms - 1,
            f"{quote:.8f}",
            max(1, n * 100),
            self.qty(v / 2),
            f"{quote / 2:.8f}",
            "0",
        ]

    def kline_event(
        self, interval: str, open_time: int, ohlcv: list[float], *, closed: bool, event_ms: int, index: int
    ) -> dict[str, Any]:
        """A ``kline`` stream event in Binance's exact shape."""
        ms = TIMEFRAME_MS[interval]
        o, h, lo, c, v = ohlcv
        quote = self.quote_volume(v, (h + lo + c) / 3)
        first = index * 100
        return {
            "e": "kline",
            "E": event_ms,
            "s": self.symbol,
            "k": {
                "t": open_time,
                "T": open_time + ms - 1,
                "s": self.symbol,
                "i": interval,
                "f": first,
                "L": first + 99,
                "o": self.price(o),
                "c": self.price(c),
                "h": self.price(h),
                "l": self.price(lo),
                "v": self.qty(v),
                "n": 100,
                "x": closed,
                "q": f"{quote:.8f}",
                "V": self.qty(v / 2),
                "Q": f"{quote / 2:.8f}",
                "B": "0",
            },
        }

    def interval_state(
        self, interval: str, i: int, partial: list[float] | None
    ) -> tuple[int, list[float], bool]:
        """Aggregate of ``interval``'s current candle up to 1m candle ``i`` (``partial`` = its ohlcv so far).

        Keeps a running aggregate of the closed 1m candles of the bucket so each step costs O(1).
        """
        ms = TIMEFRAME_MS[interval]
        t = int(self.t[i])
        bucket = t // ms * ms
        run = self.running.get(interval)
        if run is None or int(run[0]) != bucket or int(run[6]) != i:
            run = [float(bucket), 0.0, -np.inf, np.inf, 0.0, 0.0, float(i)]
            first = int(np.searchsorted(self.t, bucket))
            for j in range(first, i):
                self._fold(
                    run,
                    float(self.o[j]),
                    float(self.h[j]),
                    float(self.low[j]),
                    float(self.c[j]),
                    float(self.v[j]),
                    j == first,
                )
            run[6] = float(i)
            self.running[interval] = run
        current = (
            partial
            if partial is not None
            else [float(self.o[i]), float(self.h[i]), float(self.low[i]), float(self.c[i]), float(self.v[i])]
        )
        o = run[1] if run[2] != -np.inf else current[0]
        agg = [o, max(run[2], current[1]), min(run[3], current[2]), current[3], run[4] + current[4]]
        closed = partial is None and t + MINUTE_MS >= bucket + ms
        if partial is None:
            o2, h2, l2, c2, v2 = current
            self._fold(run, o2, h2, l2, c2, v2, run[2] == -np.inf)
            run[6] = float(i + 1)
        return bucket, agg, closed

    @staticmethod
    def _fold(run: list[float], o: float, h: float, lo: float, c: float, v: float, first: bool) -> None:  # noqa: PLR0917
        if first:
            run[1] = o
        run[2] = max(run[2], h)
        run[3] = min(run[3], lo)
        run[5] = c
        run[4] += v
