"""``Metrics``: every nancemakina metric family in one registry, with one-line helpers for the events.

Two kinds of family (``metric_families`` lists them):

* **Events** (counters, the indicator histogram, WebSocket status) are updated where they happen, with
  one-line helpers: ``metrics.kline_processed("BTCUSDT", "1m", 0.0004)``, ``metrics.decision(decision)``.
* **Snapshots** (mailbox depth, last-message age, positions, unrealized PnL, request weight, parked pairs,
  unrepaired gaps) are read when Prometheus scrapes (``scrape_collector``), from *providers* registered
  with :meth:`Metrics.provide`.

Each family keeps at most ``max_series`` label sets; more collapse into ``_overflow``, so a bug cannot
explode cardinality. ``metrics_server`` serves the registry over HTTP.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics import MetricWrapperBase

from ..domain.model import Direction, Leg, SkipReason
from ..messages import EntryRejected, OrderFilled, OrderStateChanged
from .metric_families import (
    ALERT_KINDS,
    COUNTERS,
    INDICATOR_BUCKETS,
    ORDER_TYPES,
    OVERFLOW,
    PREFIX,
    SNAPSHOT_COUNTERS,
    SNAPSHOTS,
    LabelKey,
    Reading,
    WsState,
    clean_label,
)
from .scrape_collector import ScrapeCollector

if TYPE_CHECKING:
    from ..domain.model import Decision

_M = TypeVar("_M", bound=MetricWrapperBase)

_ORDER_TYPES = {
    Leg.ENTRY: "MARKET",
    Leg.CLOSE: "MARKET",
    Leg.TIME_EXIT: "MARKET",
    Leg.REVERSAL: "MARKET",
    Leg.STOP: "STOP_MARKET",
    Leg.TAKE_PROFIT: "TAKE_PROFIT_MARKET",
    Leg.TRAILING_STOP: "TRAILING_STOP_MARKET",
}
_MAX_CACHED_CHILDREN = 50_000
"""Labelled children remembered by raw values; past this, lookups go the uncached (same-result) way."""


class Metrics:
    """Every nancemakina metric family, in a registry of its own (never the process-global default)."""

    def __init__(
        self,
        *,
        mode: str = "unknown",
        version: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_series: int = 10_000,
        process_metrics: bool = True,
    ) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        self._started = clock()
        self._max_series = max_series
        self._lock = threading.Lock()
        self._series: dict[str, set[LabelKey]] = {}
        self._children: dict[tuple[MetricWrapperBase, tuple[object, ...]], MetricWrapperBase] = {}
        """Labelled children by metric and *raw* values: the hot path (every closed kline) is one dict
        lookup, not sanitising, the series check and prometheus_client's locked ``labels`` each time."""
        self._providers: dict[str, Callable[[], Reading]] = {}
        self._klines: deque[tuple[str, str, float | None]] = deque()
        """Closed klines a pair processed, counted at the next ``flush`` (see ``kline_processed_soon``)."""
        r, p = self.registry, PREFIX
        self.info = Info(p, "Build and run mode of this process (value is always 1).", registry=r)
        self.info.info({"version": clean_label(version or _package_version()), "mode": clean_label(mode)})
        self.counters = {
            name: Counter(f"{p}_{name}", doc, labels, registry=r) for name, (doc, labels) in COUNTERS.items()
        }
        self.ws_status = Gauge(
            f"{p}_websocket_status",
            "1 for the market stream's current state, 0 for the others.",
            ("market", "state"),
            registry=r,
        )
        self.indicator_seconds = Histogram(
            f"{p}_indicator_update_duration_seconds",
            "Time to update a pair's indicators and strategy with one closed kline.",
            ("symbol", "interval"),
            buckets=INDICATOR_BUCKETS,
            registry=r,
        )
        r.register(ScrapeCollector(self))
        if process_metrics:
            # process_resident_memory_bytes, open fds, CPU: the evidence that memory stays flat for weeks.
            ProcessCollector(registry=r)

    # -- providers -------------------------------------------------------------------------------------------
    def provide(self, family: str, provider: Callable[[], Reading]) -> None:
        """Read ``family`` (of :data:`SNAPSHOTS` or :data:`SNAPSHOT_COUNTERS`) from ``provider`` at every
        scrape; replaces any other.

        The provider runs on the scrape thread: it reads a snapshot (lock-free or briefly locked), never
        ``ask``s an actor. It returns a number for an unlabelled family, else a mapping keyed by the label
        value (one label) or by the tuple of label values. Without a ``pairs_parked`` provider, that count
        is the sum of ``pair_parked``'s values.
        """
        if family not in SNAPSHOTS and family not in SNAPSHOT_COUNTERS:
            known = sorted([*SNAPSHOTS, *SNAPSHOT_COUNTERS])
            raise ValueError(f"unknown snapshot family {family!r}; expected one of {known}")
        with self._lock:
            self._providers[family] = provider

    def unprovide(self, family: str) -> None:
        with self._lock:
            self._providers.pop(family, None)

    def providers(self) -> dict[str, Callable[[], Reading]]:
        with self._lock:
            return dict(self._providers)

    def uptime_s(self) -> float:
        return self._clock() - self._started

    def exposition(self) -> bytes:
        """The Prometheus text format, as a scrape would see it."""
        self.flush()
        return generate_latest(self.registry)

    # -- event helpers ---------------------------------------------------------------------------------------
    def error(self, module: str, kind: str) -> None:
        """An exception caught and survived; ``kind`` is its type name, e.g. ``type(exc).__name__``."""
        self._count("errors", module, kind)

    def websocket_state(self, market: str, state: WsState | str) -> None:
        """The market stream's connection state; an unknown state counts as ``error``."""
        current = state if state in set(WsState) else WsState.ERROR
        for s in WsState:
            self._labels(self.ws_status, "websocket_status", market, s.value).set(1 if s == current else 0)

    def websocket_message(self, market: str, kind: str, count: int = 1) -> None:
        self._count("websocket_messages_received", market, kind, n=count)

    def websocket_reconnect(self, market: str) -> None:
        self._count("websocket_reconnects", market)

    def kline_processed(self, symbol: str, interval: str, duration_s: float | None = None) -> None:
        """One closed kline handled; ``duration_s`` is the indicator/strategy update time when measured."""
        self._count("klines_processed", symbol, interval)
        if duration_s is not None:
            family = "indicator_update_duration_seconds"
            self._labels(self.indicator_seconds, family, symbol, interval).observe(duration_s)

    def kline_processed_soon(self, symbol: str, interval: str, duration_s: float | None = None) -> None:
        """``kline_processed``, counted at the next ``flush``: the pair thread that calls it at a candle close
        pays one deque append (thread-safe), not two locked metric updates, while the other pairs of the
        close wait their turn. Every scrape flushes first, and the metrics pump once a second."""
        self._klines.append((symbol, interval, duration_s))

    def flush(self) -> int:
        """Count what ``kline_processed_soon`` queued; returns how many. Any thread may call it."""
        done = 0
        pending = self._klines
        while True:
            try:
                symbol, interval, duration_s = pending.popleft()
            except IndexError:
                return done
            self.kline_processed(symbol, interval, duration_s)
            done += 1

    def decision(self, decision: Decision, strategy: str = "v1") -> None:
        """A crossover (``signals_total``) and what became of it: ``taken`` or the skip reason."""
        self._count("signals", decision.symbol, strategy, decision.direction.value)
        if decision.taken:
            reason = "taken"
        else:
            reason = decision.reason.value if decision.reason is not None else "skipped"
        self._count("decisions", decision.symbol, reason)

    def order_placed(self, symbol: str, order_type: str, side: str) -> None:
        self._count("orders_placed", symbol, order_type, side)

    def order_failed(self, symbol: str, reason: str) -> None:
        """``reason`` is a slug such as ``below_min_notional`` or ``binance_-2019``, never a raw message."""
        self._count("orders_failed", symbol, reason)

    def order_filled(self, symbol: str, order_type: str, side: str) -> None:
        self._count("orders_filled", symbol, order_type, side)

    def order_event(self, event: OrderStateChanged | EntryRejected) -> None:
        """The executor's events: ``submitted`` → placed, rejections → failed. Fills are counted once per
        order from the ledger (:meth:`fill`), which also hears of the stop and take-profit fills."""
        if isinstance(event, EntryRejected):
            self.order_failed(event.symbol, event.reason)
            return
        if event.status == "submitted":
            self.order_placed(event.symbol, _ORDER_TYPES.get(event.leg, event.leg.value), event.side)
        elif event.status in {"rejected", "unknown"}:
            self.order_failed(event.symbol, event.status)

    def fill(self, event: OrderFilled) -> None:
        """One of our orders filled in full (entry, stop-loss, take-profit or close), as the ledger saw it."""
        order_type = _ORDER_TYPES.get(event.leg, "MARKET") if event.leg is not None else "MARKET"
        self.order_filled(event.symbol, order_type, event.side)

    def configured(self, symbol: str, timeframes: tuple[str, ...]) -> None:
        """Every labelled series of a configured pair at 0 from the start, so ``rate()`` and ``increase()``
        see its first event (a series that appears with its first event hides that event)."""
        zero = 0.0
        for tf in timeframes:
            for family in ("klines_processed", "candle_gaps_detected", "candles_backfilled"):
                self._count(family, symbol, tf, n=zero)
        for direction in Direction:
            self._count("signals", symbol, "v1", direction.value, n=zero)
        for reason in ("taken", *(r.value for r in SkipReason)):
            self._count("decisions", symbol, reason, n=zero)
        for order_type in ORDER_TYPES:
            for side in ("BUY", "SELL"):
                self._count("orders_placed", symbol, order_type, side, n=zero)
                self._count("orders_filled", symbol, order_type, side, n=zero)
        self._count("naked_position_alerts", symbol, n=zero)

    def process_started(self, markets: tuple[str, ...]) -> None:
        """The unlabelled-by-pair families a process always has, at 0: alerts, rate limits, reconnects."""
        for kind in ALERT_KINDS:
            self._count("alerts", kind, n=0.0)
        for code in ("429", "418"):
            self._count("rate_limit_responses", code, n=0.0)
        for market in markets:
            self._count("websocket_reconnects", market, n=0.0)

    def actor_restarted(self, actor: str) -> None:
        self._count("actor_restarts", actor)

    def gap_detected(self, symbol: str, interval: str, count: int = 1) -> None:
        self._count("candle_gaps_detected", symbol, interval, n=count)

    def candles_backfilled(self, symbol: str, interval: str, count: int) -> None:
        self._count("candles_backfilled", symbol, interval, n=count)

    def alert(self, kind: str, symbol: str | None = None) -> None:
        """An operator alert (``messages.Alert``); ``naked_position`` is also counted per symbol."""
        self._count("alerts", kind)
        if kind == "naked_position":
            self._count("naked_position_alerts", symbol or "")

    def rate_limit_response(self, code: int) -> None:
        """Binance answered 429 (back off) or 418 (IP banned)."""
        self._count("rate_limit_responses", code)

    def reconciliation_discrepancy(self, kind: str, count: int = 1) -> None:
        self._count("reconciliation_discrepancies", kind, n=count)

    def entry_priority(self, outcome: str, count: int = 1) -> None:
        """Entries the market reader paused for: ``sent`` within the hold, or ``expired``."""
        self._count("entry_priority_entries", outcome, n=count)

    def candle_handoff(self, market: str, outcome: str, count: int = 1) -> None:
        """Closed klines handed to their pair with the reader waiting: ``finished`` or ``timeout``."""
        self._count("candle_handoffs", market, outcome, n=count)

    # -- internals -------------------------------------------------------------------------------------------
    def bounded(self, family: str, values: tuple[object, ...]) -> LabelKey:
        """Sanitised label values, or all ``_overflow`` once ``family`` holds ``max_series`` other sets."""
        key = tuple(clean_label(v) for v in values)
        with self._lock:
            seen = self._series.setdefault(family, set())
            if key in seen:
                return key
            if len(seen) >= self._max_series:
                return (OVERFLOW,) * len(key)
            seen.add(key)
        return key

    def _count(self, family: str, *values: object, n: float = 1) -> None:
        self._labels(self.counters[family], family, *values).inc(n)

    def _labels(self, metric: _M, family: str, *values: object) -> _M:
        key = (metric, values)
        try:
            child = self._children.get(key)
        except TypeError:  # an unhashable label value: no caching, same result
            return metric.labels(*self.bounded(family, values))
        if child is None:
            child = metric.labels(*self.bounded(family, values))
            if len(self._children) < _MAX_CACHED_CHILDREN:
                self._children[key] = child
        return cast("_M", child)


def _package_version() -> str:
    try:
        return metadata.version("nancemakina")
    except metadata.PackageNotFoundError:
        return "unknown"
