"""A restarted signal pair decides the candles that closed while it was down: none lost, none twice."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka
import pytest

from nancemakina.actors.domain.model import ContractType, Decision, Kline, Outcome, PortfolioView, SkipReason
from nancemakina.actors.domain.strategy import PairStrategy, StrategyParams
from nancemakina.actors.messages import KlineClosed
from nancemakina.actors.tree.decision_resume import DecisionMarks
from nancemakina.actors.tree.pair_timeframe import PairTimeframe
from nancemakina.actors.tree.rest_queue import RestQueue

PARAMS = StrategyParams(short_period=5, long_period=20, min_interval_ms=0, pivot_lookback=10)
MINUTE = 60_000


def series(n: int) -> list[Kline]:
    """A wave that crosses its averages every dozen candles or so."""
    out = []
    for i in range(n):
        close = 100.0 + 6.0 * math.sin(i / 6.0) + 2.0 * math.sin(i / 2.3)
        out.append(
            Kline(symbol="BTCUSDT", timeframe="1m", open_time_ms=i * MINUTE, open=close - 0.1,
                  high=close + 0.5, low=close - 0.5, close=close, volume=10.0)
        )  # fmt: skip
    return out


class Source:
    """The exchange's closed candles up to ``now`` (exclusive)."""

    def __init__(self, klines: list[Kline], now: int) -> None:
        self.klines, self.now = klines, now

    def recent_closed_klines(
        self, symbol: str, contract: ContractType, interval: str, count: int
    ) -> list[Kline]:
        return self.klines[max(0, self.now - count) : self.now]

    def closed_klines_range(
        self, symbol: str, contract: ContractType, interval: str, start: int, end: int
    ) -> list[Kline]:
        return [k for k in self.klines[: self.now] if start <= k.open_time_ms <= end]


class Ledger:
    def __init__(self) -> None:
        self.decisions: list[Decision] = []
        self.lock = threading.Lock()

    def tell(self, message: Any) -> None:
        if isinstance(message, Decision):
            with self.lock:
                self.decisions.append(message)


def expected(klines: list[Kline]) -> list[Decision]:
    strategy = PairStrategy("BTCUSDT", "1m", PARAMS)
    found = []
    for k in klines:
        d = strategy.on_closed_kline(k, position_open=False, open_positions=0)
        if d is not None:
            found.append(d)
    return found


def run(
    source: Source,
    ledger: Ledger,
    decided: int | None,
    live: list[Kline],
    decided_through: Callable[[str, str], int | None] | None = None,
) -> None:
    rest = RestQueue([source])
    rest.start()
    pair = PairTimeframe.start(
        symbol="BTCUSDT", timeframe="1m", contract=ContractType.USDT_M, params=PARAMS, trading=True,
        rest=rest, portfolio=PortfolioView, executor=None, ledger=ledger,
        decided_through=decided_through or (lambda _s, _tf: decided),
    )  # fmt: skip
    try:
        for k in live:
            pair.ask(KlineClosed(kline=k), timeout=5)
        deadline = time.monotonic() + 5  # candles told before the history arrived are fed right after it
        while not pair.proxy().status().get(timeout=5).warm and time.monotonic() < deadline:
            time.sleep(0.01)
        pair.ask(KlineClosed(kline=live[-1]) if live else KlineClosed(kline=source.klines[0]), timeout=5)
    finally:
        pykka.ActorRegistry.stop_all(timeout=5)
        rest.close()


@pytest.mark.parametrize("down", [3, 40, 200])
def test_a_restart_decides_every_crossover_it_missed_once_trading_only_the_newest(down: int) -> None:
    klines = series(600)
    truth = {d.signal_open_time_ms: d for d in expected(klines)}
    ledger = Ledger()
    run(Source(klines, 100), ledger, None, klines[100:300])  # the first run, killed after candle 299
    decided = max(d.decided_open_time_ms for d in ledger.decisions)
    restart = 300 + down
    run(Source(klines, restart), ledger, decided, klines[restart:500])

    seen = [d.signal_open_time_ms for d in ledger.decisions]
    assert len(seen) == len(set(seen)), "a crossover decided twice"
    wanted = [s for s, d in truth.items() if 100 <= d.decided_open_time_ms // MINUTE < 500]
    assert sorted(seen) == sorted(wanted), "a crossover lost"
    missed = [d for d in ledger.decisions if 300 <= d.decided_open_time_ms // MINUTE < restart]
    newest = (restart - 1) * MINUTE
    for d in missed:
        if d.decided_open_time_ms != newest and truth[d.signal_open_time_ms].outcome is Outcome.TAKEN:
            assert (d.outcome, d.reason) == (Outcome.SKIPPED, SkipReason.LATE)


def test_a_first_start_decides_nothing_of_its_warm_up() -> None:
    klines = series(300)
    ledger = Ledger()
    run(Source(klines, 200), ledger, None, [])
    assert ledger.decisions == []


def test_a_restart_inside_the_process_resumes_after_decisions_the_ledger_has_not_written_yet() -> None:
    """The predecessor's last decisions may still be in the ledger's mailbox: the marks it left say them."""
    stored: dict[tuple[str, str], int] = {("BTCUSDT", "1m"): 5 * MINUTE}
    marks = DecisionMarks(lambda s, tf: stored.get((s, tf)))
    assert marks("BTCUSDT", "1m") == 5 * MINUTE
    marks.note("BTCUSDT", "1m", 9 * MINUTE)  # told, not yet written
    assert marks("BTCUSDT", "1m") == 9 * MINUTE
    stored[("BTCUSDT", "1m")] = 12 * MINUTE  # a later record (another run's) wins too
    assert marks("BTCUSDT", "1m") == 12 * MINUTE
    assert marks("ETHUSDT", "1m") is None

    klines = series(400)
    for use_marks, duplicates in ((False, True), (True, False)):
        ledger = Ledger()
        run(Source(klines, 100), ledger, None, klines[100:300])
        first = ledger.decisions[0].decided_open_time_ms  # all the ledger had written when the pair restarted
        marks = DecisionMarks(lambda _s, _tf, first=first: first)
        for d in ledger.decisions:
            marks.note("BTCUSDT", "1m", d.decided_open_time_ms)
        resume = marks if use_marks else (lambda _s, _tf, first=first: first)
        run(Source(klines, 300), ledger, None, [], decided_through=resume)
        seen = [d.signal_open_time_ms for d in ledger.decisions]
        assert (len(seen) != len(set(seen))) is duplicates
