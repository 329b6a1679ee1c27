"""``LocalExchange``: the local Binance Futures exchange running on its own thread and event loop.

    with LocalExchange(["data/BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"], SimConfig(port=0)) as ex:
        Client.FUTURES_URL = ex.fapi_url  # python-binance, unmodified
        ...

``start()`` returns once the port is bound; ``stop()`` closes every connection and joins the thread.
Every Python-side method hops onto the exchange's loop, so it is safe to call from any thread.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from ..backtest.funding_files import load_funding_args
from ..domain.model import ContractType, Kline
from ..exchange.instruments import SymbolCatalog
from . import admin
from .book import Book
from .clock import Pacers
from .config import SimConfig
from .exchange import SimExchange
from .faults import Faults, HttpFault, StopExpiry, WsFrameFault
from .guard import WeightWindow
from .market import Feed, KlineArrays
from .replay import Replay
from .rest import RestApi, binance_errors
from .rules import SymbolRules
from .streams import Hub

log = logging.getLogger(__name__)
T = TypeVar("T")
DataSource = str | Path | tuple[str, str | Path] | KlineArrays


def load_feeds(data: Iterable[DataSource], catalog: SymbolCatalog) -> list[Feed]:
    """Feeds from ``"FILE"``, ``"SYM=FILE"``, ``(symbol, path)`` or already loaded series.

    Each is listed with ``catalog``'s exchangeInfo entry; a synthesised one is logged as a warning.
    """
    from ..backtest import kline_files as datafiles  # noqa: PLC0415 - the loader is only needed for file sources

    feeds = []
    for source in data:
        if isinstance(source, tuple):
            symbol, path = source[0], Path(source[1])
            series = datafiles.load_klines(path, symbol=symbol, archive=True)
            feeds.append(Feed.from_series(series, symbol, catalog))
        elif isinstance(source, str | Path):
            symbol_arg, path = datafiles.parse_data_arg(str(source))
            series = datafiles.load_klines(path, symbol=symbol_arg, archive=True)
            feeds.append(Feed.from_series(series, symbol_arg, catalog))
        else:
            feeds.append(Feed.from_series(source, None, catalog))
    for listing in catalog.synthesised.values():
        log.warning("local exchange: %s", listing.warning())
    return feeds


class CannotListenError(OSError):
    """The local exchange could not bind its port (in use, or not allowed): one line says which."""


class LocalExchange:
    """In-process launcher of the local exchange (see the module docstring)."""

    def __init__(self, data: Sequence[DataSource] = (), config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.catalog = SymbolCatalog(self.config.exchange_info)
        self._feeds = load_feeds(data, self.catalog)
        funding = load_funding_args(self.config.funding_rates)
        for feed in self._feeds:
            feed.funding = funding.get(feed.symbol)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._exchange: SimExchange | None = None
        self.port = self.config.port
        self._extremes: dict[tuple[str, int], tuple[float, float]] = {}
        self._pending_flush: asyncio.Future[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="local-exchange", daemon=True)
        self._thread.start()
        self._ready.wait()
        if isinstance(self._error, OSError):
            why = "address already in use" if self._error.errno == errno.EADDRINUSE else str(self._error)
            where = f"{self.config.host}:{self.config.port}"
            raise CannotListenError(f"cannot listen on {where}: {why}") from self._error
        if self._error is not None:
            raise RuntimeError(f"local exchange failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except OSError as exc:  # its port: start() says so in one line
            self._error = exc
        except BaseException as exc:
            self._error = exc
            log.exception("local exchange stopped with an error")
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        exchange = self._build()
        app = web.Application(middlewares=[binance_errors])
        RestApi(exchange).install(app)
        admin.install(app, exchange)
        app.router.add_routes(exchange.hub.routes())
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        server = site._server  # noqa: SLF001 - aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.config.port
        replay = asyncio.create_task(exchange.replay.run(), name="replay")
        janitor = asyncio.create_task(self._expire_keys(exchange), name="listen-keys")
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            for task in (replay, janitor):
                task.cancel()
            await asyncio.gather(replay, janitor, return_exceptions=True)
            for conn in list(exchange.hub.conns):
                await conn.ws.close()
            await runner.cleanup()

    def _build(self) -> SimExchange:
        feeds = {f.symbol: f for f in self._feeds}
        faults = Faults()
        pacers = Pacers()
        rules = {f.symbol: SymbolRules.of(f.info) for f in feeds.values()}
        book = Book({f.symbol: f.spec for f in feeds.values()}, {}, self.config, rules)
        holder: list[Replay] = []
        hub = Hub(self.config, faults, lambda: holder[0].now_ms if holder else 0)
        replay = Replay(list(feeds.values()), book, hub, pacers, self.config)
        holder.append(replay)
        book.history.deposit(book.wallet.items(), replay.now_ms)
        hub.on_client = replay.client_arrived.set
        self._exchange = SimExchange(
            config=self.config,
            feeds=feeds,
            book=book,
            hub=hub,
            replay=replay,
            faults=faults,
            pacers=pacers,
            weights=WeightWindow(
                self.config.weight_limit,
                order_limit_10s=self.config.order_limit_10s,
                order_limit_1m=self.config.order_limit_1m,
            ),
        )
        replay.on_book_change = self._exchange.exposure.observe
        return self._exchange

    @staticmethod
    async def _expire_keys(exchange: SimExchange) -> None:
        while True:
            await asyncio.sleep(1.0)
            await exchange.hub.expire_keys()

    # --- addresses -------------------------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """For ``Client.API_URL`` (python-binance's ``/api/v3/ping`` and ``/api/v3/time``)."""
        return f"{self.rest_url}/api"

    @property
    def fapi_url(self) -> str:
        """For ``Client.FUTURES_URL``."""
        return f"{self.rest_url}/fapi"

    @property
    def dapi_url(self) -> str:
        """For ``Client.FUTURES_COIN_URL``."""
        return f"{self.rest_url}/dapi"

    @property
    def ws_url(self) -> str:
        """For ``BinanceSocketManager.FSTREAM_URL`` and ``DSTREAM_URL`` (one server serves both)."""
        return f"ws://{self.config.host}:{self.port}/"

    fstream_url = ws_url
    dstream_url = ws_url

    @property
    def admin_url(self) -> str:
        return f"{self.rest_url}/sim/v1"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def api_secret(self) -> str:
        return self.config.api_secret

    # --- control (thread-safe) -------------------------------------------------------------------

    @property
    def sim(self) -> SimExchange:
        """The exchange's parts; touch them only while paused, or through ``call``."""
        if self._exchange is None:
            raise RuntimeError("the local exchange is not started")
        return self._exchange

    @property
    def engine(self) -> Book:
        return self.sim.book

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the exchange's loop and return its result."""
        if self._loop is None or self._loop.is_closed():
            coro.close()
            raise RuntimeError("the local exchange is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _do(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            result = fn(*args)
            return await result if asyncio.iscoroutine(result) else result

        return self.call(run())

    @property
    def clock_ms(self) -> int:
        return self.sim.replay.now_ms

    def status(self) -> dict[str, Any]:
        return dict(self._do(admin.status, self.sim))

    def state(self) -> dict[str, Any]:
        return dict(self._do(admin.state, self.sim))

    def pause(self) -> None:
        self._do(self.sim.replay.pause)

    def resume(self) -> None:
        self._do(self.sim.replay.resume)

    # --- paper trading: prices from an outside market-data stream ----------------------------------

    def add_symbols(self, contract_type: ContractType, entries: list[dict[str, Any]]) -> None:
        """List the real exchange's symbols (raw exchangeInfo entries) so orders on them are accepted."""
        self._do(self.sim.add_symbols, contract_type, entries)

    def feed_kline(self, kline: Kline) -> None:
        """Move the price of ``kline.symbol`` as an outside stream saw it and fire the orders it reaches.

        Each update is walked from the previous price through any new low/high of the candle to its
        close (adverse first, as ``fills.candle_path`` does), so a stop touched between two updates fires.
        Thread-safe: hops onto the exchange's loop and returns at once.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._apply_kline, kline)

    def _apply_kline(self, kline: Kline) -> None:
        exchange = self.sim
        book = exchange.book
        if kline.symbol not in book.specs:
            return
        key = (kline.symbol, kline.open_time_ms)
        last = book.marks.get(kline.symbol, kline.open)
        seen_low, seen_high = self._extremes.pop(key, (kline.open, kline.open))
        low = min(last, kline.close, kline.low if kline.low < seen_low else last)
        high = max(last, kline.close, kline.high if kline.high > seen_high else last)
        if not kline.closed:
            self._extremes = {k: v for k, v in self._extremes.items() if k[0] != kline.symbol}
            self._extremes[key] = (min(seen_low, kline.low), max(seen_high, kline.high))
        exchange.replay.now_ms = max(exchange.replay.now_ms, kline.open_time_ms)
        book.on_candle(kline.symbol, last, high, low, kline.close, now=exchange.replay.now_ms)
        if book.events:
            self._pending_flush = asyncio.ensure_future(exchange.replay.flush_user_events())

    def step(self, count: int = 1, timeout: float = 30.0) -> None:
        """Let the (paused) clock take ``count`` 1m steps and wait until they are done."""
        self.call(admin.step(self.sim, count), timeout)

    def wait_until_done(self, timeout: float | None = None) -> bool:
        """Block until the replay has reached the end of the data; False on timeout."""
        if self.sim.replay.done.is_set():
            return True
        if timeout is not None and timeout <= 0:
            # A poll: a coroutine handed to the loop with no time to run would time out even when done.
            return False

        async def wait() -> None:
            await self.sim.replay.done.wait()

        try:
            self.call(wait(), timeout)
        except TimeoutError:
            return False
        return True

    def register_pacer(self, interval: str = "1m") -> str:
        exchange = self.sim

        def register() -> str:
            pacer_id = exchange.pacers.register(interval)
            exchange.replay.client_arrived.set()
            return pacer_id

        return str(self._do(register))

    def ack(self, pacer_id: str, open_time: int) -> None:
        self._do(self.sim.pacers.ack, pacer_id, open_time)

    def unregister_pacer(self, pacer_id: str) -> None:
        self._do(self.sim.pacers.unregister, pacer_id)

    # --- faults (thread-safe) --------------------------------------------------------------------

    def drop_connections(self) -> int:
        return int(self._do(self.sim.hub.drop_all))

    def stall_stream(self, seconds: float, stream: str = "") -> None:
        self._do(admin.stall, self.sim, seconds, stream)

    def fail_next(
        self,
        kind: str,
        count: int = 1,
        *,
        path: str = "",
        method: str = "",
        retry_after_s: int = 1,
        seconds: float = 0.0,
        skip: int = 0,
    ) -> None:
        """Answer the next ``count`` matching requests (after ``skip``) with ``kind``."""
        fault = HttpFault(
            kind=str(kind),
            count=count,
            path=path,
            method=method.upper(),
            retry_after_s=retry_after_s,
            seconds=seconds,
            skip=skip,
        )
        self._do(self.sim.faults.add_http, fault)

    def damage_frames(self, kind: str, count: int = 1, target: str = "market") -> None:
        """Damage the next ``count`` WebSocket frames sent to ``target`` clients (``WS_FRAME_KINDS``)."""
        self._do(self.sim.faults.add_ws_frame, WsFrameFault(kind=kind, count=count, target=target))

    def expire_next_stops(
        self, count: int = 1, *, after_s: float = 0.5, status: str = "EXPIRED", symbol: str = ""
    ) -> None:
        """Accept the next ``count`` stops, then end them ``after_s`` later with ``status``."""
        fault = StopExpiry(count=count, after_s=after_s, status=status, symbol=symbol)
        self._do(self.sim.faults.add_stop_expiry, fault)

    def skew_clock(self, ms: int) -> None:
        """Run the exchange's clock ``ms`` ahead of the host's (negative: behind; 0: in step)."""

        def apply() -> None:
            self.sim.faults.clock_skew_ms = ms

        self._do(apply)

    def exposure(self, since_s: float = 0.0) -> dict[str, Any]:
        """Positions without a stop, timed on the wall clock (see ``exposure.Exposure``)."""
        return dict(self._do(self.sim.exposure.report, since_s))

    def reject_next_order(self, code: int, msg: str | None = None) -> None:
        from .errors import KNOWN_MESSAGES  # noqa: PLC0415

        text = msg or KNOWN_MESSAGES.get(code, "NEW_ORDER_REJECTED")
        self._do(self.sim.faults.reject_codes.append, (code, text))

    def set_latency(self, seconds: float, path: str = "") -> None:
        def apply() -> None:
            self.sim.faults.latency_s = seconds
            self.sim.faults.latency_path = path

        self._do(apply)

    def expire_listen_key(self, key: str | None = None) -> list[str]:
        async def expire() -> list[str]:
            keys = [key] if key else list(self.sim.hub.keys)
            return [k for one in keys for k in await self.sim.hub.expire_keys(one)]

        return list(self.call(expire()))
