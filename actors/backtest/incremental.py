"""The incremental driver: every candle through ``PairDecider`` exactly as the live pair actor feeds it.

Slow; it exists to prove the batch driver equal to the live code path. Per open time ``t``, in this order:

1. trend readings of higher-timeframe candles that closed at or before ``t`` reach their subscribers
   (the actors of those timeframes told them earlier; see ``trend.trend_boundary``);
2. path exits: every symbol's position walks its candle (stop, take-profit, trailing stop);
3. each symbol in order: its candle through ``PairDecider`` — a close-time exit (time, reversal) closes at
   the candle's close, then the decision, then an entry;
4. the trend tracks take the candles that close on their boundaries (their readings wait for step 1).

Positions still open when the data ends stay open (``Account.still_open`` lists them).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from ..domain.exits import EntryFacts
from ..domain.funding import funding_rate_for
from ..domain.model import TIMEFRAME_MS
from ..domain.strategies import PairDecider, make_strategy
from ..domain.strategy_v2 import V2Params
from ..domain.trend import TrendReading, TrendTrack
from .account import Account, SymbolRun
from .exit_search import walk_candle
from .progress import Throttle
from .results import BacktestResult

Tracks = list[list[tuple[TrendTrack, tuple[int, ...]]]]
"""Per run: the trend tracks its candles feed, each with the runs that subscribe to its readings."""


def trend_tracks(runs: Sequence[SymbolRun], btc_source: Sequence[int | None]) -> Tracks:
    """The trend tracks the V2 runs need: their own trend timeframes, and the BTC reference's timeframe on
    the run of the reference symbol (``btc_source``: its index, per run)."""
    wanted: dict[tuple[int, str, int], list[int]] = {}
    for order, run in enumerate(runs):
        params = run.params
        if not isinstance(params, V2Params):
            continue
        for tf in params.trend_timeframes:
            wanted.setdefault((order, tf, params.trend_ema), []).append(order)
        source = btc_source[order]
        if params.btc_filter is not None and source is not None:
            key = (source, params.btc_filter.timeframe, params.btc_filter.ema_period)
            wanted.setdefault(key, []).append(order)
    tracks: Tracks = [[] for _ in runs]
    for (source, tf, period), subscribers in wanted.items():
        track = TrendTrack(runs[source].spec.symbol, tf, period)
        tracks[source].append((track, tuple(subscribers)))
    return tracks


def run_incremental(
    runs: Sequence[SymbolRun],
    account: Account,
    result: BacktestResult,
    tick: Throttle,
    btc_source: Sequence[int | None],
) -> None:
    """Drive ``runs`` through ``account`` candle by candle (module docstring)."""
    deciders = [
        PairDecider(make_strategy(r.spec.symbol, r.series.timeframe, r.params), r.exits) for r in runs
    ]
    tracks = trend_tracks(runs, btc_source)
    readings: list[tuple[int, int, TrendReading, tuple[int, ...]]] = []
    produced = 0
    times = np.unique(np.concatenate([r.series.open_time for r in runs]))
    cursor = [0] * len(runs)
    for t in times.tolist():
        tick(t)
        while readings and readings[0][0] <= t:
            _, _, reading, subscribers = heapq.heappop(readings)
            for order in subscribers:
                deciders[order].strategy.on_trend(reading)
        present = []
        for order, run in enumerate(runs):
            i = cursor[order]
            if i < len(run.series) and int(run.series.open_time[i]) == t:
                present.append((order, i))
                cursor[order] = i + 1
        for order, i in present:
            run = runs[order]
            pos = account.positions.get(run.spec.symbol)
            if pos is not None and pos.decided_ms < t:
                hit, trailing = walk_candle(run.series, pos, i)
                if hit is not None:
                    account.close(run, t, hit[0], hit[1])
                else:
                    pos.trailing = trailing
        for order, i in present:
            _candle(runs[order], deciders[order], account, result, at=(i, t))
        for order, i in present:
            run = runs[order]
            end = t + TIMEFRAME_MS[run.series.timeframe]
            for track, subscribers in tracks[order]:
                if end % TIMEFRAME_MS[track.timeframe] == 0:
                    reading = track.add(end - TIMEFRAME_MS[track.timeframe], float(run.series.close[i]))
                    produced += 1
                    heapq.heappush(readings, (reading.close_time_ms, produced, reading, subscribers))


def _candle(
    run: SymbolRun, decider: PairDecider, account: Account, result: BacktestResult, *, at: tuple[int, int]
) -> None:
    """One symbol's candle ``at`` (index, open time), at its close: close-time exit, decision, entry."""
    i, t = at
    symbol = run.spec.symbol
    pos = account.positions.get(symbol)
    facts = None if pos is None else EntryFacts(direction=pos.direction, entry_open_time_ms=pos.decided_ms)
    funding = None
    params = run.params
    if isinstance(params, V2Params) and params.max_funding_rate is not None and run.funding is not None:
        funding = funding_rate_for(run.funding.reading_at(t), t)
    outcome = decider.on_closed_kline(
        run.series.kline(i), position=facts, open_positions=len(account.positions), funding=funding
    )
    if outcome.exit is not None:
        account.close(run, t, outcome.exit, float(run.series.close[i]))
    decision = outcome.decision
    if decision is None:
        return
    result.decisions.append(decision)
    if decision.taken and not account.open(run, decision, t):
        decider.strategy.record_rejection(decision)
