"""A pair decides a streamed candle on the market reader's thread only when nothing in that can block."""

from __future__ import annotations

import threading

import pykka

from nancemakina.actors.domain.model import ContractType, Kline, PortfolioView
from nancemakina.actors.messages import KlineClosed
from nancemakina.actors.tree.pair_timeframe import PairTimeframe
from nancemakina.actors.tree.rest_queue import RestQueue
from tests.unit.test_pair_resume import PARAMS, Ledger, Source, series
from tests.waiting import wait_until


class GatedSource(Source):
    """The pair's history read waits for ``go``: the test sees the pair before it is warm, every time."""

    def __init__(self, klines: list[Kline], now: int) -> None:
        super().__init__(klines, now)
        self.go = threading.Event()

    def recent_closed_klines(
        self, symbol: str, contract: ContractType, interval: str, count: int
    ) -> list[Kline]:
        assert self.go.wait(5), "the test never let the history read through"
        return super().recent_closed_klines(symbol, contract, interval, count)


def test_a_warm_pair_decides_the_next_candle_here_and_a_gap_on_its_own_thread() -> None:
    klines = series(300)
    source = GatedSource(klines, 100)
    rest = RestQueue([source])
    rest.start()
    ledger = Ledger()
    pair = PairTimeframe.start(
        symbol="BTCUSDT", timeframe="1m", contract=ContractType.USDT_M, params=PARAMS, trading=True,
        rest=rest, portfolio=PortfolioView, executor=None, ledger=ledger,
    )  # fmt: skip
    try:
        actor = pair._actor_weakref()  # the reader's side of the router, without a market stream
        assert actor.takes_here(KlineClosed(kline=klines[100])) is False  # not warm before its history
        assert actor.run_here(KlineClosed(kline=klines[100])) is False
        source.go.set()
        wait_until(lambda: actor.status().warm, 5, "the pair warm")
        fed: list[int] = []
        for k in klines[100:250]:
            assert actor.run_here(KlineClosed(kline=k)) is True
            fed.append(k.open_time_ms)
        assert actor.strategy.last_open_time_ms == klines[249].open_time_ms
        assert ledger.decisions, "crossovers decided on this thread reach the ledger"
        assert {d.decided_open_time_ms for d in ledger.decisions} <= set(fed)

        source.now = 300
        gap = KlineClosed(kline=klines[260])  # ten candles missing: the pair reads them over REST
        assert actor.takes_here(gap) is False
        assert actor.run_here(gap) is False
        pair.ask(gap, timeout=5)
        assert actor.strategy.last_open_time_ms == klines[260].open_time_ms
        assert actor.status().gaps_backfilled == 1
        assert actor._mailbox.handled_here == 150
    finally:
        pykka.ActorRegistry.stop_all(timeout=5)
        rest.close()
