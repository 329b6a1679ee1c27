"""Prometheus metrics: one registry per ``Metrics``, event helpers, scrape-time providers, an HTTP endpoint.

Names follow Prometheus conventions (``nancemakina_`` prefix, base units, ``_total`` counters) and keep the
prototype's families. Two kinds:

* **Events** (counters, the indicator histogram, WebSocket status) are updated where they happen, with
  one-line helpers: ``metrics.kline_processed("BTCUSDT", "1m", 0.0004)``, ``metrics.decision(decision)``.
* **Snapshots** (mailbox depth, last-message age, positions, unrealized PnL, request weight, parked pairs,
  unrepaired gaps) are read when Prometheus scrapes, from *providers* registered with
  :meth:`Metrics.provide`: callables returning current values from the thread-safe boards
  (``ActorDirectory``, ``LedgerSnapshots``, ...). Never stale, and no actor is asked through its mailbox.

Label values are sanitised (bounded length, conservative characters) and each family keeps at most
``max_series`` label sets; more collapse into ``_overflow``, so a bug cannot explode cardinality. Labels carry
symbols, intervals, actor names and short slugs only, never request parameters or credentials.
"""

from __future__ import annotations

import gzip
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from typing import TYPE_CHECKING, TypeVar, cast
from urllib.parse import urlsplit

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector
from prometheus_client.exposition import choose_encoder, generate_latest, gzip_accepted
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from ..domain.model import Leg
from ..messages import EntryRejected, OrderStateChanged

if TYPE_CHECKING:
    from ..config import MonitoringSettings
    from ..domain.model import Decision

PREFIX = "nancemakina"
INDICATOR_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2)
"""Seconds: one talipp SMA update takes tens of µs; past 50 ms is an outlier (the +Inf bucket)."""
OVERFLOW = "_overflow"
_M = TypeVar("_M", bound=MetricWrapperBase)

LabelKey = tuple[str, ...]
Reading = float | Mapping[str, float] | Mapping[tuple[str, str], float] | Mapping[LabelKey, float]
"""A provider's answer: a number for an unlabelled family, else values keyed by label value(s)."""


