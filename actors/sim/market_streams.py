"""What the replay sends on the market streams at each price update: klines and everything derived.

At every replayed price update of a symbol (the intra-candle path points and the close) the subscribed
streams that carry it speak, computed only when someone listens:

* klines and continuous klines of every interval (the candle so far; ``x`` true at the close);
* ``aggTrade`` / ``trade``: the tape's trades the update walked past (``tape``);
* ``markPrice``, ``ticker``, ``miniTicker``: the mark price and rolling 24 h statistics (``market_wire``);
* ``bookTicker``, ``depth<N>`` and ``depth`` (diff): when the synthetic book moved (``depth``).

At a close the closed klines of every symbol go out first (``publish_closed``), then everything else of
that instant: one process sends what Binance's many servers send side by side, and a bot waiting for a
close should not wait behind 2,000 other streams' updates that a real venue would not have queued in front
of it.

All-market streams (``!ticker@arr``, ``!miniTicker@arr``, ``!markPrice@arr``) send one array of the
symbols updated together; ``!bookTicker`` sends one event per symbol. They carry both markets' symbols:
one server is fstream and dstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..domain.model import TIMEFRAME_MS
from .depth import BookMove
from .market import Candle, Feed
from .market_wire import (
    agg_trade_event,
    book_ticker_event,
    depth_event,
    mark_price_event,
    ticker_event,
    trade_event,
)
from .stream_names import ARRAY_KINDS, Kind, StreamSpec
from .tape import TRADE_SPACING_MS, TRADES_PER_CANDLE, Trade


class Publisher(Protocol):
    """What the market streams need of the stream hub."""

    def streams_for(self, symbol: str) -> list[StreamSpec]:
        """The subscribed streams that carry ``symbol``."""
        ...

    async def publish(self, stream: str, payload: Any) -> None: ...


_KLINES = frozenset({Kind.KLINE, Kind.CONTINUOUS_KLINE})


@dataclass(frozen=True, slots=True, kw_only=True)
class Update:
    """One price update of one symbol, as the replay walked it."""

    feed: Feed
    index: int
    """The 1m candle in progress."""
    done: int | None
    """Path points of it walked so far; None when it just closed."""
    walked: int
    """Path points of it walked before this update."""
    price: float
    move: BookMove | None
    """How the synthetic book moved (None: it did not)."""
    partial: Candle | None = None
    """The 1m candle so far when the price is between two path points (Binance's frame rate)."""

    def trades(self) -> list[Trade]:
        """The tape's trades this update walked past (computed only for the trade streams)."""
        passed = int(self.feed.t[self.index]) + TRADE_SPACING_MS * self.walked
        done = TRADES_PER_CANDLE if self.done is None else self.done
        return [t for t in self.feed.tape.trades(self.index, done) if t.time >= passed]


class MarketStreams:
    """Builds and publishes the market-stream events of the replay's price updates."""

    def __init__(self, hub: Publisher) -> None:
        self.hub = hub
        self.events_sent = 0
        """Kline events sent (``/sim/v1/status`` ``kline_events``)."""

    async def publish_closed(self, updates: Sequence[Update], now_ms: int) -> set[str]:
        """The kline events of ``updates`` whose candle closes now; returns those streams' names, for
        ``publish`` to leave out."""
        sent: set[str] = set()
        for update in updates:
            for spec in self.hub.streams_for(update.feed.symbol):
                # only a closing candle's event is built here: building one also moves the feed's running
                # aggregate of its interval on, which ``publish`` then does for the others
                if spec.kind in _KLINES and update.done is None and now_ms % TIMEFRAME_MS[spec.interval] == 0:
                    self.events_sent += 1
                    sent.add(spec.name)
                    await self.hub.publish(spec.name, self._kline(spec, update, now_ms))
        return sent

    async def publish(self, updates: Sequence[Update], now_ms: int, sent: set[str] | None = None) -> None:
        """Everything the ``updates`` (symbols moving together) put on the subscribed streams, but the
        streams in ``sent`` (published by ``publish_closed`` already)."""
        arrays: dict[str, tuple[StreamSpec, list[dict[str, Any]]]] = {}
        for update in updates:
            for spec in self.hub.streams_for(update.feed.symbol):
                if sent and spec.name in sent:
                    continue
                if spec.token is None and spec.kind in ARRAY_KINDS:
                    arrays.setdefault(spec.name, (spec, []))[1].append(self._event(spec, update, now_ms)[0])
                    continue
                for event in self._events(spec, update, now_ms):
                    await self.hub.publish(spec.name, event)
        for name, (_spec, rows) in arrays.items():
            await self.hub.publish(name, rows)

    def _events(self, spec: StreamSpec, update: Update, now_ms: int) -> list[dict[str, Any]]:
        if spec.kind in _KLINES:
            self.events_sent += 1
            return [self._kline(spec, update, now_ms)]
        if spec.kind in {Kind.BOOK_TICKER, Kind.PARTIAL_DEPTH, Kind.DIFF_DEPTH} and update.move is None:
            return []
        return self._event(spec, update, now_ms)

    @staticmethod
    def _event(spec: StreamSpec, u: Update, now_ms: int) -> list[dict[str, Any]]:
        feed = u.feed
        match spec.kind:
            case Kind.AGG_TRADE:
                return [agg_trade_event(feed, t, now_ms) for t in u.trades()]
            case Kind.TRADE:
                return [trade_event(feed, t, now_ms) for t in u.trades()]
            case Kind.MARK_PRICE:
                return [mark_price_event(feed, u.price, now_ms)]
            case Kind.TICKER | Kind.MINI_TICKER:
                return [ticker_event(feed, u.price, now_ms, mini=spec.kind is Kind.MINI_TICKER)]
            case Kind.BOOK_TICKER:
                return [book_ticker_event(feed, now_ms)]
            case Kind.PARTIAL_DEPTH if u.move is not None:
                bids, asks = feed.depth.levels(spec.levels)
                return [depth_event(feed, u.move, bids, asks, now_ms)]
            case Kind.DIFF_DEPTH if u.move is not None:
                bids, asks = feed.depth.diff(u.move)
                return [depth_event(feed, u.move, bids, asks, now_ms)]
        return []

    @staticmethod
    def _kline(spec: StreamSpec, u: Update, now_ms: int) -> dict[str, Any]:
        feed, i, done = u.feed, u.index, u.done
        if spec.interval == "1m":
            candle = u.partial or (feed.candle(i) if done is None else feed.candle(i, done))
            closed = done is None
        else:
            candle, closed = feed.interval_state(spec.interval, i, done, u.partial)
        event = feed.kline_event(spec.interval, candle, closed=closed, event_ms=now_ms)
        if spec.kind is not Kind.CONTINUOUS_KLINE:
            return event
        kline = event["k"]
        del kline["s"]
        return {
            "e": "continuous_kline",
            "E": event["E"],
            "ps": feed.symbol.removesuffix("_PERP"),
            "ct": "PERPETUAL",
            "k": kline,
        }
