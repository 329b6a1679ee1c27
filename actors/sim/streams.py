"""WebSocket side: market streams (combined and raw), user-data streams and listenKeys.

Paths served (python-binance 1.0.37 with ``FSTREAM_URL``/``DSTREAM_URL`` = ``ws://127.0.0.1:PORT/``):

* ``/market/stream?streams=a/b`` (USDⓈ-M multiplex), ``/stream?streams=...`` (COIN-M multiplex),
  ``/public/stream``, ``/ws``, ``/market/ws/<stream>`` and ``/ws/<stream>`` (raw payloads);
* ``/private/ws?listenKey=K`` (USDⓈ-M user socket) and ``/ws/<listenKey>`` (COIN-M user socket).

Market connections accept ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` frames; more than
``max_frames_per_s`` frames in a second, or more than ``stream_cap`` streams, closes the connection
(code 1008) as Binance does. Sends are awaited, so a slow client slows the replay instead of losing frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..domain.model import TIMEFRAME_MS, ContractType
from .config import SimConfig
from .errors import SimError
from .faults import Faults, damage_frame
from .orders import UserEvent

log = logging.getLogger(__name__)
_KLINE = re.compile(r"^([a-z0-9_]+)@kline_(\w+)$")
_CONTINUOUS = re.compile(r"^([a-z0-9_]+)_perpetual@continuouskline_(\w+)$")


def _dumps(payload: object) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _no_delay(request: web.Request) -> None:
    """Many small frames: do not let Nagle hold them back waiting for the client's delayed ACK."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(eq=False, slots=True)
class Conn:
    """One WebSocket client."""

    ws: web.WebSocketResponse
    combined: bool
    streams: list[str] = field(default_factory=list)
    listen_key: str | None = None
    contract_type: ContractType | None = None
    frames: deque[float] = field(default_factory=deque)


@dataclass(slots=True)
class ListenKey:
    key: str
    contract_type: ContractType
    expires: float
    """Wall-clock (``time.monotonic``) expiry."""


