"""The running bot: builds the supervision tree from the config, keeps it up, applies reloads.

Start order (stop is the reverse): local exchange (replay only) → venue gateways and exchange filters →
user-data streams → ``RootSupervisor``: ledger (reconciles before anything trades) → market streams → one
``PairSupervisor`` per enabled pair, each with the pair's ``OrderExecutor`` and one ``PairTimeframe`` per
timeframe (so one symbol's slow entry never delays another's; ``EntrySlots`` keeps ``max_concurrent``).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from .actors.config import Config, Mode, PairSettings, SupervisorSettings, load_config
from .actors.domain.model import Decision, Kline
from .actors.domain.strategy import StrategyParams
from .actors.messages import Alert, EntryRejected, OrderStateChanged, StopAcceptingEntries, UpdateTerms
from .actors.ops.control_protocol import secret_redactor
from .actors.ops.control_server import ControlServer
from .actors.ops.cpu_affinity import CpuPinning
from .actors.ops.inspection import DaemonControl
from .actors.ops.metrics_feed import DaemonMetrics
from .actors.ops.systemd import SdNotifier, Watchdog, watchdog_interval_s
from .actors.runtime.supervision import ChildSpec, Restart, RestartPolicy
from .actors.runtime.tree import PairSpec, ReloadResult, RootSupervisor, SystemSpec
from .actors.sim.launch import trading_pairs
from .actors.tree.pair_timeframe import PairStatus, PairTimeframe
from .actors.tree.wiring import Parts, build_parts

if TYPE_CHECKING:
    from pathlib import Path

    import pykka

    from .actors.runtime.actor import Monitor


@dataclass(slots=True)
class PairBoard:
    """Latest ``PairStatus`` per (symbol, timeframe): written under a lock, read lock-free by the shell."""

    statuses: dict[tuple[str, str], PairStatus] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, status: PairStatus) -> None:
        """A known key's value is replaced in place (readers iterating see the old or the new status, and the
        size does not change); a new key swaps in a copy, so no reader's iteration ever sees a resize."""
        key = (status.symbol, status.timeframe)
        with self.lock:
            current = self.statuses
            if key in current:
                current[key] = status
            else:
                self.statuses = {**current, key: status}

    def drop(self, symbol: str) -> None:
        with self.lock:
            self.statuses = {k: v for k, v in self.statuses.items() if k[0] != symbol}

    def warm(self, keys: set[tuple[str, str]]) -> bool:
        current = self.statuses
        return all(k in current and current[k].warm for k in keys)