class WsState(StrEnum):
    """States of ``websocket_status``; exactly one is 1 per market."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    ERROR = "error"


SNAPSHOTS: dict[str, tuple[str, LabelKey]] = {
    "active_positions": ("Open positions by contract type.", ("contract_type",)),
    "unrealized_pnl": ("Unrealized PnL of the open position, in its margin asset.", ("symbol",)),
    "actor_mailbox_depth": ("Messages waiting in the actor's mailbox.", ("actor",)),
    "actor_last_message_age_seconds": ("Seconds since the actor last handled a message.", ("actor",)),
    "request_weight_used": ("Request weight used this minute (X-MBX-USED-WEIGHT-1M).", ("market",)),
    "pairs_parked": ("Pairs parked: restart budget exhausted or parked by an operator.", ()),
    "pair_parked": ("1 while the pair is parked, else 0.", ("symbol",)),
    "candle_gaps_unrepaired": (
        "Missing closed candles not yet backfilled (no trades meanwhile).",
        ("symbol", "interval"),
    ),
    "replay_progress_ratio": ("Replay position from the data's start (0) to its end (1).", ()),
}
"""Gauge families read from providers at scrape time, by name without prefix: (help, label names)."""

COUNTERS: dict[str, tuple[str, LabelKey]] = {
    "errors": ("Errors caught and survived, by module and exception type.", ("module", "type")),
    "websocket_messages_received": ("WebSocket frames received, by market and type.", ("market", "type")),
    "websocket_reconnects": ("WebSocket reconnections, by market.", ("market",)),
    "klines_processed": ("Closed klines fed to a pair's indicators.", ("symbol", "interval")),
    "signals": ("SMA crossovers seen by the strategy.", ("symbol", "strategy", "direction")),
    "decisions": ("Strategy decisions; reason is `taken` or the skip reason.", ("symbol", "reason")),
    "orders_placed": ("Orders sent to the exchange.", ("symbol", "type", "side")),
    "orders_failed": ("Orders or entries rejected or failed, by reason slug.", ("symbol", "reason")),
    "orders_filled": ("Orders filled.", ("symbol", "type", "side")),
    "actor_restarts": ("Actors restarted by their supervisor.", ("actor",)),
    "candle_gaps_detected": ("Gaps detected in the closed-kline sequence.", ("symbol", "interval")),
    "candles_backfilled": ("Closed klines fetched over REST to fill gaps.", ("symbol", "interval")),
    "naked_position_alerts": ("Positions found or left without a stop-loss on the exchange.", ("symbol",)),
    "alerts": ("Operator alerts raised, by kind.", ("kind",)),
    "rate_limit_responses": ("HTTP 429 (back off) and 418 (IP banned) answers from Binance.", ("code",)),
    "reconciliation_discrepancies": ("Ledger vs exchange differences found by reconciliation.", ("kind",)),
    "entry_priority_entries": (
        "Entries the market reader paused for: `sent` within the hold, or `expired` (outlasted it).",
        ("outcome",),
    ),
    "candle_handoffs": (
        "Closed klines the reader waited on until their pair `finished`, or gave up on (`timeout`).",
        ("market", "outcome"),
    ),
}
"""Counter families by name without prefix or ``_total`` (the client appends it): (help, label names)."""

_ORDER_TYPES = {
    Leg.ENTRY: "MARKET",
    Leg.CLOSE: "MARKET",
    Leg.STOP: "STOP_MARKET",
    Leg.TAKE_PROFIT: "TAKE_PROFIT_MARKET",
}
_UNSAFE = re.compile(r"[^\w.:,/@\[\]-]")
_MAX_LABEL_LEN = 96
_MAX_CACHED_CHILDREN = 50_000
"""Labelled children remembered by raw values; past this, lookups go the uncached (same-result) way."""


def clean_label(value: object) -> str:
    """A bounded, printable label value: unexpected characters become ``_``, long values are cut."""
    return _UNSAFE.sub("_", str(value))[:_MAX_LABEL_LEN]


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
        r.register(_ScrapeCollector(self))
        if process_metrics:
            # process_resident_memory_bytes, open fds, CPU: the evidence that memory stays flat for weeks.
            ProcessCollector(registry=r)

    # -- providers -------------------------------------------------------------------------------------------
    def provide(self, family: str, provider: Callable[[], Reading]) -> None:
        """Read ``family`` (a key of :data:`SNAPSHOTS`) from ``provider`` at every scrape; replaces any other.

        The provider runs on the scrape thread: it reads a snapshot (lock-free or briefly locked), never
        ``ask``s an actor. It returns a number for an unlabelled family, else a mapping keyed by the label
        value (one label) or by the tuple of label values. Without a ``pairs_parked`` provider, that count
        is the sum of ``pair_parked``'s values.
        """
        if family not in SNAPSHOTS:
            raise ValueError(f"unknown snapshot family {family!r}; expected one of {sorted(SNAPSHOTS)}")
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
        """The executor's events: ``submitted`` → placed, ``filled`` → filled, rejections → failed."""
        if isinstance(event, EntryRejected):
            self.order_failed(event.symbol, event.reason)
            return
        order_type = _ORDER_TYPES.get(event.leg, event.leg.value)
        if event.status == "submitted":
            self.order_placed(event.symbol, order_type, event.side)
        elif event.status == "filled":
            self.order_filled(event.symbol, order_type, event.side)
        elif event.status in {"rejected", "unknown"}:
            self.order_failed(event.symbol, event.status)

    def actor_restarted(self, actor: str) -> None:
        self._count("actor_restarts", actor)

    def gap_detected(self, symbol: str, interval: str) -> None:
        self._count("candle_gaps_detected", symbol, interval)

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


