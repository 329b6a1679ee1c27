"""``RestQueue``: the pairs' REST work (warm-up history, gap repairs, account settings), served in order.

At a cold start every pair actor wants its history at once: 590 symbols × 5 timeframes is 2,950 reads, far
more weight than one minute's budget allows. Left to race for the gateways and the budget, they finish in
whatever order they win, so nearly every pair waits for the last minute of the warm-up before all of its
timeframes are warm. Served in order instead, pair after pair, each pair is warm (and trading) as soon as its
own reads are done, and the warm-up's progress is a count.

Order: work for pairs already trading (gap repairs) and for restarted pairs first (``URGENT``), then cold
warm-ups by the pair's rank (its place in the config) and the timeframe's (``COLD``), then what can wait
for every warm-up read (``LATE``: a symbol's margin type and leverage on a fresh account, needed by its
first entry, which sets them itself if it comes first); ties in submission order. Each worker owns one
klines gateway (its own connection and lock), which a job may use or not; all share the venue's budget.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from loguru import logger

from ..domain.model import ContractType, Kline
from ..exchange.errors import RateLimited

T = TypeVar("T")
URGENT = 0
"""Rank class of work for pairs already trading or restarted: before every cold warm-up."""
COLD = 1
"""Rank class of cold warm-ups."""
LATE = 2
"""Rank class of work that waits for every warm-up read."""


class KlineSource(Protocol):
    """The REST calls a pair actor needs (satisfied by ``BinanceGateway``)."""

    def recent_closed_klines(
        self, symbol: str, contract: ContractType, interval: str, count: int
    ) -> list[Kline]:
        """The last ``count`` closed candles, oldest first."""
        ...

    def closed_klines_range(
        self, symbol: str, contract: ContractType, interval: str, start_open_ms: int, end_open_ms: int
    ) -> list[Kline]:
        """Closed candles with open time in [start, end], oldest first."""
        ...


@dataclass(order=True, slots=True)
class _Job:
    rank: tuple[int, ...]
    seq: int
    call: Callable[[KlineSource], Any] = field(compare=False)
    future: Future[Any] = field(compare=False)


class RestQueue:
    """See the module docstring. ``start()`` the workers once; ``submit`` from any thread."""

    def __init__(self, sources: Sequence[KlineSource], *, rate_limit_attempts: int = 5) -> None:
        if not sources:
            raise ValueError("RestQueue needs at least one source")
        self._sources = tuple(sources)
        self._attempts = rate_limit_attempts
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self.threads: list[threading.Thread] = []
        self.served = 0
        """Jobs finished (with a result or an error)."""

    def start(self, name: str = "rest-queue") -> list[threading.Thread]:
        """Start one worker per source; returns the threads (for a thread watch)."""
        for i, source in enumerate(self._sources):
            thread = threading.Thread(target=self._work, args=(source,), name=f"{name}-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)
        return self.threads

    def close(self) -> None:
        """Workers end once idle; work still queued fails with ``RuntimeError``."""
        with self._cond:
            self._closed = True
            jobs, self._heap = self._heap, []
            self._cond.notify_all()
        for job in jobs:
            job.future.set_exception(RuntimeError("the REST queue is closed"))

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def submit(self, call: Callable[[KlineSource], T], *, rank: tuple[int, ...]) -> Future[T]:
        """Queue ``call(source)``; lower ``rank`` first. A 429/418 is waited out and retried (the shared
        budget holds the next request until Retry-After has passed, so retrying is waiting)."""
        future: Future[T] = Future()
        with self._cond:
            if self._closed:
                future.set_exception(RuntimeError("the REST queue is closed"))
                return future
            heapq.heappush(self._heap, _Job(rank, next(self._seq), call, future))
            self._cond.notify()
        return future

    def run(self, call: Callable[[KlineSource], T], *, rank: tuple[int, ...]) -> T:
        """``submit`` and wait for the result (re-raising the read's error)."""
        return self.submit(call, rank=rank).result()

    def _work(self, source: KlineSource) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if not self._heap:
                    return
                job = heapq.heappop(self._heap)
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(self._attempt(source, job.call))
            except Exception as exc:  # delivered to the waiting pair actor, which decides
                job.future.set_exception(exc)
            with self._cond:
                self.served += 1

    def _attempt(self, source: KlineSource, call: Callable[[KlineSource], T]) -> T:
        for attempt in range(1, self._attempts):
            try:
                return call(source)
            except RateLimited as exc:
                logger.warning(f"pair REST work rate limited ({exc.retry_after_s:g} s), attempt {attempt}")
        return call(source)
