"""``ScrapeCollector``: the families computed when Prometheus scrapes, never stored between scrapes.

Uptime, the live thread count and every ``SNAPSHOTS`` and ``SNAPSHOT_COUNTERS`` family, read from the
providers registered with ``Metrics.provide``: callables returning current values from the thread-safe
boards (``ActorDirectory``, ``LedgerSnapshots``, ...). Never stale, and no actor is asked through its
mailbox. A provider that fails drops its own family from that scrape and is counted as an error; the rest
of the scrape goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from loguru import logger
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from .metric_families import PREFIX, SNAPSHOT_COUNTERS, SNAPSHOTS, LabelKey, Reading, clean_label


class ScrapeSource(Protocol):
    """What the collector reads of ``Metrics``."""

    def uptime_s(self) -> float: ...
    def providers(self) -> dict[str, Callable[[], Reading]]: ...
    def error(self, module: str, kind: str) -> None: ...


class ScrapeCollector:
    """Uptime, thread count and every snapshot family, computed when Prometheus scrapes."""

    def __init__(self, metrics: ScrapeSource) -> None:
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
            family: GaugeMetricFamily | CounterMetricFamily = GaugeMetricFamily(
                f"{PREFIX}_{name}", doc, labels=labels
            )
            for key, value in self._samples(labels, readings.get(name)):
                family.add_metric(list(key), value)
            yield family
        for name, (doc, labels) in SNAPSHOT_COUNTERS.items():
            family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
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