class _ScrapeCollector:
    """Uptime, thread count and every snapshot family, computed when Prometheus scrapes."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # the names are fixed by SNAPSHOTS; describing must not run the providers

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        yield GaugeMetricFamily(f"{PREFIX}_uptime_seconds", "Seconds since the bot started.", m.uptime_s())
        yield GaugeMetricFamily(
            f"{PREFIX}_threads",
            "Live Python threads (one per actor); compare with TasksMax.",
            threading.active_count(),
        )
        providers = m.providers()
        readings = {name: self._read(name, fn) for name, fn in providers.items()}
        parked = readings.get("pair_parked")
        if "pairs_parked" not in providers and isinstance(parked, dict):
            readings["pairs_parked"] = float(sum(parked.values()))
        for name, (doc, labels) in SNAPSHOTS.items():
            family = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
            for key, value in self._samples(labels, readings.get(name)):
                family.add_metric(list(key), value)
            yield family

    def _read(self, name: str, provider: Callable[[], Reading]) -> float | dict[LabelKey, float] | None:
        try:
            reading = provider()
            if isinstance(reading, int | float):
                return float(reading)
            return {(k,) if isinstance(k, str) else tuple(k): float(v) for k, v in reading.items()}
        except Exception as exc:
            # A broken provider must not fail the whole scrape: drop its family and count the error.
            logger.warning(f"metrics provider {name!r} failed: {exc!r}")
            self._metrics.error("metrics", f"provider_{name}")
            return None

    @staticmethod
    def _samples(
        labels: LabelKey, reading: float | dict[LabelKey, float] | None
    ) -> Iterator[tuple[LabelKey, float]]:
        if isinstance(reading, float) and not labels:
            yield (), reading
        elif isinstance(reading, dict):
            # No series cap: a snapshot holds only what the provider returns now, so it cannot accumulate.
            clean = {tuple(clean_label(v) for v in k): v for k, v in reading.items() if len(k) == len(labels)}
            yield from clean.items()


def _package_version() -> str:
    try:
        return metadata.version("nancemakina")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- HTTP endpoint ---------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], metrics: Metrics, health: Callable[[], bool]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.metrics = metrics
        self.health = health
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server_version = "nancemakina"

    def do_GET(self) -> None:
        server = cast("_Server", self.server)
        path = urlsplit(self.path).path
        if path in {"/metrics", "/"}:
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            body = encoder(server.metrics.registry)
            headers = [("Content-Type", content_type)]
            if gzip_accepted(self.headers.get("Accept-Encoding", "")):
                body = gzip.compress(body)
                headers.append(("Content-Encoding", "gzip"))
            self._reply(HTTPStatus.OK, body, headers)
        elif path == "/healthz":
            try:
                ok = bool(server.health())
            except Exception:
                ok = False
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            self._reply(status, b"ok\n" if ok else b"unhealthy\n", [("Content-Type", "text/plain")])
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n", [("Content-Type", "text/plain")])

    def _reply(self, status: HTTPStatus, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        """A scrape every 15 s would drown the log."""


class MetricsServer:
    """``/metrics`` (Prometheus text or OpenMetrics) and ``/healthz`` over HTTP from a daemon thread."""

    def __init__(
        self,
        metrics: Metrics,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        health: Callable[[], bool] | None = None,
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.health = health or (lambda: True)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls, settings: MonitoringSettings, metrics: Metrics, *, health: Callable[[], bool] | None = None
    ) -> MetricsServer | None:
        """The server ``config.monitoring`` asks for, or None when monitoring is disabled."""
        if not settings.enabled:
            return None
        return cls(metrics, settings.host, settings.prometheus_port, health=health)

    @property
    def bound_port(self) -> int | None:
        return None if self._server is None else int(self._server.server_address[1])

    def start(self) -> int:
        """Bind and serve; returns the bound port (port 0 picks a free one). ``OSError`` if it cannot bind."""
        if self._server is not None:
            return int(self._server.server_address[1])
        server = _Server((self.host, self.port), self.metrics, self.health)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="metrics-http", kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        port = int(server.server_address[1])
        logger.info(f"metrics on http://{self.host}:{port}/metrics")
        return port

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and release the port; idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout_s)
