"""Lock-step pacing: cooperating clients ("pacers") hold the replay clock until they have processed a step.

Protocol (HTTP ``/sim/v1/pacer`` or ``LocalExchange.register_pacer``):

1. Register: ``POST /sim/v1/pacer?interval=1m`` → ``{"pacerId": "p1"}``. ``interval`` (default ``1m``)
   is the kline interval whose closes the client acts on.
2. For every 1m step of open time ``T`` the exchange sends, for all replayed symbols, the unclosed
   updates, then the user-data events of conditional orders the candle triggered, then the closed klines.
3. A pacer is waited for at the steps that close a candle of its interval (``(T + 60000) % interval == 0``):
   the clock stays at ``T + 60000`` until the pacer acks with the open time of that closed candle of its
   interval (``POST /sim/v1/pacer/p1/ack?openTime=...``; any later open time acks it too).
4. After ``pacer_timeout_s`` without an ack the clock moves on and ``stats.pacer_timeouts`` counts it.
"""

from __future__ import annotations

import asyncio
import itertools

from ..domain.model import TIMEFRAME_MS

MINUTE_MS = 60_000


class Pacers:
    """Registered cooperating clients and the open times they have acknowledged."""

    def __init__(self) -> None:
        self._intervals: dict[str, int] = {}
        self._acked: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self.timeouts = 0

    def __len__(self) -> int:
        return len(self._intervals)

    def register(self, interval: str = "1m") -> str:
        if interval not in TIMEFRAME_MS:
            raise ValueError(f"unknown interval {interval!r}")
        pacer_id = f"p{next(self._ids)}"
        self._intervals[pacer_id] = TIMEFRAME_MS[interval]
        self._acked[pacer_id] = -1
        self._changed.set()
        return pacer_id

    def unregister(self, pacer_id: str) -> None:
        self._intervals.pop(pacer_id)
        self._acked.pop(pacer_id, None)
        self._changed.set()

    def ack(self, pacer_id: str, open_time: int) -> None:
        if pacer_id not in self._intervals:
            raise KeyError(pacer_id)
        self._acked[pacer_id] = max(self._acked[pacer_id], open_time)
        self._changed.set()

    def pending(self, step_open: int) -> list[str]:
        """Pacers that still owe an ack for the 1m step opened at ``step_open``."""
        close = step_open + MINUTE_MS
        return [
            pid for pid, ms in self._intervals.items() if close % ms == 0 and self._acked[pid] < close - ms
        ]

    async def wait(self, step_open: int, timeout_s: float) -> bool:
        """Until every pacer has acked the step; False (and one more timeout) when the timeout ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.pending(step_open):
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.timeouts += 1
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
        return True

    def snapshot(self) -> dict[str, int]:
        return dict(self._acked)
