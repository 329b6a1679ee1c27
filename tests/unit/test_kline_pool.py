"""KlinePool: pair actors' REST reads spread over several gateways, each call answered by exactly one."""

from __future__ import annotations

import pytest

from nancemakina.actors.domain.model import ContractType, Kline
from nancemakina.actors.tree.pair_timeframe import KlinePool


class Source:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[object, ...]] = []

    def recent_closed_klines(
        self, symbol: str, contract: ContractType, interval: str, count: int
    ) -> list[Kline]:
        self.calls.append(("recent", symbol, contract, interval, count))
        return []

    def closed_klines_range(
        self, symbol: str, contract: ContractType, interval: str, start_open_ms: int, end_open_ms: int
    ) -> list[Kline]:
        self.calls.append(("range", symbol, interval, start_open_ms, end_open_ms))
        return []


def test_calls_go_to_the_sources_in_turn_with_their_arguments() -> None:
    sources = [Source("a"), Source("b"), Source("c")]
    pool = KlinePool(sources)
    for tf in ("1m", "5m", "15m", "1h"):
        pool.recent_closed_klines("BTCUSDT", ContractType.USDT_M, tf, 210)
    pool.closed_klines_range("ETHUSDT", ContractType.USDT_M, "1m", 60_000, 120_000)
    assert [len(s.calls) for s in sources] == [2, 2, 1]
    assert sources[0].calls == [
        ("recent", "BTCUSDT", ContractType.USDT_M, "1m", 210),
        ("recent", "BTCUSDT", ContractType.USDT_M, "1h", 210),
    ]
    assert sources[1].calls[-1] == ("range", "ETHUSDT", "1m", 60_000, 120_000)


def test_an_empty_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one source"):
        KlinePool([])
