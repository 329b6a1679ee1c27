"""The replay clock: walks the 1m timeline of every feed in lock-step and drives streams and matching.

Per 1m step of open time ``T`` (all symbols together): ``updates_per_candle`` price updates along the
candle's path (open, first extreme, second extreme), spread over the candle's wall-clock duration
(``60 / speed`` s; none at max speed), each moving the synthetic book and speaking on the market streams
(``market_streams``: unclosed klines, trades, tickers, book); then orders are matched on the candle's
path and their user-data events sent; then the close: the closed klines of every subscribed interval and
the rest of the derived streams; the clock then reads ``T + 60000``. With pacers registered the next step
waits for their acks (see ``clock``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from ..domain.model import ContractType
from . import market_streams
from .book import Book
from .clock import MINUTE_MS, Pacers
from .config import SimConfig
from .market import Feed
from .orders import UserEvent
from .tape import TRADES_PER_CANDLE


class Publisher(market_streams.Publisher, Protocol):
    """What the replay needs of the stream hub."""

    @property
    def subs(self) -> Mapping[str, object]:
        """Subscribed stream names (none: the market streams have nothing to build)."""
        ...

    async def publish_user(self, events: Sequence[UserEvent]) -> None: ...


class Replay:
    """Owns the simulated clock; runs as one task on the exchange's event loop."""

    def __init__(
        self, feeds: Sequence[Feed], book: Book, hub: Publisher, pacers: Pacers, config: SimConfig
    ) -> None:
        self.feeds = list(feeds)
        self.book = book
        self.hub = hub
        self.pacers = pacers
        self.config = config
        firsts = [int(f.t[0]) for f in self.feeds if len(f.t)]
        start = config.start_ms if config.start_ms is not None else min(firsts, default=0)
        for feed in self.feeds:
            feed.closed = int(np.searchsorted(feed.t, start))
            book.set_price(feed.symbol, feed.last_price())
            feed.depth.move(feed.last_price())
        self.streams = market_streams.MarketStreams(hub)
        tails = [f.t[f.closed :] for f in self.feeds]
        self.timeline = np.unique(np.concatenate(tails)) if tails else np.empty(0, dtype=np.int64)
        self.now_ms = int(self.timeline[0]) if len(self.timeline) else start
        self.cursor = 0
        self.processed = 0
        self.paused = config.paused
        self._credits = 0
        self._wake = asyncio.Event()
        self.progress = asyncio.Event()
        self.done = asyncio.Event()
        self.client_arrived = asyncio.Event()
        if not config.hold_until_client:
            self.client_arrived.set()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._wake.set()

    def add_steps(self, count: int) -> int:
        """Let a paused clock take ``count`` more steps; returns the ``processed`` count to wait for."""
        self._credits += count
        self._wake.set()
        return self.processed + min(count, len(self.timeline) - self.cursor)

    async def run(self) -> None:
        await self.client_arrived.wait()
        while self.cursor < len(self.timeline):
            while self.paused and not self._credits:
                self._wake.clear()
                await self._wake.wait()
            if self.paused:
                self._credits -= 1
            await self._step(int(self.timeline[self.cursor]))
            self.cursor += 1
            self.processed += 1
            self.progress.set()
            if not self.processed % 32:
                await asyncio.sleep(0)  # let REST and admin requests in between flat-out steps
        self.done.set()
        self.progress.set()

    async def _step(self, open_ms: int) -> None:
        loop = asyncio.get_running_loop()
        members = [(f, f.closed) for f in self.feeds if f.closed < len(f.t) and int(f.t[f.closed]) == open_ms]
        duration = 0.0 if math.isinf(self.config.speed) else 60.0 / self.config.speed
        started = loop.time()
        updates = self.config.updates_per_candle
        paths = [feed.path(i) for feed, i in members] if updates else []
        for k in range(updates):
            if duration:
                await asyncio.sleep(max(0.0, started + duration * k / (updates + 1) - loop.time()))
            self.now_ms = open_ms + MINUTE_MS * k // (updates + 1)
            moved: list[market_streams.Update | None] = []
            for (feed, i), path in zip(members, paths, strict=True):
                self.book.set_price(feed.symbol, path[k])
                moved.append(self._walk(feed, i, k + 1, path[k]))
            if self.hub.subs:
                await self.streams.publish([u for u in moved if u is not None], self.now_ms)
        if duration:
            await asyncio.sleep(max(0.0, started + duration - loop.time()))
        self.now_ms = open_ms + MINUTE_MS - 1
        for feed, i in members:
            self.book.on_candle(
                feed.symbol,
                float(feed.o[i]),
                float(feed.h[i]),
                float(feed.low[i]),
                float(feed.c[i]),
                now=self.now_ms,
            )
        await self.flush_user_events()
        if len(self.pacers):
            # Lock-step marker: everything this step triggered precedes it on each user-data stream.
            marker = {"e": "SIM_STEP", "E": self.now_ms, "T": open_ms, "s": [f.symbol for f, _ in members]}
            await self.hub.publish_user([UserEvent(contract_type=c, payload=marker) for c in ContractType])
        self.now_ms = open_ms + MINUTE_MS
        closes: list[market_streams.Update | None] = []
        for feed, i in members:
            closes.append(self._walk(feed, i, None, float(feed.c[i])))
            feed.closed, feed.live = i + 1, 0
        if self.hub.subs:
            await self.streams.publish([u for u in closes if u is not None], self.now_ms)
        if len(self.pacers):
            await self.pacers.wait(open_ms, self.config.pacer_timeout_s)

    async def flush_user_events(self) -> None:
        if self.book.events:
            events, self.book.events = self.book.events, []
            await self.hub.publish_user(events)

    def _walk(self, feed: Feed, i: int, done: int | None, price: float) -> market_streams.Update | None:
        """Feed ``feed``'s candle ``i`` forward to ``done`` path points (None: its close) at ``price``;
        the update for the market streams, if anyone listens."""
        before, feed.live = feed.live, TRADES_PER_CANDLE if done is None else done
        move = feed.depth.move(price)
        if not self.hub.subs:
            return None
        return market_streams.Update(feed=feed, index=i, done=done, walked=before, price=price, move=move)
