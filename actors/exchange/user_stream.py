"""``UserStream``: the futures user-data socket of one market, with a listenKey WE own.

python-binance 1.0.37's ``futures_user_socket()`` / ``coin_futures_user_socket()`` return a
``KeepAliveWebsocket`` that POSTs for its own listenKey before connecting and, every ``user_timeout``,
POSTs again and PUTs a keepalive, only logging failures: an expired key is never noticed and its reconnects
(``MAX_RECONNECTS = 5``) then fail quietly. So we use its base class, ``ReconnectingWebsocket``, on the very
URL ``KeepAliveWebsocket`` builds (USDⓈ-M ``FSTREAM_URL + "private/ws?listenKey=K"``, COIN-M
``DSTREAM_URL + "ws/K"``) and own the key through the gateway:

* create it before connecting; PUT a keepalive every ``keepalive_interval_s`` (30 min);
* re-create it on ``listenKeyExpired`` or when a keepalive fails (also checked after every drop);
* reconnect with full-jitter backoff; every (dis)connection is told as ``UserStreamStatus`` so the ledger
  reconciles with REST after a gap in events.

Every message is parsed with ``parse_user_event`` and handed to ``on_event`` (the ledger's ``tell``);
malformed ones are counted and logged, never fatal. One background thread with its own event loop;
``start()``/``stop()`` are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from binance.ws.reconnecting_websocket import ReconnectingWebsocket
from loguru import logger

from ..domain.model import ContractType
from .loop_thread import LoopThread
from .parse import parse_user_event
from .stream_sockets import StreamRoots, backoff_delay, close_socket
from .types import ListenKeyExpired, UserEvent, UserStreamStatus

log = logger.bind(component="user-stream")

UserEventSink = Callable[[UserEvent], None]
UserEventParser = Callable[[Mapping[str, Any], ContractType], UserEvent | None]


class ListenKeyGateway(Protocol):
    """What the user stream needs of ``actors.exchange.gateway.BinanceGateway`` (blocking calls)."""

    def create_listen_key(self, contract: ContractType) -> str: ...
    def keepalive_listen_key(self, contract: ContractType, key: str) -> None: ...
    def close_listen_key(self, contract: ContractType, key: str) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class UserStreamConfig:
    keepalive_interval_s: float = 30 * 60.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    max_queue_size: int = 1000
    connect_timeout_s: float = 10.0
    close_timeout_s: float = 3.0


@dataclass(frozen=True, slots=True, kw_only=True)
class UserStreamState:
    """Thread-safe snapshot for metrics and the shell."""

    connected: bool
    reconnects: int
    listen_keys_created: int
    keepalives: int
    events: int
    ignored: int
    malformed: int
    last_event_age_s: float | None
    last_error: str


class UserStream(LoopThread):
    """See the module docstring."""

    def __init__(
        self,
        *,
        contract: ContractType,
        gateway: ListenKeyGateway,
        roots: StreamRoots,
        on_event: UserEventSink,
        parse: UserEventParser = parse_user_event,
        config: UserStreamConfig | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"user-stream-{contract.value}")
        self.contract = contract
        self.config = config or UserStreamConfig()
        self._gateway = gateway
        self._roots = roots
        self._on_event = on_event
        self._parse = parse
        self._key: str | None = None
        self.connected = False
        self.reconnects = 0
        self.keys_created = 0
        self.keepalives = 0
        self.events = 0
        self.ignored = 0
        self.malformed = 0
        self.last_event_ns = 0
        self.last_error = ""

    # --- any thread ----------------------------------------------------------------------------------

    def state(self) -> UserStreamState:
        age = (time.perf_counter_ns() - self.last_event_ns) / 1e9 if self.last_event_ns else None
        return UserStreamState(
            connected=self.connected,
            reconnects=self.reconnects,
            listen_keys_created=self.keys_created,
            keepalives=self.keepalives,
            events=self.events,
            ignored=self.ignored,
            malformed=self.malformed,
            last_event_age_s=age,
            last_error=self.last_error,
        )

    # --- the loop ------------------------------------------------------------------------------------

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self._ready.set()
        await self._supervise(self._stop_event)
        if self._key is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.to_thread(self._gateway.close_listen_key, self.contract, self._key),
                    self.config.close_timeout_s,
                )

    async def _supervise(self, stopping: asyncio.Event) -> None:
        attempt = 0
        while not stopping.is_set():
            sock = None
            try:
                if self._key is None:
                    self._key = await asyncio.to_thread(self._gateway.create_listen_key, self.contract)
                    self.keys_created += 1
                sock = await self._open(self._key)
            except Exception as exc:
                self.last_error = f"connect: {type(exc).__name__}: {exc}"
                log.warning(f"{self.name}: {self.last_error}")
            if sock is not None:
                self._set_connected(connected=True, detail="connected")
                reason = await self._serve(sock, stopping)
                await close_socket(sock, self.config.close_timeout_s, self.name)
                self._set_connected(connected=False, detail=reason)
                if stopping.is_set():
                    return
                self.reconnects += 1
                attempt = 0
                if reason == "listen_key_expired":
                    self._key = None
            await self._check_key()
            delay = backoff_delay(attempt, base_s=self.config.backoff_base_s, cap_s=self.config.backoff_cap_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            attempt += 1

    async def _open(self, key: str) -> ReconnectingWebsocket:
        if self.contract is ContractType.USDT_M:
            url, prefix, path = self._roots.fstream_url + "private/", "ws", f"?listenKey={key}"
        else:
            url, prefix, path = self._roots.dstream_url, "ws/", key
        sock = ReconnectingWebsocket(
            url=url, path=path, prefix=prefix, max_queue_size=self.config.max_queue_size
        )
        sock.MAX_RECONNECTS = 0  # we own reconnects and the key
        await asyncio.wait_for(sock.__aenter__(), self.config.connect_timeout_s)
        return sock

    async def _serve(self, sock: ReconnectingWebsocket, stopping: asyncio.Event) -> str:
        reader = asyncio.create_task(self._read(sock))
        stop_waiter = asyncio.create_task(stopping.wait())
        try:
            while True:
                await asyncio.wait(
                    {reader, stop_waiter},
                    timeout=self.config.keepalive_interval_s,
                    return_when="FIRST_COMPLETED",
                )
                if stopping.is_set():
                    return "closing"
                if reader.done():
                    return reader.result()
                if not await self._keepalive():
                    return "keepalive_failed"
        finally:
            reader.cancel()
            stop_waiter.cancel()

    async def _keepalive(self) -> bool:
        key = self._key
        if key is None:
            return False
        try:
            await asyncio.to_thread(self._gateway.keepalive_listen_key, self.contract, key)
        except Exception as exc:
            self.last_error = f"keepalive: {type(exc).__name__}: {exc}"
            log.warning(f"{self.name}: {self.last_error}; the listenKey will be re-created")
            self._key = None
            return False
        self.keepalives += 1
        return True

    async def _check_key(self) -> None:
        """After a drop: a key the exchange no longer knows (expired while away) must be re-created."""
        if self._key is not None:
            await self._keepalive()

    async def _read(self, sock: ReconnectingWebsocket) -> str:
        while True:
            try:
                msg = await sock.recv()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                return "read_loop_closed"
            self.last_event_ns = time.perf_counter_ns()
            if type(msg) is dict and msg.get("e") == "error":
                self.last_error = f"{msg.get('type')}: {msg.get('m')}"
                return "error"
            try:
                event = self._parse(msg, self.contract)
            except ValueError as exc:  # MalformedPayload
                self.malformed += 1
                log.warning(f"{self.name}: malformed user-data message ignored: {exc}")
                continue
            if event is None:
                self.ignored += 1
                continue
            self.events += 1
            self._emit(event)
            if isinstance(event, ListenKeyExpired):
                self.last_error = "listenKeyExpired"
                return "listen_key_expired"

    def _set_connected(self, *, connected: bool, detail: str) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        log.info(f"{self.name}: {'connected' if connected else 'disconnected'} ({detail})")
        self._emit(UserStreamStatus(contract_type=self.contract, connected=connected, detail=detail))

    def _emit(self, event: UserEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception(f"{self.name}: event callback failed for {type(event).__name__}")
