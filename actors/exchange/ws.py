"""Market-data WebSocket connections of one market: python-binance sockets on one background event loop.

``MarketConnections`` runs ONE thread with ONE asyncio loop (per MarketStream) and shards the kline streams
into connections of at most ``streams_per_connection`` (a "slot" per shard). Each slot:

* opens a python-binance socket on the combined-stream URL ``futures_multiplex_socket`` uses (USDⓈ-M
  ``FSTREAM_URL/market/stream?streams=``, COIN-M ``DSTREAM_URL/stream?streams=``): a ``KlineSocket``
  (``actors.exchange.kline_socket``), the library's ``ReconnectingWebsocket`` with a lean read loop, and
  with the library's own reconnects disabled: the library gives up after 5 attempts and never tells us
  which frames it lost, so every drop surfaces here, we reconnect with full-jitter backoff and the owner
  backfills;
* restarts when the read loop ends (connection closed or failed) or when no frame came for
  ``stall_timeout_s``;
* rotates before Binance's 24 h cut: opens the replacement first, reads both for ``rotation_overlap_s``,
  then closes the old one (the sequencer drops the overlap's duplicates);
* changes subscriptions on the live socket with one batched SUBSCRIBE/UNSUBSCRIBE frame, paced by a token
  bucket. python-binance has no call for that on market sockets, so those frames go through the
  ``websockets`` connection the library exposes as ``socket.ws``; the replies come back through the
  socket's read loop.

Frames are parsed into ``Kline`` here (the venue boundary) and handed to ``on_kline(kline, received_ns)``
on this thread, with ``received_ns = time.perf_counter_ns()`` taken as the frame was read off the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from binance.ws.reconnecting_websocket import ReconnectingWebsocket
from loguru import logger

from ..domain.model import TIMEFRAME_MS, ContractType, Kline
from .kline_socket import FrameSink, KlineSocket, market_socket_address
from .loop_thread import LoopThread

log = logger.bind(component="ws")


class StreamRoots(Protocol):
    """The venue's WebSocket roots (``BinanceSocketManager.FSTREAM_URL`` / ``DSTREAM_URL`` values)."""

    @property
    def fstream_url(self) -> str: ...
    @property
    def dstream_url(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WsConfig:
    """Knobs of the market connections (Binance's limits as defaults, with headroom)."""

    streams_per_connection: int = 200
    max_frames_per_s: float = 5.0
    """Binance drops a connection above 10 incoming frames/s, pings and pongs included: keep headroom."""
    stall_timeout_s: float = 30.0
    max_connection_age_s: float = 23 * 3600.0
    rotation_overlap_s: float = 2.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    close_timeout_s: float = 3.0
    check_interval_s: float = 0.25


# --- pure helpers ----------------------------------------------------------------------------------


class MalformedFrameError(ValueError):
    """A frame that claims to be a kline but cannot be read; ``stream`` names where it came from."""

    def __init__(self, stream: str, reason: str) -> None:
        super().__init__(f"malformed frame on stream {stream!r}: {reason}")
        self.stream = stream


def kline_stream(symbol: str, timeframe: str) -> str:
    """Binance stream name, e.g. ``btcusdt@kline_1m``."""
    return f"{symbol.lower()}@kline_{timeframe}"


def parse_kline_frame(frame: Any) -> Kline | None:
    """A combined-stream frame ``{"stream", "data": {"e": "kline", "k": {...}}}`` → ``Kline``.

    None for frames that are not klines (SUBSCRIBE replies, other events); ``MalformedFrameError`` otherwise.
    """
    if not isinstance(frame, dict):
        raise MalformedFrameError("?", f"expected a JSON object, got {type(frame).__name__}")
    data = frame.get("data")
    if data is None:
        return None
    stream = str(frame.get("stream", "?"))
    if not isinstance(data, dict):
        raise MalformedFrameError(stream, "'data' is not an object")
    if data.get("e") not in {"kline", "continuous_kline"}:
        return None
    try:
        k = data["k"]
        closed = k["x"]
        timeframe = k["i"]
        if not isinstance(closed, bool) or timeframe not in TIMEFRAME_MS:
            raise MalformedFrameError(stream, f"bad 'x'={closed!r} or 'i'={timeframe!r}")
        return Kline(
            symbol=str(k.get("s") or data.get("s") or data["ps"]),
            timeframe=timeframe,
            open_time_ms=int(k["t"]),
            open=float(k["o"]),
            high=float(k["h"]),
            low=float(k["l"]),
            close=float(k["c"]),
            volume=float(k["v"]),
            closed=closed,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, MalformedFrameError):
            raise
        raise MalformedFrameError(stream, f"{type(exc).__name__}: {exc}") from exc


def backoff_delay(
    attempt: int, *, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base × 2^attempt)]."""
    return rand() * min(cap_s, base_s * 2.0 ** min(attempt, 30))


class FrameBucket:
    """Token bucket for frames we send on one connection; ``reserve()`` says how long to wait first."""

    def __init__(self, rate_per_s: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def reserve(self) -> float:
        """Take one token (possibly on credit): seconds to wait before sending the frame (0 = now)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


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


