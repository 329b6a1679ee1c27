"""Replayed market data: one ``Feed`` per symbol, klines of any interval aggregated from 1m, 24 h windows.

A feed knows how many of its 1m candles the simulated clock has closed (``closed``) and, during a replay
step, how far along its price path the candle in progress is (``live``); REST klines and the higher-interval
streams only ever see closed candles. A higher-interval candle is aligned to its interval boundary and closes
together with its last 1m candle. Trade counts, ids and taker volumes come from the feed's ``Tape``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..domain.fills import InstrumentSpec
from ..domain.funding import FundingHistory
from ..domain.model import TIMEFRAME_MS, ContractType
from ..exchange.instruments import SymbolCatalog, parse_symbol
from .depth import Depth
from .tape import TRADES_PER_CANDLE, Tape

if TYPE_CHECKING:
    import numpy.typing as npt

    from ..backtest.kline_files import ArchiveColumns

MINUTE_MS = 60_000
DAY_MS = 86_400_000
MAX_KLINES_LIMIT = 1500


class KlineArrays(Protocol):
    """What the replay needs of ``backtest.kline_files.KlineSeries``."""

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


@dataclass(frozen=True, slots=True)
class Candle:
    """One kline's values (of any interval), before formatting."""

    open_time: int
    o: float
    h: float
    lo: float
    c: float
    v: float
    q: float
    n: int
    taker_base: float
    taker_quote: float
    first_id: int
    last_id: int

    def then(self, later: Candle) -> Candle:
        """This candle followed by ``later`` (same bucket): one candle spanning both."""
        return Candle(
            self.open_time,
            self.o,
            max(self.h, later.h),
            min(self.lo, later.lo),
            later.c,
            self.v + later.v,
            self.q + later.q,
            self.n + later.n,
            self.taker_base + later.taker_base,
            self.taker_quote + later.taker_quote,
            self.first_id if self.n else later.first_id,
            later.last_id if later.n else self.last_id,
        )


