"""Where this process's orders and market data go, and the clients that talk there.

One per process, built before the actor tree from ``api.mode``:

==============  ===========================================  ================================================
mode            orders, account, user-data stream            market data
==============  ===========================================  ================================================
``replay``      the local exchange (started here, or the     the same local exchange
                running one at ``replay.exchange_url``)
``paper``       an in-process simulated broker               Binance (or ``replay.exchange_url``)
``testnet``     Binance Futures testnet                      testnet
``live``        Binance                                      Binance
==============  ===========================================  ================================================

Gateways are made on demand (one python-binance client and lock each); every gateway on one set of
endpoints shares one ``WeightBudget``, as Binance counts weight per IP, one ``OrderBudget``, as it counts
new orders per account, and one ``ServerClock``, so the venue's time is measured once per process. Only the
warm-up's and backfills' klines reads are ``bulk``: held to the budget's bulk share, they leave the rest of
each minute to the reads that keep positions protected. The exchange filters of every traded symbol are
read here once, so the tree starts only if the exchange lists every configured pair.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from .backtest.kline_files import DataFileError
from .config import Config, Mode, PairSettings, StartupError
from .domain.model import ContractType
from .exchange.endpoints import Endpoints
from .exchange.gateway import BinanceGateway
from .exchange.instruments import spec_to_entry
from .exchange.order_rate import OrderBudget
from .exchange.ratelimit import WeightBudget
from .exchange.server_clock import ServerClock
from .exchange.user_stream import UserStream
from .sim.launch import paper_broker, replay_exchange
from .sim.remote import RemoteExchange
from .sim.server import CannotListenError
from .tree.executor.account_view import AccountView
from .tree.rest_queue import LATE, RestQueue

if TYPE_CHECKING:
    from .domain.fills import InstrumentSpec
    from .exchange.types import Balance
    from .exchange.user_stream import UserEventParser, UserEventSink
    from .sim.server import LocalExchange

KLINE_GATEWAYS = 4
"""Klines gateways (one ``RestQueue`` worker each) serving the pair actors' warm-up and gap reads: a pair
restart warms its timeframes side by side, a cold start keeps four reads in flight, and the shared weight
budget paces them."""


def unlisted(pairs: Mapping[str, PairSettings], listed: Mapping[str, object], *, hint: str) -> list[str]:
    """One line per configured pair the exchange does not list, naming the pair's setting."""
    return [
        f"pairs.{p.key}: {symbol} is not listed by the exchange; {hint}"
        for symbol, p in pairs.items()
        if symbol not in listed
    ]


def unlisted_hint(config: Config, listed: Iterable[str]) -> str:
    """What to do about a pair the exchange of ``config.api.mode`` does not list."""
    replayed = ", ".join(sorted(listed)) or "none"
    if config.api.mode is not Mode.REPLAY:
        return "check the symbol, or the pair's contract type"
    if config.replay.exchange_url is None:
        return f"the local exchange lists only the replayed symbols ({replayed}): add its file to replay.data"
    return f"the local exchange at replay.exchange_url lists only what it replays ({replayed})"


def _started(config: Config, pairs: Mapping[str, PairSettings]) -> LocalExchange:
    """The replay's in-process exchange, or the setting that stops it from starting."""
    source = str(config.config_path or "<defaults>")
    try:
        return replay_exchange(config, pairs)
    except CannotListenError as exc:
        raise StartupError(
            [f"replay.port: {exc}; pick another port (0: any free one)"], source=source
        ) from exc
    except (DataFileError, OSError) as exc:
        raise StartupError([f"replay.data: {exc}"], source=source) from exc


