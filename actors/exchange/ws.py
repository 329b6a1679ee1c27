"""Market-data WebSocket connections of one market: python-binance sockets on one background event loop.

``MarketConnections`` runs ONE thread with ONE asyncio loop (per MarketStream) and shards the kline streams
into connections of at most ``streams_per_connection`` (``assign_streams``). Each shard is kept connected
by a ``ShardConnection`` (``actors.exchange.shard_connection``): a ``KlineSocket`` on the combined-stream
URL ``futures_multiplex_socket`` uses (USDⓈ-M ``FSTREAM_URL/market/stream?streams=``, COIN-M
``DSTREAM_URL/stream?streams=``), the library's own reconnects disabled: the library gives up after 5
attempts and never tells us which frames it lost, so every drop surfaces here, the shard reconnects with
full-jitter backoff and the owner backfills. Stalls, the 24 h rotation and subscription changes on a live
socket are the shard's too.

Frames are parsed into ``Kline`` (``actors.exchange.kline_frames``, the venue boundary) and handed to
``on_kline(kline, received_ns)`` on this thread, with ``received_ns = time.perf_counter_ns()`` taken as
the frame was read off the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from loguru import logger

from ..domain.model import ContractType, Kline
from .kline_frames import MalformedFrameError, parse_kline_frame, unclosed_update_price
from .kline_socket import FrameSink, KlineSocket, market_socket_address
from .loop_thread import LoopThread
from .shard_connection import ConnectionEvent, ConnectionStatus, ShardConnection, WsConfig
from .stream_sockets import StreamRoots, close_socket

log = logger.bind(component="ws")

KlineSink = Callable[[Kline, int], None]
PriceSink = Callable[[str, float, int], None]
StatusSink = Callable[[ConnectionEvent], None]


def assign_streams(
    current: Mapping[int, AbstractSet[str]], new: Iterable[str], cap: int, next_id: int
) -> dict[int, list[str]]:
    """Place ``new`` streams (not already placed) into connections of at most ``cap`` streams.

    Fills existing connections in id order, then opens new ids from ``next_id``. Returns id → streams to add.
    """
    room = {cid: cap - len(streams) for cid, streams in sorted(current.items())}
    placed: dict[int, list[str]] = {}
    ids = itertools.count(next_id)
    for stream in new:
        target = next((cid for cid, free in room.items() if free > 0), None)
        if target is None:
            target = next(ids)
            room[target] = cap
        room[target] -= 1
        placed.setdefault(target, []).append(stream)
    return placed


@dataclass(frozen=True, slots=True, kw_only=True)
class WsStatus:
    """Thread-safe snapshot of one market's connections."""

    connections: tuple[ConnectionStatus, ...]
    klines_closed: int
    kline_updates: int
    replies: int
    other: int
    malformed: int
    restarts: Mapping[str, int]
    """Restarts by reason: ``error``, ``stall``, ``read_loop_closed``, ``connect_failed``."""


