"""``ShardConnection``: one shard of a market's kline streams, kept connected over time by successive sockets.

``MarketConnections`` (``actors.exchange.ws``) splits a market's streams into shards of at most
``streams_per_connection``; each shard is served by one ``ShardConnection`` on the market's event loop, which:

* opens a ``KlineSocket`` for the shard's streams and, when its read loop ends (connection closed or
  failed) or no frame came for ``stall_timeout_s``, opens the next one after a full-jitter backoff; each
  time it comes up (``resumed`` after a drop: frames may be lost, the owner backfills) or goes down, the
  owner is told. Silence is a stall only on a socket that has carried frames, or while the market's other
  sockets have: a market silent as a whole (a replay not started yet, waiting for the bot's warm-up) is
  not a broken connection, and reconnecting would only churn (a dead TCP connection ends the read loop by
  itself: the ``websockets`` keepalive pings);
* rotates before Binance's 24 h cut: opens the replacement first, reads both for ``rotation_overlap_s``,
  then closes the old one (the sequencer drops the overlap's duplicates);
* changes subscriptions on the live socket with one batched SUBSCRIBE/UNSUBSCRIBE frame, paced by a token
  bucket (``FrameBucket``). python-binance has no call for that on market sockets, so those frames go
  through the ``websockets`` connection the library exposes as ``socket.ws``; the replies come back through
  the socket's read loop.

This module also holds the knobs (``WsConfig``) and what a connection reports (``ConnectionEvent``,
``ConnectionStatus``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from loguru import logger

from .kline_socket import FrameSink, KlineSocket
from .stream_sockets import backoff_delay

log = logger.bind(component="ws")


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


class ShardOwner(Protocol):
    """What a shard's connection needs of ``MarketConnections``: sockets, frame handling, reporting."""

    @property
    def name(self) -> str: ...
    @property
    def config(self) -> WsConfig: ...
    @property
    def restarts(self) -> dict[str, int]:
        """Restarts by reason, counted by the connections (read by ``MarketConnections.status``)."""
        ...

    def flowing_since(self, since_ns: int) -> bool:
        """Some socket of the market has had a frame after ``since_ns`` (``perf_counter_ns``)."""
        ...

    async def open_socket(self, streams: list[str], on_frame: FrameSink) -> KlineSocket: ...
    async def close_socket(self, sock: KlineSocket) -> None: ...
    def notify(self, event: ConnectionEvent) -> None: ...
    def handle_frame(self, msg: Any, received_ns: int) -> None: ...


class ShardConnection:
    """One shard of streams, carried over time by successive sockets (reconnects, rotations)."""

    def __init__(self, owner: ShardOwner, conn_id: int, streams: Iterable[str]) -> None:
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
        """Market-data frames on the current socket (replies to our own frames not counted)."""
        self.last_frame_ns = 0
        """When the last frame came (or the current socket opened, before its first frame)."""
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
        opened_ns = self.last_frame_ns = time.perf_counter_ns()
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
                silent = time.perf_counter_ns() - self.last_frame_ns > cfg.stall_timeout_s * 1e9
                if silent and self.desired and (self.frames or self.owner.flowing_since(opened_ns)):
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
        """Every decoded frame of this shard's sockets, on the loop thread, in arrival order."""
        self.last_frame_ns = received_ns
        if type(msg) is not dict or "id" not in msg:  # market data; a reply to our SUBSCRIBE is not
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
