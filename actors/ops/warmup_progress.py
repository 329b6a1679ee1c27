"""``WarmupProgress``: the start-up's one progress line (and systemd status) while the pairs warm up.

A cold start of a large universe is limited by the venue's request-weight budget: 590 symbols × 5 timeframes
is 5,900 weight of klines, about two and a half minutes of Binance's 2,400 per minute. Instead of a warning
per pair actor still starting, the start-up says every ``interval_s`` how far it is: pairs and timeframes
warm, the weight spent this minute, the reads still queued. Under systemd the same words go to ``STATUS=``
and each line extends the start timeout (``EXTEND_TIMEOUT_USEC``), so ``TimeoutStartSec`` stops a start that
stalls, not one that is still making progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from loguru import logger

from ..config import PairSettings
from ..exchange.ratelimit import WeightBudget
from ..tree.pair_timeframe import PairBoard, history_weight
from ..tree.rest_queue import RestQueue
from .systemd import SdNotifier


class Reads(Protocol):
    """Where the warm-up's reads go (satisfied by ``Connections``)."""

    @property
    def market_budget(self) -> WeightBudget: ...
    @property
    def rest(self) -> RestQueue: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmupState:
    pairs: int
    pairs_warm: int
    timeframes: int
    timeframes_warm: int

    def line(self) -> str:
        return (
            f"{self.pairs_warm:,} of {self.pairs:,} pairs warm "
            f"({self.timeframes_warm:,} of {self.timeframes:,} timeframes)"
        )


def warmup_state(board: PairBoard, keys: Collection[tuple[str, str]]) -> WarmupState:
    """How many of ``keys`` (symbol, timeframe) are warm, and how many of their pairs have all warm."""
    statuses = board.statuses
    warm = {k for k in keys if (s := statuses.get(k)) is not None and s.warm}
    symbols = {s for s, _ in keys}
    cold = {s for s, _ in set(keys) - warm}
    return WarmupState(
        pairs=len(symbols), pairs_warm=len(symbols - cold), timeframes=len(keys), timeframes_warm=len(warm)
    )


class WarmupProgress:
    """Waits for the pairs to be warm, reporting as it goes (see the module docstring)."""

    def __init__(
        self,
        board: PairBoard,
        connections: Reads,
        notifier: SdNotifier,
        *,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._board = board
        self._budget = connections.market_budget
        self._notifier = notifier
        self._queue = connections.rest
        self.interval_s = interval_s
        self._clock = clock

    def wait_for_pairs(self, pairs: Iterable[PairSettings], timeout_s: float | None = None) -> bool:
        """Until every timeframe of ``pairs`` is warm; False (logged) after ``timeout_s`` (default: twice the
        warm-up's budget-limited time — its klines weight at the budget's bulk share a minute —, ≥ 120 s)."""
        pairs = list(pairs)
        keys = {(s.symbol, tf) for s in pairs for tf in s.indicator_timeframes}
        weight = sum(history_weight(s.strategy_params()) * len(s.indicator_timeframes) for s in pairs)
        limited_s = 60.0 * weight / self._budget.bulk_usable
        started = self._clock()
        if not self.wait(keys, max(120.0, 2 * limited_s) if timeout_s is None else timeout_s):
            logger.warning("not every pair warmed up in time; the slow ones keep trying under supervision")
            return False
        logger.info(f"{len(pairs)} pairs warm after {self._clock() - started:.1f} s of warm-up")
        return True

    def wait(self, keys: Collection[tuple[str, str]], timeout_s: float, poll_s: float = 0.05) -> bool:
        """Until every key is warm (True) or ``timeout_s`` passed (False); a line every ``interval_s``."""
        started = self._clock()
        deadline = started + timeout_s
        report_at = started + self.interval_s
        while True:
            state = warmup_state(self._board, keys)
            if state.timeframes_warm == state.timeframes:
                return True
            now = self._clock()
            if now >= deadline:
                return False
            if now >= report_at:
                report_at = now + self.interval_s
                self._report(state, now - started)
            time.sleep(poll_s)

    def _report(self, state: WarmupState, elapsed_s: float) -> None:
        budget = self._budget.snapshot()
        queued = self._queue.pending
        line = (
            f"warm-up {elapsed_s:.0f} s: {state.line()}; request weight {budget.used_weight:,} of "
            f"{budget.limit:,} this minute; {queued:,} history reads queued"
        )
        logger.info(line)
        # the next line is due in interval_s: give systemd twice that before it may time the start out
        self._notifier.notify(f"STATUS={line}", f"EXTEND_TIMEOUT_USEC={int(self.interval_s * 2 * 1_000_000)}")
