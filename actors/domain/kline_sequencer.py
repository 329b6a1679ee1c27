"""``KlineSequencer``: exactly-once, in-order closed candles per (symbol, timeframe); pure, no I/O.

The stream, its reconnects and REST backfill all feed closed klines through ``accept``. For each key the
sequencer remembers the open time of the last closed candle it let through and answers:

* ``DELIVER`` — the next candle (or the first one of an untracked key): pass it on;
* ``DUPLICATE`` — open time ≤ last (a reconnect overlap, a rotation overlap, a backfill that raced the
  stream): drop it;
* ``GAP`` — candles are missing before this one: fetch ``missing`` over REST, ``accept(..., backfilled=True)``
  each, ``settle_gap(missing)``, then ``accept`` this kline again (it is not consumed by a GAP verdict).

It never invents candles. Candles close in order, so a hole *before* a candle the exchange did return is
a real gap on the exchange: it is recorded as unrepaired (the pair refuses trades) and passed over. A hole
at the *tail* of an ``after_reconnect`` range may just not be published yet, so it is left to the next
streamed kline to prove.

Thread-safety: mutate under one lock (MarketStream's: its ws thread and its actor both feed it).
``stats()``, ``last_open`` and ``unrepaired`` may be read from any thread: counters are ints and the
unrepaired map is an immutable mapping replaced on change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from .model import TIMEFRAME_MS, Kline

Key = tuple[str, str]
"""(symbol, timeframe)."""
MAX_GAPS_KEPT = 16
"""Unrepaired gaps remembered per key (the newest; counters keep the totals): memory stays bounded."""


class Verdict(StrEnum):
    """What to do with one closed kline."""

    DELIVER = "deliver"
    DUPLICATE = "duplicate"
    GAP = "gap"


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenRange:
    """Inclusive range of candle open times of one key: ``start_ms, start_ms + step, ..., end_ms``."""

    symbol: str
    timeframe: str
    start_ms: int
    end_ms: int

    @property
    def count(self) -> int:
        """Number of candles the range spans."""
        return (self.end_ms - self.start_ms) // TIMEFRAME_MS[self.timeframe] + 1


@dataclass(frozen=True, slots=True)
class Accepted:
    """The sequencer's answer; ``missing`` is set for ``GAP``."""

    verdict: Verdict
    missing: OpenRange | None = None


DELIVERED = Accepted(Verdict.DELIVER)
DUPLICATED = Accepted(Verdict.DUPLICATE)


@dataclass(frozen=True, slots=True, kw_only=True)
class SequencerStats:
    """Counters since start (read from any thread)."""

    delivered: int
    duplicates: int
    gaps_detected: int
    candles_backfilled: int
    unrepaired_gaps: int
    unrepaired_candles: int
    tracked: int
    gaps_by_key: Mapping[Key, int] = field(default_factory=dict)
    """``gaps_detected`` per (symbol, timeframe)."""
    backfilled_by_key: Mapping[Key, int] = field(default_factory=dict)
    """``candles_backfilled`` per (symbol, timeframe)."""