class Hub:
    """Connections, subscriptions and listenKeys; all methods run on the exchange's loop."""

    def __init__(self, config: SimConfig, faults: Faults, clock_ms: Callable[[], int]) -> None:
        self.config = config
        self.faults = faults
        self.clock_ms = clock_ms
        self.conns: set[Conn] = set()
        self.subs: dict[str, set[Conn]] = {}
        self.keys: dict[str, ListenKey] = {}
        self.on_client: Callable[[], None] = lambda: None
        self._kline_cache: dict[str, list[tuple[str, str, bool]]] | None = None
        self.stats = {"ws_connections": 0, "ws_messages": 0, "ws_dropped_by_stall": 0, "ws_kicked": 0}

    # --- replay side -----------------------------------------------------------------------------

    def kline_streams(self, symbol: str) -> list[tuple[str, str, bool]]:
        if self._kline_cache is None:
            cache: dict[str, list[tuple[str, str, bool]]] = {}
            for stream in self.subs:
                m = _KLINE.match(stream)
                continuous = False
                if m is None:
                    m = _CONTINUOUS.match(stream.lower())
                    continuous = True
                if m is not None and m.group(2) in TIMEFRAME_MS:
                    cache.setdefault(m.group(1).upper(), []).append((stream, m.group(2), continuous))
            self._kline_cache = cache
        return self._kline_cache.get(symbol, [])

    async def publish(self, stream: str, payload: dict[str, Any]) -> None:
        conns = self.subs.get(stream)
        if not conns:
            return
        if self.faults.stalls and self.faults.stalled(stream, asyncio.get_running_loop().time()):
            self.stats["ws_dropped_by_stall"] += len(conns)
            return
        raw: str | None = None
        combined: str | None = None
        for conn in list(conns):
            if conn.combined:
                combined = combined or _dumps({"stream": stream, "data": payload})
                await self._send(conn, combined)
            else:
                raw = raw or _dumps(payload)
                await self._send(conn, raw)

    async def publish_user(self, events: Sequence[UserEvent]) -> None:
        users = [c for c in self.conns if c.listen_key is not None]
        for event in events:
            text = _dumps(event.payload)
            for conn in users:
                if conn.contract_type is event.contract_type:
                    await self._send(conn, text)

    async def _send(self, conn: Conn, text: str) -> None:
        if conn.ws.closed:
            return
        fault = (
            self.faults.take_ws_frame("user" if conn.listen_key else "market")
            if self.faults.ws_frames
            else None
        )
        frames = [text] if fault is None else damage_frame(fault, text, combined=conn.combined)
        try:
            for frame in frames:
                await conn.ws.send_str(frame)
            self.stats["ws_messages"] += 1
        except (ConnectionError, RuntimeError):
            self._remove(conn)

    # --- subscriptions ---------------------------------------------------------------------------

    def _subscribe(self, conn: Conn, streams: Sequence[str]) -> bool:
        for stream in streams:
            if stream not in conn.streams:
                conn.streams.append(stream)
                self.subs.setdefault(stream, set()).add(conn)
        self._kline_cache = None
        return len(conn.streams) <= self.config.stream_cap

    def _unsubscribe(self, conn: Conn, streams: Sequence[str]) -> None:
        for stream in streams:
            if stream in conn.streams:
                conn.streams.remove(stream)
                subs = self.subs.get(stream, set())
                subs.discard(conn)
                if not subs:
                    self.subs.pop(stream, None)
        self._kline_cache = None

    def _remove(self, conn: Conn) -> None:
        self._unsubscribe(conn, list(conn.streams))
        self.conns.discard(conn)

    async def drop_all(self) -> int:
        """Fault: close every WebSocket connection now (clients see the connection go away)."""
        conns = list(self.conns)
        for conn in conns:
            self._remove(conn)
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"dropped by fault injection")
        return len(conns)

    # --- listenKeys ------------------------------------------------------------------------------

    def create_key(self, contract_type: ContractType) -> str:
        now = time.monotonic()
        for lk in self.keys.values():
            if lk.contract_type is contract_type and lk.expires > now:
                lk.expires = now + self.config.listen_key_ttl_s
                return lk.key
        key = secrets.token_hex(32)
        self.keys[key] = ListenKey(key, contract_type, now + self.config.listen_key_ttl_s)
        return key

    def keepalive(self, key: str | None, contract_type: ContractType) -> str:
        now = time.monotonic()
        lk = (
            self.keys.get(key)
            if key
            else next((k for k in self.keys.values() if k.contract_type is contract_type), None)
        )
        if lk is None or lk.expires <= now:
            raise SimError(-1125, "This listenKey does not exist.")
        lk.expires = now + self.config.listen_key_ttl_s
        return lk.key

    def delete_key(self, key: str | None, contract_type: ContractType) -> None:
        for k in [
            k
            for k, lk in self.keys.items()
            if k == key or (key is None and lk.contract_type is contract_type)
        ]:
            del self.keys[k]

    async def expire_keys(self, key: str | None = None) -> list[str]:
        """Expire ``key`` (None: every key past its TTL, or all keys when ``force``)."""
        now = time.monotonic()
        expired = [k for k, lk in self.keys.items() if k == key or (key is None and lk.expires <= now)]
        for k in expired:
            self.keys.pop(k)
            text = _dumps({"e": "listenKeyExpired", "E": self.clock_ms(), "listenKey": k})
            for conn in [c for c in self.conns if c.listen_key == k]:
                await self._send(conn, text)
                self._remove(conn)
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"listenKey expired")
        return expired

    # --- handlers --------------------------------------------------------------------------------

    async def market(self, request: web.Request) -> web.WebSocketResponse:
        tail = request.match_info.get("tail", "")
        if tail and "@" not in tail:
            return await self._user(request, tail)
        if "listenKey" in request.query:
            return await self._user(request, request.query["listenKey"])
        combined = request.path.endswith("/stream")
        streams = (
            [s for s in request.query.get("streams", "").split("/") if s]
            if combined
            else ([tail] if tail else [])
        )
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20, timeout=1.0, compress=False)
        await ws.prepare(request)
        _no_delay(request)
        conn = Conn(ws=ws, combined=combined)
        self.conns.add(conn)
        self.stats["ws_connections"] += 1
        if not self._subscribe(conn, streams):
            await self._kick(conn, b"Too many streams")
            return ws
        self.on_client()
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT and msg.type is not WSMsgType.BINARY:
                    continue
                if self._flooding(conn):
                    await self._kick(conn, b"Too many messages")
                    break
                reply = self._frame(conn, msg.data)
                if conn.ws.closed:
                    break
                if len(conn.streams) > self.config.stream_cap:
                    await self._kick(conn, b"Too many streams")
                    break
                if reply is not None:
                    await self._send(conn, _dumps(reply))
        finally:
            self._remove(conn)
        return ws

    def _flooding(self, conn: Conn) -> bool:
        now = time.monotonic()
        conn.frames.append(now)
        while conn.frames and conn.frames[0] <= now - 1.0:
            conn.frames.popleft()
        return len(conn.frames) > self.config.max_frames_per_s

    async def _kick(self, conn: Conn, reason: bytes) -> None:
        self.stats["ws_kicked"] += 1
        self._remove(conn)
        await conn.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=reason)

    def _frame(self, conn: Conn, data: str | bytes) -> dict[str, Any] | None:
        try:
            frame = json.loads(data)
        except ValueError:
            return {"error": {"code": 3, "msg": "Invalid JSON: expected value"}}
        if not isinstance(frame, dict):
            return {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}}
        rid = frame.get("id")
        method = frame.get("method")
        params = frame.get("params", [])
        if not isinstance(rid, int) or isinstance(rid, bool) or rid < 0:
            return {
                "error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
                "id": rid,
            }
        if method in {"SUBSCRIBE", "UNSUBSCRIBE"}:
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return {
                    "error": {"code": 2, "msg": "Invalid request: invalid value type for 'params'"},
                    "id": rid,
                }
            if method == "SUBSCRIBE":
                self._subscribe(conn, params)
            else:
                self._unsubscribe(conn, params)
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(conn.streams), "id": rid}
        if method == "SET_PROPERTY":
            return {"result": None, "id": rid}
        if method == "GET_PROPERTY":
            return {"result": conn.combined, "id": rid}
        return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": rid}

    async def _user(self, request: web.Request, key: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, timeout=1.0, compress=False)
        await ws.prepare(request)
        lk = self.keys.get(key)
        if lk is None or lk.expires <= time.monotonic():
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Invalid listenKey")
            return ws
        conn = Conn(ws=ws, combined=False, listen_key=key, contract_type=lk.contract_type)
        self.conns.add(conn)
        self.stats["ws_connections"] += 1
        try:
            async for _ in ws:
                if self._flooding(conn):
                    await self._kick(conn, b"Too many messages")
                    break
        finally:
            self._remove(conn)
        return ws

    def routes(self) -> list[web.RouteDef]:
        paths = [
            "/stream",
            "/market/stream",
            "/public/stream",
            "/ws",
            "/market/ws",
            "/public/ws",
            "/private/ws",
        ]
        tails = ["/ws/{tail}", "/market/ws/{tail}", "/public/ws/{tail}", "/private/ws/{tail}"]
        return [web.get(p, self.market) for p in paths + tails]

    def status(self) -> dict[str, Any]:
        return {
            "market_clients": sum(1 for c in self.conns if c.listen_key is None),
            "user_clients": sum(1 for c in self.conns if c.listen_key is not None),
            "streams": sorted(self.subs),
            **self.stats,
        }
