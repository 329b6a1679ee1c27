"""The replay clock: walks the 1m timeline of every feed in lock-step and drives streams and matching.

Per 1m step of open time ``T`` (all symbols together): the price updates of the ``FrameSchedule``
(``frames``: the path's corners — open, first extreme, second extreme — or Binance's one every 250 ms of
market time along the path), spread over the candle's wall-clock duration (``60 / speed`` s; all at once
at max speed), each moving the synthetic book and speaking on the market streams (``market_streams``:
unclosed klines, trades, tickers, book); then orders are matched on the candle's path and their user-data
events sent; then the close: the closed klines of every subscribed interval and the rest of the derived
streams; the clock then reads ``T + 60000``. With pacers registered the next step waits for their acks
(see ``clock``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from ..domain.model import ContractType
from . import market_streams
from .book import Book
from .clock import MINUTE_MS, Pacers
from .config import SimConfig
from .frames import FrameSchedule
from .market import Feed
from .orders import UserEvent
from .tape import TRADES_PER_CANDLE

YIELD_EVERY = 64
"""In real time, the replay lets REST requests in after every this many symbols' frames: a tick of 590
symbols × 5 streams is ~100 ms of sending, which would otherwise hold every request back (Binance answers
REST on other servers than it streams from). Lock-step (max speed) runs a step without a break."""


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
        self.frames = FrameSchedule(
            updates_per_candle=config.updates_per_candle, update_interval_ms=config.update_interval_ms
        )
        self._ticks = {f.symbol: float(f.spec.tick_size) for f in self.feeds}
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
        self.on_book_change: Callable[[Book], None] = lambda _book: None
        """Called before the user-data events of each change of the book go out (``Exposure.observe``)."""
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
        frames = self.frames
        paths = [feed.path(i) for feed, i in members] if len(frames) else []
        for k, offset_ms in enumerate(frames.offsets_ms):
            if duration:
                await asyncio.sleep(max(0.0, started + duration * frames.fractions[k] - loop.time()))
            self.now_ms = open_ms + offset_ms
            moved: list[market_streams.Update | None] = []
            for (feed, i), path in zip(members, paths, strict=True):
                done, price = frames.point(path, k, self._ticks[feed.symbol])
                self.book.set_price(feed.symbol, price)
                moved.append(self._walk(feed, i, done, price, between=price != path[done - 1]))
            await self._publish(moved, real_time=bool(duration))
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
        await self._publish(closes, real_time=bool(duration), closing=True)
        if len(self.pacers):
            await self.pacers.wait(open_ms, self.config.pacer_timeout_s)

    async def flush_user_events(self) -> None:
        if self.book.events:
            self.on_book_change(self.book)
            events, self.book.events = self.book.events, []
            await self.hub.publish_user(events)

    async def _publish(
        self, updates: list[market_streams.Update | None], *, real_time: bool, closing: bool = False
    ) -> None:
        """The updates of symbols moving together; in real time, in slices of ``YIELD_EVERY`` symbols.
        ``closing``: every symbol's closed klines first, then the rest."""
        if not self.hub.subs:
            return
        ready = [u for u in updates if u is not None]
        step = YIELD_EVERY if real_time else max(1, len(ready))
        sent: set[str] = set()
        if closing:
            for first in range(0, len(ready), step):
                if first:
                    await asyncio.sleep(0)
                sent |= await self.streams.publish_closed(ready[first : first + step], self.now_ms)
        for first in range(0, len(ready), step):
            if first or sent:
                await asyncio.sleep(0)
            await self.streams.publish(ready[first : first + step], self.now_ms, sent)

    def _walk(
        self, feed: Feed, i: int, done: int | None, price: float, *, between: bool = False
    ) -> market_streams.Update | None:
        """Feed ``feed``'s candle ``i`` forward to ``done`` path points (None: its close) at ``price``;
        the update for the market streams, if anyone listens. ``between``: the price is on the way from
        the last point reached to the next (Binance's frame rate), not at a point."""
        before, feed.live = feed.live, TRADES_PER_CANDLE if done is None else done
        move = feed.depth.move(price)
        if not self.hub.subs:
            return None
        partial = feed.candle_between(i, done, price) if between and done is not None else None
        return market_streams.Update(
            feed=feed, index=i, done=done, walked=before, price=price, move=move, partial=partial
        )
