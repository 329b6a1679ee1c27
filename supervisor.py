"""The root of nancemakina's actor tree, and how the tree is built from the config.

::

    RootSupervisor                     this module; its root actor is actors/runtime/tree.py
    ├── shared supervisor              one_for_one, supervisor.shared_*; over budget: exit 70
    │   ├── PositionLedger             actors/tree/ledger/     first up, last down
    │   ├── MarketStream[USDT_M]       actors/tree/market/
    │   └── MarketStream[COIN_M]
    └── pair supervisor BTCUSDT        one per pair (GroupSupervisor), supervisor.pair_*; over budget: parks
        ├── OrderExecutor[BTCUSDT]     actors/tree/executor/   first child
        ├── PairTimeframe[BTCUSDT,1m]  actors/tree/pair_timeframe.py   the signal timeframe decides
        └── PairTimeframe[BTCUSDT,5m]  ...

Start order (stop is the reverse): connections (the local exchange, in replay) → the account, read once →
user-data streams → ledger (reconciles before anything trades) → market streams, every stream at once →
pairs, each executor first, their history read in the pairs' order → READY=1 → the replay clock. Actors
find each other through ``Refs`` and the ``Router``, never through a ref captured at start, because a restart
creates a new actor; the ``relays`` carry events between them.
"""

from __future__ import annotations

import sys
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from loguru import logger

from .actors.config import Config, Mode, PairSettings, load_config
from .actors.connections import Connections
from .actors.messages import PairTimeframeInbox, StopAcceptingEntries, Subscribe
from .actors.ops.access import OperatorAccess
from .actors.ops.config_watch import watch_config
from .actors.ops.reload import ProcessSettings, forget_dropped, refusals
from .actors.ops.service import run_service
from .actors.ops.state_lock import claim_state_dir
from .actors.ops.systemd import SdNotifier
from .actors.ops.warmup_progress import WarmupProgress
from .actors.runtime.child_spec import ChildSpec, Restart
from .actors.runtime.cpu_affinity import CpuPinning
from .actors.runtime.routing import Router
from .actors.runtime.scheduling import OrderPriority
from .actors.runtime.thread_watch import DeadThread, ThreadWatch
from .actors.runtime.tree import GroupSpec, ReloadResult, SupervisionTree, TreeSpec, TreeStatus
from .actors.sim.launch import trading_pairs
from .actors.sim.lockstep import ReplayDriver, chain_barriers, parse_with_marker
from .actors.tree.actor_refs import BalanceBoard, PortfolioBoard, Refs
from .actors.tree.decision_resume import DecisionMarks
from .actors.tree.executor.order_executor import OrderExecutor
from .actors.tree.executor.order_terms import EntrySlots, symbol_terms
from .actors.tree.ledger.ledger_files import ledger_path
from .actors.tree.ledger.ledger_snapshots import LedgerSnapshots
from .actors.tree.ledger.ledger_store import decided_through
from .actors.tree.ledger.position_ledger import PositionLedger
from .actors.tree.market.market_stream import MarketStream
from .actors.tree.market.market_stream_board import MarketStreamBoard
from .actors.tree.pair_timeframe import PairBoard, PairTimeframe
from .actors.tree.relays import Relays
from .actors.tree.trend_links import TrendLinks, paced_keys, trend_links

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

    from .actors.domain.model import ContractType
    from .actors.exchange.user_stream import UserEventParser
    from .actors.runtime.actor import Monitor


