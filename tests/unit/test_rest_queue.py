"""RestQueue: the pairs' REST work served by one worker per gateway, urgent work first, cold warm-ups in the
pairs' order, late work last, rate limits waited out."""

from __future__ import annotations

import threading

import pytest

from nancemakina.actors.domain.model import ContractType, Kline
from nancemakina.actors.exchange.errors import RateLimited
from nancemakina.actors.tree.rest_queue import COLD, LATE, URGENT, RestQueue

USD = ContractType.USDT_M


class Source:
    """Answers reads in the order they are made; the first read blocks until ``go`` is set."""

    def __init__(self, rate_limited: int = 0) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.go = threading.Event()
        self.rate_limited = rate_limited

    def recent_closed_klines(
        self, symbol: str, contract: ContractType, interval: str, count: int
    ) -> list[Kline]:
        self.go.wait(5)
        if self.rate_limited:
            self.rate_limited -= 1
            raise RateLimited("weight budget", "busy", retry_after_s=0.0)
        self.calls.append(("recent", symbol, interval, count))
        return []

    def closed_klines_range(
        self, symbol: str, contract: ContractType, interval: str, start_open_ms: int, end_open_ms: int
    ) -> list[Kline]:
        self.go.wait(5)
        self.calls.append(("range", symbol, interval, start_open_ms, end_open_ms))
        return []


def test_cold_warm_ups_go_pair_by_pair_and_urgent_reads_first() -> None:
    source = Source()
    queue = RestQueue([source])
    futures = [  # submitted in a scrambled order, as 15 pair actors starting together would
        queue.submit(
            lambda s, sym=sym, tf=tf: s.recent_closed_klines(sym, USD, tf, 212), rank=(COLD, rank, tf_ms)
        )
        for rank, sym in ((2, "C"), (0, "A"), (1, "B"))
        for tf, tf_ms in (("5m", 300_000), ("1m", 60_000))
    ]
    futures.append(queue.submit(lambda s: s.closed_klines_range("L", USD, "1m", 0, 60_000), rank=(LATE, 0)))
    futures.append(queue.submit(lambda s: s.closed_klines_range("Z", USD, "1m", 0, 60_000), rank=(URGENT,)))
    assert queue.pending == 8
    queue.start()
    source.go.set()
    for future in futures:
        future.result(timeout=5)
    assert [c[1:3] for c in source.calls] == [
        ("Z", "1m"),
        ("A", "1m"),
        ("A", "5m"),
        ("B", "1m"),
        ("B", "5m"),
        ("C", "1m"),
        ("C", "5m"),
        ("L", "1m"),
    ]
    assert queue.served == 8
    queue.close()


def test_each_worker_reads_through_its_own_source() -> None:
    sources = [Source(), Source()]
    for s in sources:
        s.go.set()
    queue = RestQueue(sources)
    queue.start()
    done = [
        queue.submit(lambda s, i=i: s.recent_closed_klines(f"S{i}", USD, "1m", 1), rank=(COLD, i))
        for i in range(20)
    ]
    for future in done:
        future.result(timeout=5)
    assert sum(len(s.calls) for s in sources) == 20
    assert len(queue.threads) == 2
    queue.close()


def test_a_rate_limited_read_is_retried_and_other_errors_reach_the_caller() -> None:
    source = Source(rate_limited=2)
    source.go.set()
    queue = RestQueue([source])
    queue.start()
    assert queue.run(lambda s: s.recent_closed_klines("A", USD, "1m", 5), rank=(URGENT,)) == []
    assert source.calls == [("recent", "A", "1m", 5)]

    def broken(_s: object) -> list[Kline]:
        raise ValueError("bad page")

    with pytest.raises(ValueError, match="bad page"):
        queue.run(broken, rank=(URGENT,))
    queue.close()


def test_closing_fails_what_is_still_queued_and_refuses_more() -> None:
    queue = RestQueue([Source()])
    waiting = queue.submit(lambda s: s.recent_closed_klines("A", USD, "1m", 5), rank=(COLD, 0))
    queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        waiting.result(timeout=1)
    with pytest.raises(RuntimeError, match="closed"):
        queue.run(lambda s: s.recent_closed_klines("A", USD, "1m", 5), rank=(URGENT,))


def test_an_empty_queue_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one source"):
        RestQueue([])