class Daemon:
    """Owns every long-lived part of one bot process."""

    def __init__(self, config: Config, *, notifier: SdNotifier | None = None) -> None:
        self.config = config
        self.notifier = notifier or SdNotifier.from_env()
        self.cpu = CpuPinning()
        """``supervisor.cpu_affinity`` for every thread; the CPUs allowed are the ones at construction."""
        self.pairs = PairBoard()
        self.parts: Parts = build_parts(config, pair_status=self.pairs.publish)
        self.root = RootSupervisor(
            self._system_spec(config),
            on_alert=self._on_alert,
            shutdown_timeout_s=config.supervisor.shutdown_timeout_s,
            notifier=self.notifier,
        )
        self.root.before_shutdown.append(self._stop_entries)
        self.root.before_shutdown.append(self.parts.stop_streams)
        self._watchdog: Watchdog | None = None
        self.telemetry = DaemonMetrics(self)
        m = self.telemetry.metrics
        self.parts.executor_events = self._order_event
        self.parts.on_alert = lambda a: m.alert(a.kind, a.symbol)
        self.control = DaemonControl(self)
        self.control_server = ControlServer(
            config.control_socket_path(), self.control, redact=secret_redactor(self.parts.secrets)
        )
        self._reload_lock = threading.Lock()
        self._stopping = threading.Event()
        self.replay_completed = False
        self.started_at = time.time()

    # ---- tree specification ----------------------------------------------------------------------

    def _system_spec(self, config: Config) -> SystemSpec:
        pair_policy = RestartPolicy.for_pairs(config.supervisor)
        pairs = {
            symbol: PairSpec(
                symbol=symbol,
                fingerprint=settings,
                children=(
                    self.parts.executor_child(settings),
                    *(self._pair_child(settings, tf) for tf in settings.indicator_timeframes),
                ),
                policy=pair_policy,
            )
            for symbol, settings in trading_pairs(config).items()
        }
        return SystemSpec(
            shared=self.parts.shared_children(),
            shared_policy=RestartPolicy.for_shared(config.supervisor),
            pairs=pairs,
        )

    def _pair_child(self, settings: PairSettings, timeframe: str) -> ChildSpec:
        parts = self.parts
        trading = timeframe == settings.signal_timeframe

        def start(monitor: Monitor, generation: int) -> pykka.ActorRef[Any]:
            ref = PairTimeframe.start(
                symbol=settings.symbol,
                timeframe=timeframe,
                contract=settings.contract_type,
                params=StrategyParams.from_settings(settings),
                trading=trading,
                klines=parts.pair_gateway,
                portfolio=parts.portfolio.get,
                executor=parts.refs.executor_teller(settings.symbol),
                ledger=parts.refs.ledger_teller(),
                monitor=monitor,
                generation=generation,
                on_processed=parts.pacer.processed if parts.pacer is not None and trading else None,
                on_status=self.pairs.publish,
                observe=self._observe,
                priority=parts.priority,
            )
            parts.router.register(settings.symbol, timeframe, ref)
            parts.subscribe(settings.contract_type, settings.symbol, timeframe)
            return ref

        return ChildSpec(
            id=f"{settings.symbol}:{timeframe}",
            start=start,
            restart=Restart.PERMANENT,
            shutdown_timeout_s=5.0,
            start_timeout_s=60.0,
            await_start=False,  # a pair's timeframes warm up side by side (after its executor)
        )

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self, *, ready_timeout_s: float = 120.0) -> None:
        """Start the tree, wait until every pair is warm, tell systemd READY=1, then let a replay run."""
        sys.setswitchinterval(self.config.supervisor.gil_switch_interval_ms / 1000)
        self.cpu.apply(self.config.supervisor.cpu_affinity)  # threads started from here on inherit it
        self.control_server.start()  # first: a second daemon on the same state fails here, before trading
        self.telemetry.start()
        self.parts.start_streams()
        self.root.start()
        expected = {
            (s.symbol, tf) for s in trading_pairs(self.config).values() for tf in s.indicator_timeframes
        }
        deadline = time.monotonic() + ready_timeout_s
        while not self.pairs.warm(expected) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.pairs.warm(expected):
            logger.warning("not every pair warmed up in time; the slow ones keep trying under supervision")
        self.notifier.ready(f"trading {len(trading_pairs(self.config))} pairs ({self.config.api.mode})")
        interval = watchdog_interval_s()
        if interval is not None:
            self._watchdog = Watchdog(self.notifier, self.root.healthy, interval)
            self._watchdog.start()
        self.parts.begin_replay()
        if self.config.supervisor.watch_config and self.config.config_path is not None:
            threading.Thread(target=self._watch_config, name="config-watch", daemon=True).start()
        logger.info(
            f"nancemakina running: mode {self.config.api.mode}, pairs {sorted(trading_pairs(self.config))}"
        )

    def wait(self) -> int:
        """Block until the tree stops (signal, escalation, or the end of a replay); returns the exit code."""
        if self.config.api.mode is Mode.REPLAY and self.config.replay.exit_at_end:
            last_report = time.monotonic()
            while not self.parts.replay_finished(timeout_s=0.5):
                if self.root.wait(0) != 0 or self.root.status().state.value == "stopped":
                    break
                if time.monotonic() - last_report >= 10.0:
                    last_report = time.monotonic()
                    self.parts.log_replay_progress()
            else:
                self.replay_completed = True
                logger.info("replay finished: stopping")
            return self.shutdown()
        return self.root.wait()

    def shutdown(self) -> int:
        """Orderly stop (idempotent); returns the exit code."""
        self._stopping.set()
        code = self.root.shutdown()
        if self._watchdog is not None:
            self._watchdog.stop()
        self.parts.close()
        self.telemetry.stop()
        self.control_server.stop()
        return code

    def _watch_config(self, interval_s: float = 2.0) -> None:
        """Reload when the config file content changes (editors replace files: compare bytes, not inodes)."""
        path = self.config.config_path
        if path is None:
            return
        seen = _read(path)
        while not self._stopping.wait(interval_s):
            current = _read(path)
            if current is not None and current != seen:
                seen = current
                logger.info(f"{path} changed: reloading")
                self.notifier.reloading()
                self.reload()
                self.notifier.ready()

    def _stop_entries(self) -> None:
        self.parts.stopping.set()
        self.parts.refs.tell_executors(StopAcceptingEntries())

    def _order_event(self, event: object) -> None:
        if isinstance(event, (OrderStateChanged, EntryRejected)):
            self.telemetry.metrics.order_event(event)

    def _observe(self, kline: Kline, seconds: float, decision: Decision | None) -> None:
        metrics = self.telemetry.metrics
        metrics.kline_processed(kline.symbol, kline.timeframe, seconds)
        if decision is not None:
            metrics.decision(decision)

    def _on_alert(self, kind: str, symbol: str | None, detail: str) -> None:
        logger.warning(f"ALERT {kind} {symbol or ''}: {detail}")
        self.telemetry.metrics.alert(kind, symbol)
        self.parts.refs.tell_ledger(Alert(kind=kind, symbol=symbol, detail=detail))

    # ---- reload ----------------------------------------------------------------------------------

    def reload(self) -> ReloadResult | list[str]:
        """Re-read the config file; apply it if valid (only changed pairs restart), else keep the old one."""
        from .actors.config import ConfigError  # noqa: PLC0415 - only reloads need it

        with self._reload_lock:
            try:
                new = load_config(self.config.config_path) if self.config.config_path else self.config
            except ConfigError as exc:
                for line in exc.errors:
                    logger.error(f"reload refused, keeping the running config: {line}")
                return list(exc.errors)
            refused = _unreloadable(self.config, new)
            cpus = self.cpu.check(new.supervisor.cpu_affinity)
            if cpus is not None:
                refused.append(cpus)
            if refused:
                for line in refused:
                    logger.error(f"reload refused: {line}")
                return refused
            kept = trading_pairs(new)
            previous = trading_pairs(self.config)
            removed = {s: old for s, old in trading_pairs(self.config).items() if s not in kept}
            self._apply_process_settings(self.config.supervisor, new.supervisor)
            self.parts.update_terms(new)
            self.config = new
            result = self.root.reload(self._system_spec(new))
            for symbol, old in removed.items():  # old settings: the new ones no longer list the pair
                self.parts.unsubscribe(old)
                self.pairs.drop(symbol)
                self.parts.refs.executors.pop(symbol, None)
            for symbol, old in previous.items():
                fewer = tuple(
                    tf
                    for tf in old.indicator_timeframes
                    if symbol in kept and tf not in kept[symbol].indicator_timeframes
                )
                if fewer:  # a restarted pair that dropped timeframes: their routes and streams go too
                    self.parts.unsubscribe(old, fewer)
            self.parts.refs.tell_executors(UpdateTerms(terms=self.parts.terms(new)))
            if self.parts.pacer is not None:
                self.parts.pacer.set_expected(
                    (s.symbol, s.signal_timeframe) for s in trading_pairs(new).values()
                )
            logger.info(
                f"reload applied: added {result.added}, removed {result.removed}, "
                f"restarted {result.restarted}, unchanged {len(result.unchanged)}"
            )
            return result

    def _apply_process_settings(self, old: SupervisorSettings, new: SupervisorSettings) -> None:
        """The process-wide settings a reload applies in place (no pair restarts for these)."""
        names = ("gil_switch_interval_ms", "cpu_affinity", "entry_priority_hold_ms", "candle_handoff_ms")
        changed = [name for name in names if getattr(new, name) != getattr(old, name)]
        if not changed:
            return
        if "gil_switch_interval_ms" in changed:
            sys.setswitchinterval(new.gil_switch_interval_ms / 1000)
        if "cpu_affinity" in changed:
            self.cpu.apply(new.cpu_affinity)
        if "entry_priority_hold_ms" in changed:
            self.parts.priority.set_hold(new.entry_priority_hold_ms)
        if "candle_handoff_ms" in changed:
            self.parts.set_candle_handoff(new.candle_handoff_ms)
        logger.info(f"reload: applied {', '.join(f'supervisor.{n}' for n in changed)} in place")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _unreloadable(old: Config, new: Config) -> list[str]:
    """Changes a reload cannot apply safely (they need a process restart)."""
    problems = []
    if old.api.mode is not new.api.mode:
        problems.append(f"api.mode changed {old.api.mode} → {new.api.mode}: restart the service")
    if old.state_path() != new.state_path():
        problems.append("state_dir changed: restart the service")
    contracts_old = {s.contract_type for s in trading_pairs(old).values()}
    contracts_new = {s.contract_type for s in trading_pairs(new).values()}
    if not contracts_new <= contracts_old:
        problems.append("a new market type (USDT_M/COIN_M) needs its streams started: restart the service")
    return problems


def main(argv: list[str] | None = None) -> int:
    """The ``nancemakina`` console script."""
    from .actors.cli.main import main as cli_main  # noqa: PLC0415

    return cli_main(argv)