class RootSupervisor:
    """One bot process: the tree, the connections below it, and the operator's ways in (see module doc)."""

    def __init__(
        self,
        config: Config,
        *,
        notifier: SdNotifier | None = None,
        refs: Refs | None = None,
        router: Router[PairTimeframeInbox] | None = None,
    ) -> None:
        """``refs`` and ``router`` may come instrumented (the latency benchmark stamps what they carry)."""
        self.config = config
        self.state_lock = claim_state_dir(config)  # first: one bot per state directory, its ledger checked
        self.notifier = notifier or SdNotifier.from_env()
        self.started_at = time.time()
        self.cpu = CpuPinning()
        """``supervisor.cpu_affinity`` for every thread; the CPUs allowed are the ones at construction."""
        self.threads = ThreadWatch(on_death=self._thread_died)
        self.settings: dict[str, PairSettings] = dict(trading_pairs(config))
        self.links = trend_links(self.settings)  # who tells whom the trends (V2); in reload fingerprints
        self.connections = Connections(config, self.settings)
        self.pair_board = PairBoard()
        self.router: Router[PairTimeframeInbox] = router or Router()
        self.refs = refs or Refs()
        self.portfolio = PortfolioBoard()
        self.balances = BalanceBoard()
        """Wallet balances per asset: written by the executors' reads and the relays' ACCOUNT_UPDATEs."""
        self.snapshots = LedgerSnapshots()
        self.boards = {c: MarketStreamBoard(c) for c in self.connections.contracts}
        self.slots = EntrySlots()
        self.priority = OrderPriority(config.supervisor.entry_priority_hold_ms)
        """Shared by pairs, executors, market streams, the ledger and user events: entries go out first."""
        self.stopping = threading.Event()
        """Set at the start of shutdown, read directly by the executors (never queued behind a mailbox)."""
        self.ready_after_s: float | None = None
        self.decision_marks = DecisionMarks(partial(decided_through, ledger_path(config.state_path())))
        """Where a restarted pair resumes deciding: the ledger's record and the decisions told since."""
        self.funding = self.connections.market_gateway()
        """Funding rates (``premiumIndex``) for the V2 pairs that filter on them; one shared gateway."""
        self.replay: ReplayDriver | None = None
        exchange = self.connections.exchange
        if config.api.mode is Mode.REPLAY and exchange is not None:
            self.replay = ReplayDriver(
                exchange,
                speed=self.connections.replay_speed,
                contracts=self.connections.contracts,
                expected=paced_keys(self.settings, self.links),
                barriers=self._drain_executors_then_ledger,
                tell_ledger=self.refs.tell_ledger,
                streamed=self.router.keys,
            )
        self.relays = Relays(
            refs=self.refs, router=self.router, settings=self.settings, priority=self.priority
        )
        self.relays.balances = self.balances
        parse = cast("UserEventParser", parse_with_marker)  # the replay's SIM_STEP rides along
        self.user_streams = [
            self.connections.user_stream(c, self.relays.user_event(c, self.replay), parse)
            for c in self.connections.contracts
        ]
        self.tree = SupervisionTree(
            self._tree_spec(config),
            on_parked=lambda symbol, reason: self.relays.alert("pair_parked", symbol, reason),
            on_escalated=lambda reason: self.relays.alert("shared_exhausted", None, reason),
            on_stopping=self._stopping,
            shutdown_timeout_s=config.supervisor.shutdown_timeout_s,
        )
        self.tree.before_shutdown += [self._stop_entries, self._stop_user_streams]
        self.access = OperatorAccess(self, secrets=self.connections.secrets)
        self.relays.metrics = self.access.telemetry.metrics
        self.process_settings = ProcessSettings(cpu=self.cpu, priority=self.priority, refs=self.refs)
        self._reload_lock = threading.Lock()
        self.replay_completed = False

    # ---- the tree, from the config ---------------------------------------------------------------

    def _tree_spec(self, config: Config) -> TreeSpec:
        pair_policy, links = config.supervisor.pair_policy(), trend_links(trading_pairs(config))
        self.links = links
        pairs = {
            symbol: GroupSpec(
                name=symbol,
                fingerprint=(settings, *(links.get((symbol, tf)) for tf in settings.indicator_timeframes)),
                children=(
                    self._executor_child(settings),
                    *(self._timeframe_child(settings, tf) for tf in settings.indicator_timeframes),
                ),
                policy=pair_policy,
            )
            for symbol, settings in trading_pairs(config).items()
        }
        shared = (
            ChildSpec(id="ledger", start=self._start_ledger, shutdown_timeout_s=10.0),
            *(
                ChildSpec(
                    id=f"market-stream-{c.value}", start=self._stream_starter(c), shutdown_timeout_s=5.0
                )
                for c in self.connections.contracts
            ),
        )
        return TreeSpec(shared=shared, shared_policy=config.supervisor.shared_policy(), groups=pairs)

    def _start_ledger(self, monitor: Monitor, generation: int) -> pykka.ActorRef[Any]:
        specs = self.connections.specs
        ref = PositionLedger.start(
            store_path=ledger_path(self.config.state_path()),
            gateways={c: self.connections.gateway(max_wait_s=0.0) for c in self.connections.contracts},
            execution=self.config.execution,
            publish_portfolio=self.portfolio.set,
            alert=self.relays.ledger_alert,
            listeners=self.relays.ledger_event,
            contracts={s: x.contract_type for s, x in self.settings.items()},
            margin_assets={s: spec.margin_asset for s, spec in specs.items()},
            ticks={s: spec.tick_size for s, spec in specs.items()},
            on_settled=self.slots.settle,  # symbols found flat trade again, whatever held their slot
            snapshots=self.snapshots,
            clock_ms=self.connections.clock_ms,
            priority=self.priority,
            threads=self.threads,
            monitor=monitor,
            generation=generation,
        )
        self.refs.ledger = ref
        return ref

    def _stream_starter(self, contract: ContractType) -> Callable[[Monitor, int], pykka.ActorRef[Any]]:
        gateway = self.connections.market_gateway(bulk=True)

        def start(monitor: Monitor, generation: int) -> pykka.ActorRef[Any]:
            paper = self.connections.paper
            ref = MarketStream.start(
                contract=contract,
                router=self.router,
                gateway=gateway,
                roots=self.connections.market_endpoints,
                board=self.boards[contract],
                monitor=monitor,
                generation=generation,
                gate=self.replay.hold if self.replay is not None and self.replay.gate is not None else None,
                tap=paper.feed_kline if paper is not None else None,
                priority=self.priority,
                handoff_ms=self.config.supervisor.candle_handoff_ms,
                decides=lambda s, tf: s in self.settings and self.settings[s].signal_timeframe == tf,
                event_time=self.connections.frame_clock(),
            )
            self.refs.streams[contract] = ref
            # Every stream at once, before any pair starts (and after a restart of this actor): connections
            # open with their streams in the URL and flow during the warm-up.
            mine = [s for s in self.settings.values() if s.contract_type is contract]
            ref.tell(Subscribe(keys=tuple((s.symbol, tf) for s in mine for tf in s.indicator_timeframes)))
            return ref

        return start

    def _executor_child(self, settings: PairSettings) -> ChildSpec:
        """The first child of its pair: one symbol's slow entry never delays another's, and a reload adds
        or removes the executor with its pair."""
        symbol = settings.symbol

        def start(monitor: Monitor, generation: int) -> pykka.ActorRef[Any]:
            ref = OrderExecutor.start(
                gateways={c: self.connections.gateway(max_wait_s=0.0) for c in self.connections.contracts},
                terms={symbol: symbol_terms(self.settings[symbol], self.connections.specs[symbol])},
                ledger=self.refs.ledger_address(),
                portfolio=self.portfolio.get,
                notify=self.relays.executor_notice,
                stop_retries=self.config.execution.stop_placement_retries,
                latency=self.relays.executor_latency,
                events=self.relays.order_event,
                stopping=self.stopping,
                slots=self.slots,
                priority=self.priority,
                account=self.connections.account,
                on_balances=self.balances.update,
                clock_ms=self.connections.clock_ms,
                name=f"pair:{symbol}:executor",
                monitor=monitor,
                generation=generation,
            )
            self.refs.executors[symbol] = ref
            return ref

        return ChildSpec(id=f"{symbol}:executor", start=start, shutdown_timeout_s=10.0)

    def _timeframe_child(self, settings: PairSettings, timeframe: str) -> ChildSpec:
        trading = timeframe == settings.signal_timeframe
        pacer = self.replay.pacer if self.replay is not None else None
        links = self.links.get((settings.symbol, timeframe), TrendLinks())  # trends told before the ack:
        on_processed = pacer.processed if pacer is not None and (trading or links.publish) else None

        def start(monitor: Monitor, generation: int) -> pykka.ActorRef[Any]:
            ref = PairTimeframe.start(
                symbol=settings.symbol,
                timeframe=timeframe,
                contract=settings.contract_type,
                params=settings.strategy_params(),
                trading=trading,
                rest=self.connections.rest,
                exits=settings.exit_params(),
                links=links,
                tell_pair=self.router.tell,
                funding=self.funding,
                portfolio=self.portfolio.get,
                executor=self.refs.executor_address(settings.symbol),
                ledger=self.refs.ledger_address(),
                monitor=monitor,
                generation=generation,
                on_processed=on_processed,
                on_status=self.pair_board.publish,
                observe=self.relays.observe,
                priority=self.priority,
                rank=list(self.settings).index(settings.symbol),
                decided_through=self.decision_marks,
                on_decided=self.decision_marks.note,
            )
            self.router.register(settings.symbol, timeframe, ref)
            stream = self.refs.streams.get(settings.contract_type)
            if stream is not None:  # already subscribed at the stream's start, unless added by a reload
                stream.tell(Subscribe.of(settings.symbol, (timeframe,)))
            return ref

        return ChildSpec(
            id=f"{settings.symbol}:{timeframe}",
            start=start,
            restart=Restart.PERMANENT,
            shutdown_timeout_s=5.0,
            await_start=False,  # a pair's timeframes start side by side (after its executor)
        )

    def _drain_executors_then_ledger(self, then: Any) -> None:
        refs = [*self.refs.executors.values(), self.refs.ledger]
        chain_barriers(*[r for r in refs if r is not None and r.is_alive()])(then)

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self, *, ready_timeout_s: float | None = None) -> None:
        """Start the tree, wait (``WarmupProgress``) until every pair is warm, READY=1, then a replay runs."""
        sys.setswitchinterval(self.config.supervisor.gil_switch_interval_ms / 1000)
        self.cpu.apply(self.config.supervisor.cpu_affinity)  # threads started from here on inherit it
        self.access.start()  # first: a second bot on the same state fails here, before it trades
        for thread in self.connections.start(self.balances.update):  # the account, read once; REST workers
            self.threads.watch(thread, role="pair history and gap reads", essential=True)
        for stream in self.user_streams:
            stream.start()
            self.threads.watch_named(stream.name, role=f"{stream.name}: fills and account", essential=True)
        self.tree.start()  # every pair's history is queued now: account settings a pair lacks come after
        self.connections.set_up_later(self.settings.values())
        progress = WarmupProgress(self.pair_board, self.connections, self.notifier)
        progress.wait_for_pairs(self.settings.values(), ready_timeout_s)
        self.ready_after_s = time.time() - self.started_at
        self.notifier.ready(f"trading {len(self.settings)} pairs ({self.config.api.mode})")
        if self.replay is not None:
            self.replay.begin()
        path = self.config.config_path
        if self.config.supervisor.watch_config and path is not None:
            self.threads.spawn(
                lambda: watch_config(path, self.stopping, self._reload_framed),
                name="config-watch",
                role="reload on config file change",
                essential=False,
            )
        logger.info(f"nancemakina running: mode {self.config.api.mode}, pairs {sorted(self.settings)}")

    def alive(self) -> bool:
        """systemd watchdog liveness: the root answers, every shared actor lives, no essential thread died."""
        return self.tree.healthy() and self.threads.essential_alive()

    def wait(self) -> int:
        """Block until the tree stops (signal, escalation, or the end of a replay); returns the exit code."""
        replay = self.replay if self.config.replay.exit_at_end else None
        last_report = time.monotonic()
        while (
            self.tree.wait(0.5 if replay is not None else 1.0) == 0
            and self.tree.status().state.value != "stopped"
        ):
            self.threads.check()
            if replay is None:
                continue
            if replay.finished(timeout_s=0):
                self.replay_completed = True
                logger.info("replay finished: stopping")
                return self.shutdown()
            if time.monotonic() - last_report >= 10.0:
                last_report = time.monotonic()
                replay.log_progress()
        return self.shutdown()

    def stop(self) -> None:
        """Begin an orderly stop from any thread (a signal); the thread in :meth:`wait` finishes it."""
        self.tree.shutdown()

    def shutdown(self) -> int:
        """Orderly stop (idempotent); returns the exit code."""
        code = self.tree.shutdown()
        if self.replay is not None:
            self.replay.leave()
        self.connections.close()
        self.access.stop()
        self.cpu.apply(None)  # the process's CPUs as it started with (another daemon may follow in it)
        self.state_lock.release()
        return code

    def status(self) -> TreeStatus:
        return self.tree.status()

    def restart_pair(self, symbol: str) -> bool:
        return self.tree.restart_group(symbol)

    def _stopping(self) -> None:
        self.threads.close()  # threads end on purpose from now on
        self.notifier.stopping()

    def _stop_entries(self) -> None:
        self.stopping.set()
        self.refs.tell_executors(StopAcceptingEntries())

    def _stop_user_streams(self) -> None:
        for stream in self.user_streams:
            self.threads.forget(stream.name)
            try:
                stream.stop()
            except Exception as exc:
                logger.warning(f"{stream}: stop failed: {exc}")
        if self.replay is not None:  # else a kline waiting for a marker holds the market stream's stop
            self.replay.release()

    def _thread_died(self, death: DeadThread) -> None:
        self.relays.alert("thread_died", None, f"{death.name}: {death.role} stopped")

    def _reload_framed(self) -> None:
        """A reload from the config watcher, framed for systemd like SIGHUP's."""
        self.notifier.reloading()
        try:
            self.reload()
        finally:
            self.notifier.ready()

    # ---- reload ----------------------------------------------------------------------------------

    def reload(self) -> ReloadResult | list[str]:
        """Re-read the config file; apply it if valid (only changed pairs restart), else keep the old one."""
        with self._reload_lock:
            try:
                new = load_config(self.config.config_path) if self.config.config_path else self.config
            except Exception as exc:  # ConfigError lists every problem; anything else is one line
                errors = list(getattr(exc, "errors", [str(exc)]))
                for line in errors:
                    logger.error(f"reload refused, keeping the running config: {line}")
                return errors
            previous, kept = trading_pairs(self.config), trading_pairs(new)
            refused = refusals(
                self.config, new, pairs=(previous, kept), cpu=self.cpu, listed=self.connections.specs
            )
            if refused:
                for line in refused:
                    logger.error(f"reload refused: {line}")
                return refused
            self.process_settings.apply(self.config.supervisor, new.supervisor)
            self.config = new
            self.settings.clear()
            self.settings.update(kept)
            result = self.tree.reload(self._tree_spec(new))
            forget_dropped(previous, kept, router=self.router, refs=self.refs, board=self.pair_board)
            if self.replay is not None and self.replay.pacer is not None:
                self.replay.pacer.set_expected(paced_keys(kept, self.links))
            logger.info(
                f"reload applied: added {result.added}, removed {result.removed}, "
                f"restarted {result.restarted}, unchanged {len(result.unchanged)}"
            )
            return result


def run(config: Config) -> int:
    """``nancemakina run``: the bot as a service until a signal, an escalation or the end of a replay."""
    return run_service(lambda: RootSupervisor(config))