class MarketConnections(LoopThread):
    """All market-data connections of one market, on one background thread and event loop."""

    def __init__(
        self,
        *,
        contract: ContractType,
        roots: StreamRoots,
        on_kline: KlineSink,
        on_status: StatusSink,
        config: WsConfig | None = None,
        name: str = "market-ws",
        on_price: PriceSink | None = None,
        before_frame: Callable[[], object] | None = None,
        on_event_time: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(name)
        self.contract = contract
        self.config = config or WsConfig()
        self._roots = roots
        self._on_kline = on_kline
        self._on_price = on_price
        """When set, unclosed updates skip ``Kline``: only their symbol and close price are read and handed
        here (most frames are unclosed updates; a full parse costs the loop thread ~4 µs more each)."""
        self._on_status = on_status
        self._before_frame = before_frame
        """Called on the loop thread before each frame is handled (``OrderPriority.step_aside``: a pending
        entry goes out before this thread takes the GIL for more frames). The frame's time is already
        stamped, so a wait here counts in its latency."""
        self._on_event_time = on_event_time
        """Told each frame's event time (``data.E``): the local exchange's replay clock, which no offset from
        the wall clock tracks (``ServerClock.observe``). None for Binance."""
        self._lock = threading.Lock()
        self._shards: dict[int, ShardConnection] = {}
        self._shard_of: dict[str, ShardConnection] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._next_id = 1
        self.restarts: dict[str, int] = {}
        self.klines_closed = 0
        self.kline_updates = 0
        self.replies = 0
        self.other = 0
        self.malformed = 0

    # --- lifecycle (any thread) --------------------------------------------------------------------

    def call_later(self, delay_s: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the loop thread in ``delay_s`` (from any thread); nothing once the loop is gone."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(loop.call_later, max(0.0, delay_s), fn)

    def subscribe(self, streams: Iterable[str]) -> None:
        self._call(self._add, tuple(streams))

    def unsubscribe(self, streams: Iterable[str]) -> None:
        self._call(self._remove, tuple(streams))

    def status(self) -> WsStatus:
        with self._lock:
            shards = tuple(self._shards.values())
        return WsStatus(
            connections=tuple(s.status() for s in shards),
            klines_closed=self.klines_closed,
            kline_updates=self.kline_updates,
            replies=self.replies,
            other=self.other,
            malformed=self.malformed,
            restarts=dict(self.restarts),
        )

    def _call(self, fn: Callable[[tuple[str, ...]], None], streams: tuple[str, ...]) -> None:
        if self._loop is None or self._loop.is_closed():
            raise RuntimeError(f"{self.name} is not running")
        self._loop.call_soon_threadsafe(fn, streams)

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self._ready.set()
        await self._stop_event.wait()
        with self._lock:
            shards = list(self._shards.values())
            self._shards.clear()
        for shard in shards:
            shard.close()
        tasks = {s.task for s in shards if s.task is not None} | self._retiring
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.close_timeout_s * 2)

    # --- on the loop -------------------------------------------------------------------------------

    def _add(self, streams: tuple[str, ...]) -> None:
        fresh = [s for s in dict.fromkeys(streams) if s not in self._shard_of]
        current = {cid: shard.desired for cid, shard in self._shards.items()}
        placed = assign_streams(current, fresh, self.config.streams_per_connection, self._next_id)
        for cid, added in placed.items():
            shard = self._shards.get(cid)
            if shard is None:
                shard = ShardConnection(self, cid, added)
                self._next_id = max(self._next_id, cid + 1)
                with self._lock:
                    self._shards[cid] = shard
                shard.task = asyncio.get_running_loop().create_task(shard.run(), name=f"{self.name}#{cid}")
            else:
                shard.desired.update(added)
                shard.changed.set()
            for stream in added:
                self._shard_of[stream] = shard

    def _remove(self, streams: tuple[str, ...]) -> None:
        touched: set[ShardConnection] = set()
        for stream in streams:
            shard = self._shard_of.pop(stream, None)
            if shard is not None:
                shard.desired.discard(stream)
                touched.add(shard)
        for shard in touched:
            if shard.desired:
                shard.changed.set()
                continue
            with self._lock:
                self._shards.pop(shard.id, None)
            shard.close()
            if shard.task is not None:
                self._retiring.add(shard.task)
                shard.task.add_done_callback(self._retiring.discard)

    async def open_socket(self, streams: list[str], on_frame: FrameSink) -> KlineSocket:
        usd_m = self.contract is ContractType.USDT_M
        root = self._roots.fstream_url if usd_m else self._roots.dstream_url
        url, prefix = market_socket_address(root, usd_m=usd_m)
        sock = KlineSocket(
            url=url, prefix=prefix, streams=streams, on_frame=on_frame, on_malformed=self.malformed_frame
        )
        await asyncio.wait_for(sock.__aenter__(), self.config.close_timeout_s * 3)
        return sock

    async def close_socket(self, sock: KlineSocket) -> None:
        await close_socket(sock, self.config.close_timeout_s, self.name)

    def flowing_since(self, since_ns: int) -> bool:
        return any(s.frames and s.last_frame_ns > since_ns for s in list(self._shards.values()))

    def notify(self, event: ConnectionEvent) -> None:
        try:
            self._on_status(event)
        except Exception:
            log.exception(f"{self.name}: status callback failed")

    def malformed_frame(self, what: str) -> None:
        self.malformed += 1
        log.warning(f"{self.name}: malformed frame skipped: {what}")

    def handle_frame(self, msg: Any, received_ns: int) -> None:
        if self._before_frame is not None:
            self._before_frame()
        if self._on_event_time is not None and type(msg) is dict:
            data = msg.get("data")
            event_ms = data.get("E") if type(data) is dict else None
            if type(event_ms) is int:
                self._on_event_time(event_ms)
        on_price = self._on_price
        if on_price is not None and self._price_only(msg, received_ns, on_price):
            return
        try:
            kline = parse_kline_frame(msg)
        except MalformedFrameError as exc:
            self.malformed += 1
            log.warning(f"{self.name}: {exc}")
            return
        if kline is None:
            if type(msg) is dict and ("result" in msg or "error" in msg):
                self.replies += 1
                if "error" in msg:
                    log.error(f"{self.name}: subscription change refused: {msg['error']}")
            else:
                self.other += 1
            return
        if kline.closed:
            self.klines_closed += 1
        else:
            self.kline_updates += 1
        try:
            self._on_kline(kline, received_ns)
        except Exception:
            log.exception(f"{self.name}: kline callback failed for {kline.symbol} {kline.timeframe}")

    def _price_only(self, msg: Any, received_ns: int, on_price: PriceSink) -> bool:
        """An unclosed kline update with a readable symbol and close: its price goes to ``on_price``.

        Anything else takes the full parse, which also reports malformed frames.
        """
        update = unclosed_update_price(msg)
        if update is None:
            return False
        symbol, price = update
        self.kline_updates += 1
        try:
            on_price(symbol, price, received_ns)
        except Exception:
            log.exception(f"{self.name}: price callback failed for {symbol}")
        return True