class KlineSequencer:
    """Dedupe and gap detection of closed klines (see the module docstring)."""

    def __init__(self) -> None:
        self._last: dict[Key, int] = {}
        self._unrepaired: MappingProxyType[Key, tuple[OpenRange, ...]] = MappingProxyType({})
        self.delivered = 0
        self.duplicates = 0
        self.gaps_detected = 0
        self.candles_backfilled = 0
        # replaced whole on change (gaps are rare), so ``stats()`` may copy them from any thread
        self._gaps: Mapping[Key, int] = {}
        self._backfilled: Mapping[Key, int] = {}
        self.unrepaired_gaps = 0
        self.unrepaired_candles = 0

    # --- tracking ------------------------------------------------------------------------------

    def track(self, symbol: str, timeframe: str, last_open_ms: int) -> None:
        """Start a key at ``last_open_ms`` (the last closed candle the consumer has); no-op if tracked.

        Seeding at subscription time makes the first streamed candle prove continuity from there.
        """
        self._last.setdefault((symbol, timeframe), last_open_ms)

    def forget(self, symbol: str, timeframe: str) -> None:
        """Stop tracking a key (unsubscribed); its unrepaired gaps are dropped with it."""
        self._last.pop((symbol, timeframe), None)
        self.clear_unrepaired(symbol, timeframe)

    def last_open(self, symbol: str, timeframe: str) -> int | None:
        """Open time of the last closed candle let through for the key, if tracked."""
        return self._last.get((symbol, timeframe))

    def keys(self) -> frozenset[Key]:
        return frozenset(self._last)

    # --- the verdict -----------------------------------------------------------------------------

    def accept(self, kline: Kline, *, backfilled: bool = False) -> Accepted:
        """Judge one closed kline (streamed, or ``backfilled`` from REST); advances on ``DELIVER`` only.

        A backfilled kline never gets ``GAP``: a hole before it is a real gap on the exchange, recorded
        as unrepaired, and the kline is delivered.
        """
        key = (kline.symbol, kline.timeframe)
        last = self._last.get(key)
        open_ms = kline.open_time_ms
        if last is not None:
            if open_ms <= last:
                self.duplicates += 1
                return DUPLICATED
            step = TIMEFRAME_MS[kline.timeframe]
            if open_ms > last + step:
                missing = OpenRange(
                    symbol=kline.symbol,
                    timeframe=kline.timeframe,
                    start_ms=last + step,
                    end_ms=open_ms - step,
                )
                if not backfilled:
                    self.gaps_detected += 1
                    self._gaps = {**self._gaps, key: self._gaps.get(key, 0) + 1}
                    return Accepted(Verdict.GAP, missing)
                self._record_unrepaired(missing)
        self._last[key] = open_ms
        self.delivered += 1
        if backfilled:
            self.candles_backfilled += 1
            self._backfilled = {**self._backfilled, key: self._backfilled.get(key, 0) + 1}
        return DELIVERED

    def settle_gap(self, missing: OpenRange) -> OpenRange | None:
        """After backfilling ``missing``: whatever of it is still absent is a real gap; returns that part.

        Call it only for a ``GAP`` verdict's range (a newer candle proved the whole range has closed).
        """
        key = (missing.symbol, missing.timeframe)
        last = self._last.get(key)
        if last is None or last >= missing.end_ms:
            return None
        start = max(missing.start_ms, last + TIMEFRAME_MS[missing.timeframe])
        hole = OpenRange(
            symbol=missing.symbol, timeframe=missing.timeframe, start_ms=start, end_ms=missing.end_ms
        )
        self._record_unrepaired(hole)
        self._last[key] = missing.end_ms
        return hole

    def after_reconnect(self, now_server_ms: int, keys: Iterable[Key] | None = None) -> list[OpenRange]:
        """Ranges of candles that may have closed while disconnected, for ``keys`` (default: all tracked).

        For each key: from the candle after the last one let through up to the last candle that can
        have closed by ``now_server_ms``. Keys with nothing to fetch are left out. Sorted by key.
        """
        wanted = self._last.keys() if keys is None else [k for k in keys if k in self._last]
        ranges = []
        for symbol, timeframe in sorted(wanted):
            step = TIMEFRAME_MS[timeframe]
            start = self._last[(symbol, timeframe)] + step
            end = now_server_ms // step * step - step
            if start <= end:
                ranges.append(OpenRange(symbol=symbol, timeframe=timeframe, start_ms=start, end_ms=end))
        return ranges

    # --- gaps the exchange itself has ------------------------------------------------------------

    def unrepaired(self, symbol: str, timeframe: str) -> tuple[OpenRange, ...]:
        """Real gaps recorded for the key (the pair must not open trades while it has any)."""
        return self._unrepaired.get((symbol, timeframe), ())

    def all_unrepaired(self) -> MappingProxyType[Key, tuple[OpenRange, ...]]:
        return self._unrepaired

    def clear_unrepaired(self, symbol: str, timeframe: str) -> None:
        """An operator (or a pair re-warmed from REST) accepts the gap."""
        key = (symbol, timeframe)
        if key in self._unrepaired:
            remaining = dict(self._unrepaired)
            del remaining[key]
            self._unrepaired = MappingProxyType(remaining)

    def stats(self) -> SequencerStats:
        return SequencerStats(
            delivered=self.delivered,
            duplicates=self.duplicates,
            gaps_detected=self.gaps_detected,
            candles_backfilled=self.candles_backfilled,
            unrepaired_gaps=self.unrepaired_gaps,
            unrepaired_candles=self.unrepaired_candles,
            tracked=len(self._last),
            gaps_by_key=self._gaps,
            backfilled_by_key=self._backfilled,
        )

    def _record_unrepaired(self, hole: OpenRange) -> None:
        key = (hole.symbol, hole.timeframe)
        updated = dict(self._unrepaired)
        updated[key] = (*updated.get(key, ())[-(MAX_GAPS_KEPT - 1) :], hole)
        self._unrepaired = MappingProxyType(updated)
        self.unrepaired_gaps += 1
        self.unrepaired_candles += hole.count