class Connections:
    """The endpoints, credentials, weight budgets and exchange filters of one process (see module doc)."""

    def __init__(self, config: Config, pairs: Mapping[str, PairSettings]) -> None:
        self.config = config
        self.exchange: LocalExchange | RemoteExchange | None = None
        """The local exchange a replay runs against (in-process or remote); None in other modes."""
        self.paper: LocalExchange | None = None
        """The simulated broker of paper trading; None in other modes."""
        self.replay_speed = math.inf
        key: str | None
        secret: str | None
        mode = config.api.mode
        if mode is Mode.REPLAY:
            if config.replay.exchange_url is not None:
                remote = RemoteExchange(config.replay.exchange_url)
                self.replay_speed = remote.speed
                self.exchange = remote
            else:
                local = _started(config, pairs)
                self.replay_speed = local.config.speed
                self.exchange = local
            endpoints = Endpoints.local(self.exchange.rest_url, self.exchange.ws_url)
            key, secret = self.exchange.api_key, self.exchange.api_secret
            market = endpoints
        elif mode is Mode.PAPER:
            # Real market data (Binance, or a local exchange given by replay.exchange_url); orders go to
            # an in-process simulated broker that follows those prices: nothing reaches a real account.
            if config.replay.exchange_url is not None:
                self.exchange = RemoteExchange(config.replay.exchange_url)
                market = Endpoints.local(self.exchange.rest_url, self.exchange.ws_url)
            else:
                market = Endpoints.binance(testnet=False)
            self.paper = paper_broker(config, pairs)
            endpoints = Endpoints.local(self.paper.rest_url, self.paper.ws_url)
            key, secret = self.paper.api_key, self.paper.api_secret
        elif mode in {Mode.TESTNET, Mode.LIVE}:
            endpoints = Endpoints.binance(testnet=mode is Mode.TESTNET)
            market = endpoints
            key = config.api.binance_api_key.get_secret_value() if config.api.binance_api_key else None
            secret = (
                config.api.binance_api_secret.get_secret_value() if config.api.binance_api_secret else None
            )
        else:
            raise ValueError(f"api.mode {mode} is not supported")
        self.endpoints = endpoints
        """Orders, account reads and the user-data stream."""
        self.market_endpoints = market
        """Klines and the market WebSocket streams."""
        self._key, self._secret = key, secret
        self.secrets = tuple(s for s in (key, secret) if s)
        """For redaction: every log line, metric and shell answer is scrubbed of these."""
        self.budget = WeightBudget()
        self.market_budget = self.budget if market is endpoints else WeightBudget()
        self.clock = ServerClock(tracks_wall_clock=not endpoints.is_local)
        self.market_clock = (
            self.clock if market is endpoints else ServerClock(tracks_wall_clock=not market.is_local)
        )
        self.orders = OrderBudget()
        self.contracts = sorted({s.contract_type for s in pairs.values()}) or [ContractType.USDT_M]
        self.specs: dict[str, InstrumentSpec] = {}
        info = self.market_gateway()
        for contract in self.contracts:
            self.specs.update(info.exchange_info(contract))
        if self.paper is not None:
            for contract in self.contracts:
                listed = [spec_to_entry(x) for x in self.specs.values() if x.contract_type is contract]
                self.paper.add_symbols(contract, listed)
        missing = unlisted(pairs, self.specs, hint=unlisted_hint(config, self.specs))
        if missing:
            self.close()
            raise StartupError(missing, source=str(config.config_path or "<defaults>"))
        self.rest = RestQueue([self.market_gateway(bulk=True) for _ in range(KLINE_GATEWAYS)])
        """The pairs' REST work (history, gap repairs, late account settings), in the pairs' order."""
        self.account = AccountView()
        """Margin type, leverage and balances of the account: read once at start, shared by the executors."""
        self._settings_gateway: BinanceGateway | None = None

    def clock_ms(self) -> int:
        """The exchange's clock, in which the ledger and the executors keep every time: a replay's simulated
        clock, else the wall clock (Binance stamps its events with its own, which signed requests track).

        A local exchange in another process (``replay.exchange_url``) is not asked each time: the executor
        stamps an entry's ``submitted`` report with this just before the order leaves, and a loopback round
        trip there was most of the signal → order latency. Its replay clock is the one its answers and
        frames last reported (``ServerClock.replay_ms``, fresh while the streams flow); it is asked only when
        nothing reported it within the last second.
        """
        if self.exchange is None or self.config.api.mode is not Mode.REPLAY:
            return time.time_ns() // 1_000_000
        if not isinstance(self.exchange, RemoteExchange):  # in-process: read from memory, exact
            return self.exchange.clock_ms
        seen = self.clock.replay_ms()
        if seen is not None:
            return seen
        now = self.exchange.clock_ms
        self.clock.observe(now)
        return now

    def frame_clock(self) -> Callable[[int], None] | None:
        """Where the market streams tell each frame's event time: the local exchange's clock (its replay
        clock, which no wall-clock offset tracks); None for Binance, whose clock the sync tracks."""
        return None if self.market_clock.tracks_wall_clock else self.market_clock.observe

    def start(self, on_balances: Callable[[Iterable[Balance]], None]) -> list[threading.Thread]:
        """Read the account (once for every executor; its balances to ``on_balances``) and start the REST
        workers; returns their threads."""
        for contract in self.contracts:
            self.account.load(self.gateway(), contract)
            balances = self.account.balances(contract)
            if balances is not None:
                on_balances(balances.values())
        return self.rest.start()

    def set_up_later(self, pairs: Iterable[PairSettings]) -> None:
        """The margin type and leverage the account lacks for ``pairs``, changed after every warm-up read.

        Not needed before a symbol's first entry (which makes the change itself if it comes first), and on a
        fresh account 2 weight a symbol: made earlier, they would hold back every pair's warm-up."""
        for rank, pair in enumerate(pairs):
            if not self.account.has(pair.symbol, margin_type=pair.margin_mode, leverage=pair.leverage):
                self.rest.submit(self._set_up(pair), rank=(LATE, rank))

    def _set_up(self, pair: PairSettings) -> Callable[[object], bool]:
        """The job: on the worker's own gateway where it is the account's (four changes at once), else on
        one of its own; bulk either way, so it never eats the minute's weight kept for orders."""
        if self._settings_gateway is None and self.market_endpoints is not self.endpoints:
            self._settings_gateway = self.gateway(bulk=True)  # paper: the workers' gateways read Binance
        own, account = self._settings_gateway, self.account

        def job(source: object) -> bool:
            gateway = own or (source if isinstance(source, BinanceGateway) else None)
            return gateway is not None and account.set_up(
                gateway, pair.symbol, pair.contract_type, pair.margin_mode, pair.leverage
            )

        return job

    def gateway(self, *, bulk: bool = False, max_wait_s: float | None = None) -> BinanceGateway:
        """A REST gateway for orders and account reads (signed); ``max_wait_s=0`` for an actor that must
        never block on the weight budget (it retries later instead)."""
        return BinanceGateway(
            self.endpoints,
            api_key=self._key,
            api_secret=self._secret,
            budget=self.budget,
            recv_window_ms=self.config.api.recv_window_ms,
            timeout_s=self.config.api.request_timeout_s,
            clock=self.clock,
            orders=self.orders,
            bulk=bulk,
            max_wait_s=max_wait_s,
        )

    def market_gateway(self, *, bulk: bool = False) -> BinanceGateway:
        """A REST gateway for market data (klines, exchange info, server time); ``bulk`` for klines reads."""
        if self.market_endpoints is self.endpoints:
            return self.gateway(bulk=bulk)
        return BinanceGateway(
            self.market_endpoints,
            api_key=None,
            api_secret=None,
            budget=self.market_budget,
            timeout_s=self.config.api.request_timeout_s,
            clock=self.market_clock,
            bulk=bulk,
        )

    def user_stream(
        self, contract: ContractType, on_event: UserEventSink, parse: UserEventParser
    ) -> UserStream:
        """The user-data stream of one market (not started)."""
        return UserStream(
            contract=contract,
            gateway=self.gateway(max_wait_s=0.0),  # its loop retries; never block its close at exit
            roots=self.endpoints,
            on_event=on_event,
            parse=parse,
            name=f"user-stream-{contract.value}",
        )

    def close(self) -> None:
        """Stop the REST workers and in-process exchanges; leave an external exchange running."""
        rest = getattr(self, "rest", None)  # absent when the constructor failed before making it
        if rest is not None:
            rest.close()
        paper, self.paper = self.paper, None
        if paper is not None:
            paper.stop()
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.stop()
