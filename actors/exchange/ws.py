"""Market-data WebSocket connections of one market: python-binance sockets on one background event loop.

``MarketConnections`` runs ONE thread with ONE asyncio loop (per MarketStream) and shards the kline streams
into connections of at most ``streams_per_connection`` (a "slot" per shard). Each slot:

* opens ``BinanceSocketManager.futures_multiplex_socket`` (USDⓈ-M ``FSTREAM_URL/market/stream?streams=``,
  COIN-M ``FuturesType.COIN_M`` → ``DSTREAM_URL/stream?streams=``) with the library's own reconnects
  disabled (``MAX_RECONNECTS = 0``): the library gives up after 5 attempts and never tells us which frames
  it lost, so every drop surfaces here, we reconnect with full-jitter backoff and the owner backfills;
* restarts on any library error message (``BinanceWebsocketQueueOverflow``, ``ConnectionClosedError``, …),
  on a closed read loop, or when no frame came for ``stall_timeout_s``;
* rotates before Binance's 24 h cut: opens the replacement first, reads both for ``rotation_overlap_s``,
  then closes the old one (the sequencer drops the overlap's duplicates);
* changes subscriptions on the live socket with one batched SUBSCRIBE/UNSUBSCRIBE frame, paced by a token
  bucket. python-binance has no call for that on market sockets, so those frames go through the
  ``websockets`` connection the library exposes as ``socket.ws``; the replies come back through the
  library's read loop.

Frames are parsed into ``Kline`` here (the venue boundary) and handed to ``on_kline(kline, received_ns)``
with ``received_ns = time.perf_counter_ns()`` taken as our reader got the frame.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from binance import AsyncClient
from binance.enums import FuturesType
from binance.ws.reconnecting_websocket import ReconnectingWebsocket
from binance.ws.streams import BinanceSocketManager
from loguru import logger

from actors.messages import TIMEFRAME_MS, ContractType, Kline

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
    max_queue_size: int = 1000
    """python-binance's read queue; overflowing it ends the socket (we restart and backfill)."""
    stall_timeout_s: float = 30.0
    max_connection_age_s: float = 23 * 3600.0
    rotation_overlap_s: float = 2.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    close_timeout_s: float = 3.0
    check_interval_s: float = 0.25


# --- pure helpers ----------------------------------------------------------------------------------


class MalformedFrame(ValueError):
    """A frame that claims to be a kline but cannot be read; ``stream`` names where it came from."""

    def __init__(self, stream: str, reason: str) -> None:
        super().__init__(f"malformed frame on stream {stream!r}: {reason}")
        self.stream = stream


def kline_stream(symbol: str, timeframe: str) -> str:
    """Binance stream name, e.g. ``btcusdt@kline_1m``."""
    return f"{symbol.lower()}@kline_{timeframe}"


def parse_kline_frame(frame: Any) -> Kline | None:
    """A combined-stream frame ``{"stream", "data": {"e": "kline", "k": {...}}}`` → ``Kline``.

    None for frames that are not klines (SUBSCRIBE replies, other events); ``MalformedFrame`` otherwise.
    """
    if not isinstance(frame, dict):
        raise MalformedFrame("?", f"expected a JSON object, got {type(frame).__name__}")
    data = frame.get("data")
    if data is None:
        return None
    stream = str(frame.get("stream", "?"))
    if not isinstance(data, dict):
        raise MalformedFrame(stream, "'data' is not an object")
    if data.get("e") not in {"kline", "continuous_kline"}:
        return None
    try:
        k = data["k"]
        closed = k["x"]
        timeframe = k["i"]
        if not isinstance(closed, bool) or timeframe not in TIMEFRAME_MS:
            raise MalformedFrame(stream, f"bad 'x'={closed!r} or 'i'={timeframe!r}")
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
        if isinstance(exc, MalformedFrame):
            raise
        raise MalformedFrame(stream, f"{type(exc).__name__}: {exc}") from exc


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
    current: Mapping[int, Set[str]], new: Iterable[str], cap: int, next_id: int
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
    """A connection came up (``resumed`` = after a drop/stall/overflow: frames may be missing) or went down."""

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
