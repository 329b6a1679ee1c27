"""WebSocket side: market streams and user-data streams on every path Binance's clients use.

One server is both fstream and dstream. Paths: ``/ws``, ``/stream`` and their ``/market``, ``/public`` and
``/private`` variants (USDⓈ-M's 2026 URL split), each also as ``…/ws/<name>[/<name>…]``. A path ending in
``/stream`` delivers combined frames (``{"stream": name, "data": payload}``), ``/ws`` raw payloads.

Every name — in the path tail, in ``?streams=a/b``, in ``?listenKey=K`` (repeatable, with ``events=E1/E2``
filters), or in a SUBSCRIBE — is either an active listenKey (its user-data events are delivered, framed
with the key as ``stream``) or a market stream name (``stream_names``). Like Binance, an unknown name (a
bogus or expired listenKey too) is accepted and stays silent; category routing is lenient: any path carries
any stream (COIN-M's unsplit ``/stream`` must carry everything anyway).

More than ``max_frames_per_s`` incoming frames in a second, or more than ``stream_cap`` streams, closes the
connection with 1008 as Binance does. On ``listenKeyExpired`` the event is pushed and the key unbound; the
socket stays open. Sends are awaited, so a slow client slows the replay instead of losing frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..domain.model import ContractType
from . import ws_frames
from .config import SimConfig
from .faults import Faults, damage_frame
from .listen_keys import ListenKeys
from .orders import UserEvent
from .stream_names import StreamSpec, parse_stream

log = logging.getLogger(__name__)
_PREFIXES = ("", "/market", "/public", "/private")


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
    keys: dict[str, frozenset[str] | None] = field(default_factory=dict)
    """Bound listenKeys → the event types wanted (None: all)."""
    frames: deque[float] = field(default_factory=deque)


class Hub:
    """Connections, subscriptions and listenKeys; all methods run on the exchange's loop."""

    def __init__(self, config: SimConfig, faults: Faults, clock_ms: Callable[[], int]) -> None:
        self.config = config
        self.faults = faults
        self.clock_ms = clock_ms
        self.conns: set[Conn] = set()
        self.subs: dict[str, set[Conn]] = {}
        self.keys = ListenKeys(config.listen_key_ttl_s)
        self.on_client: Callable[[], None] = lambda: None
        self._specs: list[StreamSpec] | None = None
        self._by_symbol: dict[str, list[StreamSpec]] = {}
        self.stats = {"ws_connections": 0, "ws_messages": 0, "ws_dropped_by_stall": 0, "ws_kicked": 0}

    # --- replay side -----------------------------------------------------------------------------

    def streams_for(self, symbol: str) -> list[StreamSpec]:
        """The subscribed streams that carry ``symbol`` (all-market ones included); cached until the
        subscriptions change, as the replay asks at every price update."""
        if self._specs is None:
            self._specs = [spec for name in self.subs if (spec := parse_stream(name)) is not None]
            self._by_symbol = {}
        found = self._by_symbol.get(symbol)
        if found is None:
            found = self._by_symbol[symbol] = [s for s in self._specs if s.matches(symbol)]
        return found

    async def publish(self, stream: str, payload: Any) -> None:
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
        users = [c for c in self.conns if c.keys]
        for event in events:
            kind = event.payload.get("e")
            for conn in users:
                for key, wanted in list(conn.keys.items()):
                    lk = self.keys.active(key)
                    if lk is None or lk.contract_type is not event.contract_type:
                        continue
                    if wanted is None or kind in wanted:
                        await self._send(conn, self._user_frame(conn, key, event.payload))

    @staticmethod
    def _user_frame(conn: Conn, key: str, payload: Any) -> str:
        return _dumps({"stream": key, "data": payload} if conn.combined else payload)

    async def _send(self, conn: Conn, text: str) -> None:
        if conn.ws.closed:
            return
        target = "user" if conn.keys else "market"
        fault = self.faults.take_ws_frame(target) if self.faults.ws_frames else None
        frames = [text] if fault is None else damage_frame(fault, text, combined=conn.combined)
        try:
            for frame in frames:
                await conn.ws.send_str(frame)
            self.stats["ws_messages"] += 1
        except (ConnectionError, RuntimeError):
            self._remove(conn)

    # --- subscriptions ---------------------------------------------------------------------------

    def _attach(self, conn: Conn, names: Iterable[str], events: frozenset[str] | None = None) -> bool:
        """Bind listenKeys and subscribe market streams; False when the stream cap is exceeded."""
        for name in names:
            key, _, event = name.partition("@")
            if self.keys.active(name) is not None:
                conn.keys[name] = events
            elif event and self.keys.active(key) is not None:
                known = conn.keys.get(key)
                conn.keys[key] = (known or frozenset()) | {event}
            elif name not in conn.streams:
                conn.streams.append(name)
                self.subs.setdefault(name, set()).add(conn)
        self._specs = None
        return len(conn.streams) <= self.config.stream_cap

    def _detach(self, conn: Conn, names: Iterable[str]) -> None:
        for name in names:
            conn.keys.pop(name, None)
            if name in conn.streams:
                conn.streams.remove(name)
                subs = self.subs.get(name, set())
                subs.discard(conn)
                if not subs:
                    self.subs.pop(name, None)
        self._specs = None

    def _remove(self, conn: Conn) -> None:
        self._detach(conn, list(conn.streams))
        conn.keys.clear()
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
        return self.keys.create(contract_type)

    def keepalive(self, key: str | None, contract_type: ContractType) -> str:
        return self.keys.keepalive(key, contract_type)

    def delete_key(self, key: str | None, contract_type: ContractType) -> None:
        self.keys.delete(key, contract_type)

    async def expire_keys(self, key: str | None = None) -> list[str]:
        """Expire ``key`` (None: all past their TTL): push ``listenKeyExpired``, unbind; sockets stay open."""
        expired = self.keys.expire(key)
        for k in expired:
            payload = {"e": "listenKeyExpired", "E": self.clock_ms(), "listenKey": k}
            for conn in [c for c in self.conns if k in c.keys]:
                del conn.keys[k]
                await self._send(conn, self._user_frame(conn, k, payload))
        return expired

    # --- connections -----------------------------------------------------------------------------

    async def connect(self, request: web.Request) -> web.WebSocketResponse:
        """Any stream path: bind the names it carries, then answer request frames until it closes."""
        tail = request.match_info.get("tail", "")
        names = [n for n in tail.split("/") if n]
        names += [n for n in request.query.get("streams", "").split("/") if n]
        keys = request.query.getall("listenKey", [])
        events = [frozenset(e for e in v.split("/") if e) for v in request.query.getall("events", [])]
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20, timeout=1.0, compress=False)
        await ws.prepare(request)
        _no_delay(request)
        conn = Conn(ws=ws, combined=request.path.rstrip("/").endswith("/stream"))
        self.conns.add(conn)
        self.stats["ws_connections"] += 1
        fits = self._attach(conn, names)
        for i, key in enumerate(keys):
            wanted = events[i] if len(events) == len(keys) else (events[0] if len(events) == 1 else None)
            fits = self._attach(conn, [key], wanted or None) and fits
        if not fits:
            await self._kick(conn, b"Too many streams")
            return ws
        if not conn.keys:
            self.on_client()
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT and msg.type is not WSMsgType.BINARY:
                    continue
                if self._flooding(conn):
                    await self._kick(conn, b"Too many messages")
                    break
                reply = self._answer(conn, msg.data)
                if len(conn.streams) > self.config.stream_cap:
                    await self._kick(conn, b"Too many streams")
                    break
                await self._send(conn, _dumps(reply))
        finally:
            self._remove(conn)
        return ws

    def _answer(self, conn: Conn, data: str | bytes) -> dict[str, Any]:
        request = ws_frames.parse(data)
        if isinstance(request, dict):
            return request
        if request.method == "SUBSCRIBE":
            self._attach(conn, request.params)
            self.on_client()
        elif request.method == "UNSUBSCRIBE":
            self._detach(conn, request.params)
        elif request.method == "LIST_SUBSCRIPTIONS":
            return {"result": list(conn.streams) + list(conn.keys), "id": request.id}
        else:
            answer, conn.combined = ws_frames.property_answer(request, conn.combined)
            return answer
        return {"result": None, "id": request.id}

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

    def routes(self) -> list[web.RouteDef]:
        paths = [p + leaf for p in _PREFIXES for leaf in ("/ws", "/stream")]
        tails = [f"{p}/ws/{{tail:.+}}" for p in _PREFIXES]
        return [web.get(p, self.connect) for p in paths + tails]

    def status(self) -> dict[str, Any]:
        return {
            "market_clients": sum(1 for c in self.conns if not c.keys),
            "user_clients": sum(1 for c in self.conns if c.keys),
            "streams": sorted(self.subs),
            **self.stats,
        }
