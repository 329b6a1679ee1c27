"""The shared parts of a running bot and the start functions of the shared children.

Actors find each other through ``Refs`` (the current incarnation of the ledger, executor and market
streams), never through a ref captured at start, because a supervisor restart creates a new actor.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import pykka
from loguru import logger

from ..config import Config, Mode, PairSettings
from ..domain.model import ContractType
from ..exchange.endpoints import Venue
from ..exchange.gateway import BinanceGateway
from ..exchange.instruments import spec_to_entry
from ..exchange.kline_frames import kline_stream
from ..exchange.ratelimit import WeightBudget
from ..exchange.types import UserStreamStatus
from ..exchange.user_stream import UserStream
from ..messages import Alert, EntryRejected, PositionClosed, SetCandleHandoff, Subscribe, Unsubscribe
from ..runtime.actor import Barrier
from ..runtime.routing import Router
from ..runtime.scheduling import OrderPriority
from ..runtime.supervision import ChildSpec, Restart
from ..sim.launch import (
    SimStep,
    archive_previous_ledger,
    paper_broker,
    parse_with_marker,
    replay_exchange,
    trading_pairs,
)
from ..sim.lockstep import MINUTE_MS, ReplayPacer, UserStreamGate, chain_barriers
from ..sim.remote import RemoteExchange
from .actor_refs import PortfolioBoard, Refs
from .ledger_snapshots import LedgerSnapshots
from .market_stream import MarketStream, MarketStreamBoard
from .order_executor import OrderExecutor
from .order_terms import EntrySlots, SymbolTerms
from .pair_timeframe import KlinePool
from .position_ledger import PositionLedger

if TYPE_CHECKING:
    from ..domain.fills import InstrumentSpec
    from ..exchange.types import UserEvent
    from ..exchange.user_stream import UserEventParser
    from ..runtime.actor import Monitor
    from ..sim.server import LocalExchange
    from .pair_timeframe import PairStatus


PAIR_GATEWAYS = 4
"""REST gateways the pair actors share for warm-up and gap reads (one lock each): a pair restart warms its
timeframes side by side, and the shared weight budget still paces them all."""


class Parts:
    """Venue, gateways, boards and streams of one process (built once; reloads update terms only)."""

    def __init__(self, config: Config, *, pair_status: Callable[[PairStatus], None]) -> None:
        self.config = config
        self.exchange: LocalExchange | RemoteExchange | None = None
        self.paper: LocalExchange | None = None
        key: str | None
        secret: str | None
        replay_speed = math.inf
        if config.api.mode is Mode.REPLAY:
            if config.replay.exchange_url is not None:
                remote = RemoteExchange(config.replay.exchange_url)
                replay_speed = remote.speed
                self.exchange = remote
            else:
                archive_previous_ledger(config)
                local = replay_exchange(config)
                replay_speed = local.config.speed
                self.exchange = local
            venue = Venue.local(self.exchange.rest_url, self.exchange.ws_url)
            key, secret = self.exchange.api_key, self.exchange.api_secret
            market_venue = venue
        elif config.api.mode is Mode.PAPER:
            # Real market data (Binance, or a local exchange given by replay.exchange_url); orders go to
            # an in-process simulated broker that follows those prices: nothing reaches a real account.
            if config.replay.exchange_url is not None:
                remote = RemoteExchange(config.replay.exchange_url)
                self.exchange = remote
                market_venue = Venue.local(remote.rest_url, remote.ws_url)
            else:
                market_venue = Venue.binance(testnet=False)
            self.paper = paper_broker(config)
            venue = Venue.local(self.paper.rest_url, self.paper.ws_url)
            key, secret = self.paper.api_key, self.paper.api_secret
        elif config.api.mode in {Mode.TESTNET, Mode.LIVE}:
            venue = Venue.binance(testnet=config.api.mode is Mode.TESTNET)
            market_venue = venue
            key = config.api.binance_api_key.get_secret_value() if config.api.binance_api_key else None
            secret = (
                config.api.binance_api_secret.get_secret_value() if config.api.binance_api_secret else None
            )
        else:
            raise ValueError(f"api.mode {config.api.mode} is not supported")
        self.venue = venue
        self.market_venue = market_venue
        self.secrets = tuple(s for s in (key, secret) if s)
        self.budget = WeightBudget()
        self.market_budget = self.budget if market_venue is venue else WeightBudget()

        def gateway() -> BinanceGateway:
            return BinanceGateway(
                venue,
                api_key=key,
                api_secret=secret,
                budget=self.budget,
                recv_window_ms=config.api.recv_window_ms,
                timeout_s=config.api.request_timeout_s,
            )

        def market_gateway() -> BinanceGateway:
            if market_venue is venue:
                return gateway()
            return BinanceGateway(
                market_venue,
                api_key=None,
                api_secret=None,
                budget=self.market_budget,
                timeout_s=config.api.request_timeout_s,
            )

        self._market_gateway = market_gateway
        self._gateway = gateway
        self.pair_gateway = KlinePool([market_gateway() for _ in range(PAIR_GATEWAYS)])
        self.router = Router()
        self.portfolio = PortfolioBoard()
        self.refs = Refs()
        self.snapshots = LedgerSnapshots()
        self.pair_status = pair_status
        self.contracts = sorted({s.contract_type for s in trading_pairs(config).values()}) or [
            ContractType.USDT_M
        ]
        self.specs: dict[str, InstrumentSpec] = {}
        info_gateway = market_gateway()
        for contract in self.contracts:
            self.specs.update(info_gateway.exchange_info(contract))
        if self.paper is not None:
            for contract in self.contracts:
                listed = [spec_to_entry(x) for x in self.specs.values() if x.contract_type is contract]
                self.paper.add_symbols(contract, listed)
        self.settings: dict[str, PairSettings] = dict(trading_pairs(config))
        missing = [s for s in self.settings if s not in self.specs]
        if missing:
            raise ValueError(f"symbols not listed by the exchange: {', '.join(missing)}")
        self.boards = {c: MarketStreamBoard(c) for c in self.contracts}
        self.gate: UserStreamGate | None = None
        self.pacer: ReplayPacer | None = None
        self._pacer_id: str | None = None
        if config.api.mode is Mode.REPLAY and self.exchange is not None and math.isinf(replay_speed):
            self.gate = UserStreamGate([c.value for c in self.contracts])
            self.pacer = ReplayPacer(
                ack=self._ack,
                expected=[(s.symbol, s.signal_timeframe) for s in self.settings.values()],
                barriers=self._run_barriers,
            )
        self.user_streams = [
            UserStream(
                contract=c,
                gateway=gateway(),
                roots=venue,
                on_event=self._user_event(c),
                parse=cast("UserEventParser", parse_with_marker),  # SimStep rides along in replay
                name=f"user-stream-{c.value}",
            )
            for c in self.contracts
        ]
        self._lock = threading.Lock()
        self.slots = EntrySlots()
        self.priority = OrderPriority(config.supervisor.entry_priority_hold_ms)
        """Shared by pairs, executors, market streams, the ledger and user events: entries go out first."""
        self.stopping = threading.Event()
        """Set at the start of shutdown, read directly by the executor (never queued behind its mailbox)."""
        self.on_alert: Callable[[Alert], None] | None = None
        """Metrics hook for every alert (ledger's, executor's)."""
        # Observation hooks (benchmarks, metrics), read each time the executor (re)starts.
        self.executor_latency: Callable[[int], None] | None = None
        self.executor_events: Callable[[object], None] | None = None

    # ---- replay ----------------------------------------------------------------------------------

    def _run_barriers(self, then: Callable[[], None]) -> None:
        refs = [*self.refs.executors.values(), self.refs.ledger]
        chain_barriers(*[r for r in refs if r is not None and r.is_alive()])(then)

    def _ack(self, step_open_ms: int) -> None:
        if self.exchange is not None and self._pacer_id is not None:
            self.exchange.ack(self._pacer_id, step_open_ms)

    def begin_replay(self) -> None:
        """Everything is warm: register as a lock-step pacer (at ``max``) and let the clock run."""
        if self.exchange is None or self.config.api.mode is not Mode.REPLAY:
            return
        self._await_subscriptions()
        if self.pacer is not None:
            self._pacer_id = self.exchange.register_pacer("1m")
        self.exchange.resume()

    def _await_subscriptions(self, timeout_s: float = 10.0) -> None:
        """Start the clock only once the exchange streams every routed kline to us.

        Warm pairs do not mean live subscriptions: a candle sent before ours is live is lost, and in
        lock-step the clock then waits a whole pacer timeout for an ack that cannot come.
        """
        if self.exchange is None:
            return
        wanted = {kline_stream(symbol, tf) for symbol, tf in sorted(self.router.keys())}
        deadline = time.monotonic() + timeout_s
        while not wanted <= set(self.exchange.status().get("clients", {}).get("streams", ())):
            if time.monotonic() >= deadline:
                logger.warning(f"replay starts before the exchange streams all of {sorted(wanted)}")
                return
            time.sleep(0.02)

    def replay_finished(self, timeout_s: float) -> bool:
        """The data ran out and (in lock-step) the last step was acknowledged."""
        if self.config.api.mode is not Mode.REPLAY:
            return False
        return self.exchange is not None and self.exchange.wait_until_done(timeout_s)

    def log_replay_progress(self) -> None:
        """One line: replayed candles and the simulated clock (replay runs can take minutes)."""
        if self.exchange is None:
            return
        try:
            status = self.exchange.status()
        except Exception as exc:
            logger.debug(f"replay status unavailable: {exc}")
            return
        done, left = int(status.get("processed", 0)), int(status.get("remaining", 0))
        clock = datetime.fromtimestamp(int(status.get("clockMs", 0)) / 1000, tz=UTC)
        share = done / (done + left) * 100 if done + left else 100.0
        logger.info(
            f"replay {share:5.1f}%: {done:,} of {done + left:,} candle steps, clock {clock:%Y-%m-%d %H:%M}"
        )

    def _user_event(self, contract: ContractType) -> Callable[[UserEvent | SimStep], None]:
        def deliver(event: UserEvent | SimStep) -> None:
            if isinstance(event, UserStreamStatus) and event.connected and self.gate is not None:
                self.gate.reconnected(contract.value)
            if isinstance(event, SimStep):
                if self.pacer is not None and contract is self.contracts[0]:
                    self.pacer.step_symbols(event.step_open_ms, event.symbols)
                gate = self.gate
                if gate is not None:
                    step = event.step_open_ms
                    self.refs.tell_ledger(Barrier(done=lambda: gate.step_processed(contract.value, step)))
                return
            self.priority.step_aside()  # an entry on its way out goes first (at most hold_ms)
            self.refs.tell_ledger(event)

        return deliver

    # ---- shared children -------------------------------------------------------------------------

    def terms(self, config: Config) -> dict[str, SymbolTerms]:
        out = {}
        for symbol, s in trading_pairs(config).items():
            spec = self.specs.get(symbol)
            if spec is None:
                continue
            coin = s.contract_type is ContractType.COIN_M
            out[symbol] = SymbolTerms(
                spec=spec,
                leverage=s.leverage,
                margin_mode=s.margin_mode,
                fixed_margin=(s.margin_coin or 0.0) if coin else s.margin_usdt,
                dynamic_sizing=s.dynamic_sizing_enabled,
                risk_percent=s.risk_percent,
                max_concurrent=s.max_concurrent_trades,
            )
        return out

    def set_candle_handoff(self, ms: float) -> None:
        """A reloaded ``supervisor.candle_handoff_ms`` for every running market stream (restarts read
        ``self.config``, which the reload replaces)."""
        self.refs.tell_streams(SetCandleHandoff(ms=ms))

    def update_terms(self, config: Config) -> None:
        self.config = config
        self.settings = dict(trading_pairs(config))

    def _ledger_alert(self, alert: Alert) -> None:
        logger.warning(f"ALERT {alert.kind} {alert.symbol or ''}: {alert.detail}")
        if self.on_alert is not None:
            self.on_alert(alert)

    def _executor_notice(self, event: object) -> None:
        """Rejections go back to the deciding pair (min_interval bookkeeping); alerts go to the ledger."""
        if isinstance(event, EntryRejected):
            settings = self.settings.get(event.symbol)
            if settings is not None:
                self.router.tell(event.symbol, settings.signal_timeframe, event)
        elif isinstance(event, Alert):
            self.refs.tell_ledger(event)
            if self.on_alert is not None:
                self.on_alert(event)

    def _listeners(self, event: object) -> None:
        if isinstance(event, PositionClosed):
            self.refs.tell_executor(event.symbol, event)

    def shared_children(self) -> tuple[ChildSpec, ...]:
        config = self.config
        gateways = {c: self._gateway() for c in self.contracts}

        def start_ledger(monitor: Monitor, generation: int) -> pykka.ActorRef[Any]:
            ref = PositionLedger.start(
                store_path=config.state_path() / "ledger.sqlite3",
                gateways=gateways,
                execution=config.execution,
                publish_portfolio=self.portfolio.set,
                alert=self._ledger_alert,
                listeners=self._listeners,
                contracts={s: x.contract_type for s, x in self.settings.items()},
                margin_assets={s: spec.margin_asset for s, spec in self.specs.items()},
                snapshots=self.snapshots,
                priority=self.priority,
                monitor=monitor,
                generation=generation,
            )
            self.refs.ledger = ref
            return ref

        children = [
            ChildSpec(id="ledger", start=start_ledger, restart=Restart.PERMANENT, shutdown_timeout_s=10.0),
        ]
        children.extend(
            ChildSpec(
                id=f"market-stream-{contract.value}",
                start=self._market_stream_start(contract),
                restart=Restart.PERMANENT,
                shutdown_timeout_s=5.0,
            )
            for contract in self.contracts
        )
        return tuple(children)

    def executor_child(self, settings: PairSettings) -> ChildSpec:
        """The executor of one symbol: the first child of its pair supervisor, so a slow entry on one
        symbol never delays another and a reload adds or removes it with its pair."""
        symbol = settings.symbol
        gateways = {c: self._gateway() for c in self.contracts}

        def start(monitor: Monitor, generation: int) -> pykka.ActorRef[Any]:
            ref = OrderExecutor.start(
                gateways=gateways,
                terms={k: v for k, v in self.terms(self.config).items() if k == symbol},
                ledger=self.refs.ledger_teller(),
                portfolio=self.portfolio.get,
                notify=self._executor_notice,
                stop_retries=self.config.execution.stop_placement_retries,
                latency=self.executor_latency,
                events=self.executor_events,
                stopping=self.stopping,
                slots=self.slots,
                priority=self.priority,
                name=f"pair:{symbol}:executor",
                monitor=monitor,
                generation=generation,
            )
            self.refs.executors[symbol] = ref
            return ref

        return ChildSpec(
            id=f"{symbol}:executor", start=start, restart=Restart.PERMANENT, shutdown_timeout_s=10.0
        )

    def _market_stream_start(self, contract: ContractType) -> Callable[[Monitor, int], pykka.ActorRef[Any]]:
        gateway = self._market_gateway()
        gate = self.gate
        paper = self.paper

        def hold(kline: Any) -> None:
            if gate is not None and kline.timeframe == "1m":
                gate.wait_for_step(kline.open_time_ms + MINUTE_MS)

        def start(monitor: Monitor, generation: int) -> pykka.ActorRef[Any]:
            ref = MarketStream.start(
                contract=contract,
                router=self.router,
                gateway=gateway,
                roots=self.market_venue,
                board=self.boards[contract],
                monitor=monitor,
                generation=generation,
                gate=hold if gate is not None else None,
                tap=paper.feed_kline if paper is not None else None,
                priority=self.priority,
                handoff_ms=self.config.supervisor.candle_handoff_ms,
            )
            self.refs.streams[contract] = ref
            by_symbol: dict[str, list[str]] = {}
            for symbol, tf in sorted(self.router.keys()):
                settings = self.settings.get(symbol)
                if settings is not None and settings.contract_type is contract:
                    by_symbol.setdefault(symbol, []).append(tf)
            for symbol, tfs in by_symbol.items():
                ref.tell(Subscribe(symbol=symbol, timeframes=tuple(tfs)))
            return ref

        return start

    def subscribe(self, contract: ContractType, symbol: str, timeframe: str) -> None:
        ref = self.refs.streams.get(contract)
        if ref is not None:
            ref.tell(Subscribe(symbol=symbol, timeframes=(timeframe,)))

    def unsubscribe(self, settings: PairSettings, timeframes: tuple[str, ...] | None = None) -> None:
        """Stop routing and streaming ``timeframes`` of a pair (all of its timeframes by default)."""
        dropped = settings.indicator_timeframes if timeframes is None else timeframes
        ref = self.refs.streams.get(settings.contract_type)
        for tf in dropped:
            self.router.unregister(settings.symbol, tf)
        if ref is not None and dropped:
            ref.tell(Unsubscribe(symbol=settings.symbol, timeframes=dropped))

    # ---- lifecycle -------------------------------------------------------------------------------

    def start_streams(self) -> None:
        for stream in self.user_streams:
            stream.start()

    def stop_streams(self) -> None:
        for stream in self.user_streams:
            try:
                stream.stop()
            except Exception as exc:
                logger.warning(f"{stream}: stop failed: {exc}")
        if self.gate is not None:  # else a kline waiting for a marker holds the market stream's stop
            self.gate.release()

    def close(self) -> None:
        """Stop in-process exchanges; leave an external one running (only our pacer leaves it)."""
        paper, self.paper = self.paper, None
        if paper is not None:
            paper.stop()
        exchange, self.exchange = self.exchange, None
        if exchange is None:
            return
        if self._pacer_id is not None:
            try:
                exchange.unregister_pacer(self._pacer_id)
            except Exception as exc:
                logger.warning(f"pacer unregister failed: {exc}")
        exchange.stop()


def build_parts(config: Config, *, pair_status: Callable[[PairStatus], None]) -> Parts:
    """Everything below the supervision tree, for ``Daemon``."""
    return Parts(config, pair_status=pair_status)
