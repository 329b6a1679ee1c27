"""The batch driver: crossovers found with numpy, then only decisions and exits visited, in time order.

Per symbol, the vectorised twin of its strategy (``crossover_scan.scan`` for V1, ``v2_scan.scan_v2`` for V2)
lists every crossover with the facts the incremental strategy would hold there; the shared judges
(``strategy.judge``, ``strategy_v2.judge_v2``) decide them in the order the incremental driver does. After an
entry the position's exit is searched ahead (``exit_search``) and queued as an event. Events at one instant
run as the incremental driver's phases: every symbol's path exit, then each symbol in order: its close-time
exit, then its decision.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..domain.crossover_scan import IntArray, ScannedCandidate, crossover_indices, scan, sides, talipp_sma
from ..domain.fills import ExitReason
from ..domain.funding import funding_rate_for
from ..domain.model import Decision
from ..domain.strategy import StrategyParams, judge
from ..domain.strategy_v2 import V2Facts, V2Params, judge_v2
from ..domain.v2_scan import TrendSeries, scan_v2
from .account import Account, SymbolRun
from .exit_search import find_path_exit, reversal_index, time_exit_index
from .progress import Throttle
from .results import BacktestResult

_PATH, _SYMBOL = 0, 1
"""Event phases at one instant: path exits of every symbol first, then each symbol in order."""
_CLOSE, _DECIDE = 0, 1
"""Within a symbol: its close-time exit before its decision."""
_EXIT_EVENT = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class _Candidate:
    decided_index: int
    v1: ScannedCandidate | None = None
    v2: V2Facts | None = None


def _candidates(run: SymbolRun, btc: TrendSeries | None) -> tuple[list[_Candidate], IntArray | None]:
    """The symbol's decisions to make, in order, and its crossover indices when a reversal exit needs them."""
    s = run.series
    params = run.params
    if isinstance(params, V2Params):
        found = scan_v2(params, s.timeframe, s.open_time, s.high, s.low, s.close, btc=btc)
        decided = found.crossovers.tolist()
        return [
            _Candidate(decided_index=i, v2=f) for i, f in zip(decided, found.facts, strict=True)
        ], found.crossovers
    scanned = scan(params, s.open_time, s.high, s.low, s.close, s.volume)
    crossovers = None
    if run.exits.reversal_exit:
        crossovers = crossover_indices(
            sides(talipp_sma(s.close, params.short_period), talipp_sma(s.close, params.long_period))
        )
    return [_Candidate(decided_index=c.decided_index, v1=c) for c in scanned], crossovers


def run_batch(
    runs: Sequence[SymbolRun],
    account: Account,
    result: BacktestResult,
    tick: Throttle,
    btc: Sequence[TrendSeries | None],
) -> None:
    """Drive ``runs`` through ``account`` (``btc``: each run's BTC reference trend, when filtered)."""
    heap: list[tuple[int, int, int, int, int]] = []
    candidates = []
    crossovers = []
    for order, run in enumerate(runs):
        found, hits = _candidates(run, btc[order])
        candidates.append(found)
        crossovers.append(hits)
        if found:
            heapq.heappush(
                heap, (int(run.series.open_time[found[0].decided_index]), _SYMBOL, order, _DECIDE, 0)
            )
    last_taken: list[int | None] = [None] * len(runs)
    exits: dict[int, tuple[int, ExitReason, float]] = {}
    while heap:
        at_ms, _, order, _, k = heapq.heappop(heap)
        tick(at_ms)
        run = runs[order]
        if k == _EXIT_EVENT:
            idx, reason, price = exits.pop(order)
            account.close(run, int(run.series.open_time[idx]), reason, price)
            continue
        cand = candidates[order][k]
        if k + 1 < len(candidates[order]):
            nxt = candidates[order][k + 1].decided_index
            heapq.heappush(heap, (int(run.series.open_time[nxt]), _SYMBOL, order, _DECIDE, k + 1))
        decision = _judge(run, cand, account, at_ms, last_taken[order])
        result.decisions.append(decision)
        if not decision.taken:
            continue
        last_taken[order] = decision.signal_open_time_ms
        if not account.open(run, decision, at_ms):
            last_taken[order] = None
            continue
        event = _plan_exit(run, order, account, cand.decided_index, crossovers[order])
        if event is not None:  # else it is still open when the data ends
            exits[order] = event[1]
            heapq.heappush(heap, event[0])


def _judge(
    run: SymbolRun, cand: _Candidate, account: Account, at_ms: int, last_taken: int | None
) -> Decision:
    symbol = run.spec.symbol
    params = run.params
    position_open = symbol in account.positions
    if isinstance(params, V2Params):
        facts = cand.v2
        assert facts is not None  # V2 runs scan V2 facts
        if params.max_funding_rate is not None:
            reading = None if run.funding is None else run.funding.reading_at(facts.signal_open_time_ms)
            facts = replace(facts, funding=funding_rate_for(reading, facts.signal_open_time_ms))
        return judge_v2(
            params,
            facts,
            symbol=symbol,
            timeframe=run.series.timeframe,
            position_open=position_open,
            open_positions=len(account.positions),
            last_taken_signal_ms=last_taken,
        )
    sc = cand.v1
    assert isinstance(params, StrategyParams)
    assert sc is not None  # V1 runs scan V1 candidates
    return judge(
        params,
        sc.candidate,
        symbol=symbol,
        timeframe=run.series.timeframe,
        decided_open_time_ms=at_ms,
        entry=float(run.series.close[cand.decided_index]),
        confirmed=sc.confirmed,
        position_open=position_open,
        open_positions=len(account.positions),
        last_taken_signal_ms=last_taken,
    )


def _plan_exit(
    run: SymbolRun, order: int, account: Account, entry_index: int, crossovers: IntArray | None
) -> tuple[tuple[int, int, int, int, int], tuple[int, ExitReason, float]] | None:
    """The exit event of the position just opened at ``entry_index``: (heap key, (candle, reason, price)),
    or None when it is still open at the end of the data. Exit events carry −1 where decisions carry
    their candidate's number."""
    s = run.series
    pos = account.positions[run.spec.symbol]
    timed = time_exit_index(s, run.exits, entry_index)
    reversed_ = reversal_index(crossovers, run.exits, entry_index)
    closes = [j for j in (timed, reversed_) if j is not None]
    limit = min(closes) if closes else len(s) - 1
    hit = find_path_exit(s, pos, entry_index + 1, limit)
    if hit is not None:
        j, reason, price = hit
        return (int(s.open_time[j]), _PATH, order, 0, _EXIT_EVENT), (j, reason, price)
    if not closes:
        return None
    reason = ExitReason.TIME_EXIT if timed is not None and timed == limit else ExitReason.REVERSAL
    key = (int(s.open_time[limit]), _SYMBOL, order, _CLOSE, _EXIT_EVENT)
    return key, (limit, reason, float(s.close[limit]))