# --- status ------------------------------------------------------------------------------------------


class ConnState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionEvent:
    """A connection came up (``resumed``: after a drop, stall or overflow: frames may be lost) or down."""

    conn_id: int
    connected: bool
    resumed: bool
    streams: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionStatus:
    conn_id: int
    state: ConnState
    streams: int
    reconnects: int
    rotations: int
    last_frame_age_s: float | None
    last_error: str


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


async def close_socket(sock: ReconnectingWebsocket, timeout_s: float, name: str) -> None:
    """Close the wire first: the library's read loop then wakes now, not after its 10 s recv timeout."""
    try:
        if sock.ws is not None:
            await asyncio.wait_for(sock.ws.close(), timeout_s)
        await asyncio.wait_for(sock.__aexit__(None, None, None), timeout_s)
    except Exception as exc:
        log.warning(f"{name}: closing a socket: {type(exc).__name__}: {exc}")


# --- the connections ---------------------------------------------------------------------------------

KlineSink = Callable[[Kline, int], None]
PriceSink = Callable[[str, float, int], None]
StatusSink = Callable[[ConnectionEvent], None]
_KLINE_EVENTS = frozenset({"kline", "continuous_kline"})


class _Slot:
    """One shard of streams, carried over time by successive sockets (reconnects, rotations)."""

    def __init__(self, owner: MarketConnections, conn_id: int, streams: Iterable[str]) -> None:
        self.owner = owner
        self.id = conn_id
        self.desired: set[str] = set(streams)
        self.live: set[str] = set()
        self.state = ConnState.CONNECTING
        self.changed = asyncio.Event()
        self.stopping = asyncio.Event()
        self.reconnects = 0
        self.rotations = 0
        self.frames = 0
        self.last_frame_ns = 0
        self.last_error = ""
        # burst 1: any one-second window then sees at most rate + 1 frames (a burst of N would allow rate + N)
        self.bucket = FrameBucket(owner.config.max_frames_per_s, 1.0)
        self.task: asyncio.Task[None] | None = None
        self._frame_ids = itertools.count(1)

    def close(self) -> None:
        self.stopping.set()
        self.changed.set()

    def status(self) -> ConnectionStatus:
        age = (time.perf_counter_ns() - self.last_frame_ns) / 1e9 if self.last_frame_ns else None
        return ConnectionStatus(
            conn_id=self.id,
            state=self.state,
            streams=len(self.desired),
            reconnects=self.reconnects,
            rotations=self.rotations,
            last_frame_age_s=age,
            last_error=self.last_error,
        )

    async def run(self) -> None:
        attempt = 0
        resumed = False
        while not self.stopping.is_set():
            self.state = ConnState.CONNECTING
            streams = sorted(self.desired)
            try:
                sock = await self.owner.open_socket(streams, self.on_frame)
            except Exception as exc:
                self.last_error = f"connect: {type(exc).__name__}: {exc}"
                self.owner.restarts["connect_failed"] = self.owner.restarts.get("connect_failed", 0) + 1
                await self._backoff(attempt)
                attempt += 1
                continue
            self.live = set(streams)
            self.frames = 0
            self.state = ConnState.CONNECTED
            self.owner.notify(
                ConnectionEvent(conn_id=self.id, connected=True, resumed=resumed, streams=tuple(streams))
            )
            reason = await self._serve(sock)
            self.live = set()
            self.state = ConnState.CLOSED if self.stopping.is_set() else ConnState.BACKOFF
            self.owner.notify(
                ConnectionEvent(
                    conn_id=self.id, connected=False, resumed=False, streams=tuple(streams), reason=reason
                )
            )
            if self.stopping.is_set():
                break
            resumed = True
            self.reconnects += 1
            self.owner.restarts[reason] = self.owner.restarts.get(reason, 0) + 1
            log.warning(f"{self.owner.name}#{self.id}: restarting connection ({reason}; {self.last_error})")
            attempt = 0 if self.frames else attempt + 1
            await self._backoff(attempt)
        self.state = ConnState.CLOSED

    async def _backoff(self, attempt: int) -> None:
        cfg = self.owner.config
        self.state = ConnState.BACKOFF
        delay = backoff_delay(attempt, base_s=cfg.backoff_base_s, cap_s=cfg.backoff_cap_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), delay)

    async def _serve(self, sock: KlineSocket) -> str:
        cfg = self.owner.config
        loop = asyncio.get_running_loop()
        self.last_frame_ns = time.perf_counter_ns()
        rotate_at = loop.time() + cfg.max_connection_age_s
        try:
            while True:
                self.changed.clear()
                if self.desired != self.live and not self.stopping.is_set():
                    await self._sync(sock)
                waiter: asyncio.Future[Any] = asyncio.create_task(self.changed.wait())
                ended: asyncio.Future[Any] = sock.ended
                await asyncio.wait(
                    {ended, waiter}, timeout=cfg.check_interval_s, return_when="FIRST_COMPLETED"
                )
                waiter.cancel()
                if self.stopping.is_set():
                    return "closing"
                if ended.done():
                    self.last_error = ended.result()
                    return "error" if self.last_error.startswith("error") else "read_loop_closed"
                if self.desired and time.perf_counter_ns() - self.last_frame_ns > cfg.stall_timeout_s * 1e9:
                    self.last_error = f"no frame for {cfg.stall_timeout_s:g} s"
                    return "stall"
                if loop.time() >= rotate_at:
                    rotated = await self._rotate(sock)
                    if rotated is not None:
                        sock = rotated
                    rotate_at = loop.time() + (cfg.max_connection_age_s if rotated else cfg.backoff_cap_s)
        finally:
            await self.owner.close_socket(sock)

    async def _rotate(self, old: KlineSocket) -> KlineSocket | None:
        """Make before break: the new socket reads alongside the old for the overlap, then the old closes."""
        streams = sorted(self.desired)
        try:
            new = await self.owner.open_socket(streams, self.on_frame)
        except Exception as exc:
            self.last_error = f"rotation: {type(exc).__name__}: {exc}"
            return None
        self.live = set(streams)
        await asyncio.sleep(self.owner.config.rotation_overlap_s)
        await self.owner.close_socket(old)
        self.rotations += 1
        return new

    def on_frame(self, msg: Any, received_ns: int) -> None:
        """Every decoded frame of this slot's sockets, on the loop thread, in arrival order."""
        self.last_frame_ns = received_ns
        self.frames += 1
        self.owner.handle_frame(msg, received_ns)

    async def _sync(self, sock: KlineSocket) -> None:
        """Send the subscription difference as at most one UNSUBSCRIBE and one SUBSCRIBE frame, paced."""
        for method, streams in (
            ("UNSUBSCRIBE", self.live - self.desired),
            ("SUBSCRIBE", self.desired - self.live),
        ):
            ws = sock.ws
            if not streams or ws is None:
                continue
            wait = self.bucket.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
            params = sorted(streams)
            try:
                await ws.send(json.dumps({"method": method, "params": params, "id": next(self._frame_ids)}))
            except Exception as exc:
                self.last_error = f"{method}: {type(exc).__name__}: {exc}"
                return
            if method == "SUBSCRIBE":
                self.live.update(params)
            else:
                self.live.difference_update(params)


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
        self._lock = threading.Lock()
        self._slots: dict[int, _Slot] = {}
        self._slot_of: dict[str, _Slot] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._next_id = 1
        self.restarts: dict[str, int] = {}
        self.klines_closed = 0
        self.kline_updates = 0
        self.replies = 0
        self.other = 0
        self.malformed = 0

    # --- lifecycle (any thread) --------------------------------------------------------------------

    def subscribe(self, streams: Iterable[str]) -> None:
        self._call(self._add, tuple(streams))

    def unsubscribe(self, streams: Iterable[str]) -> None:
        self._call(self._remove, tuple(streams))

    def status(self) -> WsStatus:
        with self._lock:
            slots = tuple(self._slots.values())
        return WsStatus(
            connections=tuple(s.status() for s in slots),
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
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            slot.close()
        tasks = {s.task for s in slots if s.task is not None} | self._retiring
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.close_timeout_s * 2)

    # --- on the loop -------------------------------------------------------------------------------

    def _add(self, streams: tuple[str, ...]) -> None:
        fresh = [s for s in dict.fromkeys(streams) if s not in self._slot_of]
        current = {cid: slot.desired for cid, slot in self._slots.items()}
        placed = assign_streams(current, fresh, self.config.streams_per_connection, self._next_id)
        for cid, added in placed.items():
            slot = self._slots.get(cid)
            if slot is None:
                slot = _Slot(self, cid, added)
                self._next_id = max(self._next_id, cid + 1)
                with self._lock:
                    self._slots[cid] = slot
                slot.task = asyncio.get_running_loop().create_task(slot.run(), name=f"{self.name}#{cid}")
            else:
                slot.desired.update(added)
                slot.changed.set()
            for stream in added:
                self._slot_of[stream] = slot

    def _remove(self, streams: tuple[str, ...]) -> None:
        touched: set[_Slot] = set()
        for stream in streams:
            slot = self._slot_of.pop(stream, None)
            if slot is not None:
                slot.desired.discard(stream)
                touched.add(slot)
        for slot in touched:
            if slot.desired:
                slot.changed.set()
                continue
            with self._lock:
                self._slots.pop(slot.id, None)
            slot.close()
            if slot.task is not None:
                self._retiring.add(slot.task)
                slot.task.add_done_callback(self._retiring.discard)

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

        Anything else (closed klines, replies, frames missing those fields) takes the full parse, which
        also reports malformed frames.
        """
        if type(msg) is not dict:
            return False
        data = msg.get("data")
        if type(data) is not dict or data.get("e") not in _KLINE_EVENTS:
            return False
        k = data.get("k")
        if type(k) is not dict or k.get("x") is not False:
            return False
        symbol = k.get("s") or data.get("s") or data.get("ps")
        try:
            price = float(k["c"])
        except (KeyError, TypeError, ValueError):
            return False
        if not isinstance(symbol, str) or not symbol:
            return False
        self.kline_updates += 1
        try:
            on_price(symbol, price, received_ns)
        except Exception:
            log.exception(f"{self.name}: price callback failed for {symbol}")
        return True