@dataclass(eq=False, slots=True)
class Feed:
    """One replayed symbol: its 1m arrays, its spec, its tape and how far the clock has closed it."""

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
    tape: Tape
    depth: Depth
    source: str = "bundled"
    """Where its exchangeInfo entry came from (``SymbolCatalog``); ``synthetic`` must be announced."""
    closed: int = 0
    """Number of 1m candles closed by the simulated clock (they are ``[0, closed)``)."""
    live: int = 0
    """Path points (1..4) the candle in progress has reached during a replay step; 0 between steps."""
    running: dict[str, tuple[int, int, Candle | None]] = field(default_factory=dict)
    funding: FundingHistory | None = None
    """Settled funding rates (``SimConfig.funding_rates``); None: rate 0 every 8 h (``market_wire``)."""

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
        spec = parse_symbol(listing.entry, ctype)
        arrays = [
            np.asarray(a, dtype=np.float64) for a in (series.open, series.high, series.low, series.close)
        ]
        volume = np.asarray(series.volume, dtype=np.float64)
        t = np.asarray(series.open_time, dtype=np.int64)
        archive: ArchiveColumns | None = getattr(series, "archive", None)
        tape = Tape(
            open_time=t,
            prices=tuple(arrays),
            volume=volume,
            step=float(spec.step_size),
            contract_size=spec.contract_size if ctype is ContractType.COIN_M else 0,
            archive=archive,
        )
        o, h, lo, c = arrays
        depth = Depth(spec, volume, float(o[0]) if len(o) else 0.0)
        entry = dict(listing.entry)
        return cls(sym, ctype, spec, entry, t, o, h, lo, c, volume, tape, depth, source=listing.source)

    def price(self, value: float) -> str:
        return f"{value:.{self.spec.price_precision}f}"

    def qty(self, value: float) -> str:
        return f"{value:.{max(self.spec.quantity_precision, 3)}f}"

    def last_price(self) -> float:
        """Price a market order fills at between candles: the last closed close (or the first open)."""
        return float(self.c[self.closed - 1]) if self.closed else float(self.o[0])

    def price_at(self, time_ms: int) -> float:
        """The price at ``time_ms``: the open of the candle opening then, else the last close before."""
        i = int(np.searchsorted(self.t, time_ms))
        if i < len(self.t) and int(self.t[i]) == time_ms:
            return float(self.o[i])
        return float(self.c[i - 1]) if i else float(self.o[0])

    # --- 1m candles ----------------------------------------------------------------------------------

    def path(self, i: int) -> tuple[float, float, float, float]:
        """Candle ``i``'s four path points (the tape's trade prices)."""
        o, h, lo, c = (float(a[i]) for a in (self.o, self.h, self.low, self.c))
        return (o, lo, h, c) if c >= o else (o, h, lo, c)

    def candle(self, i: int, done: int = TRADES_PER_CANDLE) -> Candle:
        """1m candle ``i`` as far as its first ``done`` path points (all four: the closed candle)."""
        tape = self.tape
        first = int(tape.first_id[i])
        if done >= TRADES_PER_CANDLE:
            n = int(tape.count[i])
            o, h, lo, c = (float(a[i]) for a in (self.o, self.h, self.low, self.c))
            share = 1.0
        else:
            n = tape.ids_done(i, done)
            points = self.path(i)[:done]
            o, h, lo, c = points[0], max(points), min(points), points[-1]
            share = tape.share(i, done)
        return Candle(
            int(self.t[i]),
            o,
            h,
            lo,
            c,
            float(self.v[i]) * share,
            float(tape.quote[i]) * share,
            n,
            float(tape.taker_base[i]) * share,
            float(tape.taker_quote[i]) * share,
            first if n else -1,
            first + n - 1 if n else -1,
        )

    def candle_between(self, i: int, done: int, price: float) -> Candle:
        """1m candle ``i`` with ``done`` path points walked and its price at ``price`` on the way to the next
        (the local exchange at Binance's frame rate): the tape's volume and trades of the points walked."""
        reached = self.candle(i, done)
        return replace(reached, h=max(reached.h, price), lo=min(reached.lo, price), c=price)

    def span(self, lo: int, hi: int) -> Candle | None:
        """1m candles ``[lo, hi)`` as one candle (None when empty)."""
        if hi <= lo:
            return None
        tape = self.tape
        n = int(tape.count[lo:hi].sum())
        last = int(tape.first_id[hi - 1] + tape.count[hi - 1]) - 1
        return Candle(
            int(self.t[lo]),
            float(self.o[lo]),
            float(self.h[lo:hi].max()),
            float(self.low[lo:hi].min()),
            float(self.c[hi - 1]),
            float(self.v[lo:hi].sum()),
            float(tape.quote[lo:hi].sum()),
            n,
            float(tape.taker_base[lo:hi].sum()),
            float(tape.taker_quote[lo:hi].sum()),
            int(tape.first_id[lo]) if n else -1,
            last if n else -1,
        )

    # --- REST klines -----------------------------------------------------------------------------------

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
        rows = [self.row(c, ms) for c in self._aggregate(lo, hi, ms)]
        if start is not None:
            rows = [r for r in rows if r[0] >= start]
        if end is not None:
            rows = [r for r in rows if r[0] <= end]
        return rows[:limit] if start is not None else rows[-limit:]

    def _aggregate(self, lo: int, hi: int, ms: int) -> list[Candle]:
        t = self.t[lo:hi]
        buckets = t // ms * ms
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
        ends = np.r_[starts[1:], len(t)]
        tape = self.tape
        highs = np.maximum.reduceat(self.h[lo:hi], starts)
        lows = np.minimum.reduceat(self.low[lo:hi], starts)
        sums = [
            np.add.reduceat(a[lo:hi], starts) for a in (self.v, tape.quote, tape.taker_base, tape.taker_quote)
        ]
        counts = np.add.reduceat(tape.count[lo:hi], starts)
        candles = []
        for j, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            open_time = int(buckets[s])
            if int(t[e - 1]) + MINUTE_MS < open_time + ms and lo + e == self.closed:
                continue  # the last bucket is still open
            n = int(counts[j])
            first = int(tape.first_id[lo + s])
            v, q, vb, qb = (float(a[j]) for a in sums)
            o, c = float(self.o[lo + s]), float(self.c[lo + e - 1])
            ids = (first, first + n - 1) if n else (-1, -1)
            candles.append(Candle(open_time, o, float(highs[j]), float(lows[j]), c, v, q, n, vb, qb, *ids))
        return candles

    def row(self, c: Candle, ms: int) -> list[Any]:
        """A REST kline row."""
        return [
            c.open_time,
            self.price(c.o),
            self.price(c.h),
            self.price(c.lo),
            self.price(c.c),
            self.qty(c.v),
            c.open_time + ms - 1,
            f"{c.q:.8f}",
            c.n,
            self.qty(c.taker_base),
            f"{c.taker_quote:.8f}",
            "0",
        ]

    # --- stream klines ---------------------------------------------------------------------------------

    def kline_event(self, interval: str, c: Candle, *, closed: bool, event_ms: int) -> dict[str, Any]:
        """A ``kline`` stream event in Binance's exact shape."""
        return {
            "e": "kline",
            "E": event_ms,
            "s": self.symbol,
            "k": {
                "t": c.open_time,
                "T": c.open_time + TIMEFRAME_MS[interval] - 1,
                "s": self.symbol,
                "i": interval,
                "f": c.first_id,
                "L": c.last_id,
                "o": self.price(c.o),
                "c": self.price(c.c),
                "h": self.price(c.h),
                "l": self.price(c.lo),
                "v": self.qty(c.v),
                "n": c.n,
                "x": closed,
                "q": f"{c.q:.8f}",
                "V": self.qty(c.taker_base),
                "Q": f"{c.taker_quote:.8f}",
                "B": "0",
            },
        }

    def interval_state(
        self, interval: str, i: int, done: int | None, partial: Candle | None = None
    ) -> tuple[Candle, bool]:
        """``interval``'s current candle up to 1m candle ``i`` (``done`` path points of it, or ``partial``,
        the 1m candle so far; None: closed).

        Keeps a running aggregate of the closed 1m candles of the bucket so each step costs O(1).
        """
        ms = TIMEFRAME_MS[interval]
        t = int(self.t[i])
        bucket = t // ms * ms
        run = self.running.get(interval)
        if run is None or run[0] != bucket or run[1] != i:
            run = (bucket, i, self.span(int(np.searchsorted(self.t, bucket)), i))
        current = partial or (self.candle(i) if done is None else self.candle(i, done))
        agg = replace(current if run[2] is None else run[2].then(current), open_time=bucket)
        if done is None:
            self.running[interval] = (bucket, i + 1, agg)
        return agg, done is None and t + MINUTE_MS >= bucket + ms

    # --- rolling 24 h ----------------------------------------------------------------------------------

    def window(self, now_ms: int) -> Candle | None:
        """The rolling 24 h ending at ``now_ms``: closed 1m candles opened since, plus the live one."""
        found = self.span(int(np.searchsorted(self.t, now_ms - DAY_MS)), self.closed)
        if self.live and self.closed < len(self.t):
            part = self.candle(self.closed, self.live)
            found = part if found is None else found.then(part)
        return found
