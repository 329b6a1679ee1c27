"""The root of the actor tree: shared children, one ``PairSupervisor`` per pair, reloads, orderly shutdown.

Shape (OTP): the root supervises the shared children (ledger → executor → market streams) one_for_one under
``shared_policy``; exhausting that budget stops the tree and makes the exit code 70 so systemd restarts the
process. Each pair has its own ``PairSupervisor`` actor, budget and thread: exhausting a pair's budget parks
that pair and alerts; nothing else notices. All mutations of the tree run in one private root actor, so the
public :class:`RootSupervisor` methods are safe from any thread (signal relay, control socket, config
watcher). Reads (:meth:`RootSupervisor.status`) come from the :class:`StatusBoard`, never the mailbox.

Reloads diff pairs by symbol and ``fingerprint`` and touch only what changed. Shared children are never
restarted by a reload: the caller sends them settings updates as messages if it needs to.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import pykka
from loguru import logger

from actors.base import Actor, ChildExited
from actors.sdnotify import SdNotifier, SignalRelay
from actors.supervision import (
    SHARED,
    ChildGroup,
    ChildSpec,
    GroupState,
    GroupStatus,
    Outcome,
    ParkPair,
    Ping,
    RestartChild,
    RestartPair,
    RestartPolicy,
    Scheduler,
    StatusBoard,
    await_started,
    stop_ref,
    timer_scheduler,
)

EX_SOFTWARE = 70
"""Exit code when the shared children exhaust their budget or fail to start: systemd restarts us."""

AlertSink = Callable[[str, "str | None", str], None]
"""``on_alert(kind, symbol, detail)``; called from actor threads, so it must only tell/enqueue."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemSpec:
    shared: tuple[ChildSpec, ...]
    """Started in this order, stopped in reverse: ledger → executor → market streams."""
    shared_policy: RestartPolicy
    pairs: Mapping[str, PairSpec] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadResult:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


class RootState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeStatus:
    state: RootState
    exit_code: int
    shared: GroupStatus | None
    pairs: tuple[GroupStatus, ...]


class SupervisorStartError(RuntimeError):
    """A shared child died while starting; the tree was stopped again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTree:
    """Root-internal: start the shared children, then the pairs; answers False if a shared child died."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadTree:
    """Root-internal: diff the pairs against ``spec`` and apply; answers a :class:`ReloadResult`."""

    spec: SystemSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class StopTree:
    """Root-internal: stop the pairs in parallel, then the shared children in reverse."""

    deadline: float
    """``time.monotonic()`` by which everything must have been asked to stop."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PairSupervisorExited:
    """Root-internal: a pair supervisor itself ended (a bug in it, or someone stopped it)."""

    symbol: str
    generation: int
    failed: bool
    error: str | None


@dataclass(slots=True)
class _PairSlot:
    spec: PairSpec
    ref: pykka.ActorRef[Any] | None = None
    generation: int = 0


def _pair_stop_s(spec: PairSpec) -> float:
    return sum(c.shutdown_timeout_s for c in spec.children) + 1.0


class _Root(Actor):
    """Serialises every change to the tree; only :class:`RootSupervisor` talks to it."""

    def __init__(
        self,
        *,
        spec: SystemSpec,
        board: StatusBoard,
        alert: AlertSink,
        escalate: Callable[[str], None],
        scheduler: Scheduler,
    ) -> None:
        super().__init__(name="root")
        self._board = board
        self._alert = alert
        self._escalate = escalate
        self._scheduler = scheduler
        self._tell = functools.partial(tell_quietly, self.actor_ref)
        self._shared = ChildGroup(
            name=SHARED, specs=spec.shared, policy=spec.shared_policy, tell=self._tell, scheduler=scheduler
        )
        self._specs = dict(spec.pairs)
        self._pairs: dict[str, _PairSlot] = {}
        self._stopping = False

    def on_start_tree(self, _message: StartTree) -> bool:
        ok = self._shared.start_all()
        self._board.publish(self._shared.snapshot())
        if ok:
            self._start_pairs(self._specs.values())
        return ok

    def on_reload_tree(self, message: ReloadTree) -> ReloadResult:
        new = dict(message.spec.pairs)
        if self._stopping:
            return ReloadResult(unchanged=tuple(self._pairs))
        old = {symbol: slot.spec for symbol, slot in self._pairs.items()}
        removed = tuple(s for s in old if s not in new)
        restarted = tuple(s for s in old if s in new and new[s].fingerprint != old[s].fingerprint)
        added = tuple(s for s in new if s not in old)
        self._stop_pairs((*removed, *restarted), deadline=None)
        for symbol in removed:
            del self._pairs[symbol]
            self._board.remove_pair(symbol)
        self._start_pairs(new[s] for s in (*restarted, *added))
        unchanged = tuple(s for s in old if s in new and s not in restarted)
        result = ReloadResult(added=added, removed=removed, restarted=restarted, unchanged=unchanged)
        self.log.info(f"reload: {result}")
        return result

    def on_stop_tree(self, message: StopTree) -> None:
        self._stopping = True
        self._stop_pairs(tuple(self._pairs), deadline=message.deadline)
        self._shared.stop_all(deadline=message.deadline)
        self._board.publish(self._shared.snapshot())

    def on_child_exited(self, message: ChildExited) -> None:
        outcome = self._shared.on_child_exited(message)
        self._board.publish(self._shared.snapshot())
        if outcome is Outcome.EXHAUSTED and not self._stopping:
            policy = self._shared.budget.policy
            detail = (
                f"shared children: more than {policy.intensity} restarts in {policy.period_s:g}s; "
                f"last error: {self._shared.last_error}"
            )
            self._alert("shared_exhausted", None, detail)
            self._escalate(detail)

    def on_restart_child(self, message: RestartChild) -> None:
        self._shared.on_restart_child(message)
        self._board.publish(self._shared.snapshot())

    def on_pair_supervisor_exited(self, message: PairSupervisorExited) -> None:
        slot = self._pairs.get(message.symbol)
        if slot is None or slot.ref is None or slot.generation != message.generation:
            return
        slot.ref = None
        detail = f"pair supervisor ended (failed={message.failed}): {message.error}"
        self._park_status(message.symbol, detail)
        self._alert("pair_parked", message.symbol, detail)

    def on_restart_pair(self, message: RestartPair) -> bool:
        slot = self._pairs.get(message.symbol)
        if slot is None or self._stopping:
            return False
        if slot.ref is not None and slot.ref.is_alive():
            self._tell_pair(slot.ref, message)
        else:
            self._start_pairs([slot.spec])
        return True

    def on_park_pair(self, message: ParkPair) -> bool:
        slot = self._pairs.get(message.symbol)
        if slot is None or slot.ref is None:
            return False
        self._tell_pair(slot.ref, message)
        return True

    def on_ping(self, _message: Ping) -> bool:
        return self._shared.all_alive()

    def _tell_pair(self, ref: pykka.ActorRef[Any], message: object) -> None:
        tell_quietly(ref, message)

    def _start_pairs(self, specs: Iterable[PairSpec]) -> None:
        """Start pair supervisors side by side, then wait for each (its children start in its ``on_start``)."""
        started: list[tuple[PairSpec, pykka.ActorRef[Any]]] = []
        for spec in specs:
            slot = self._pairs.setdefault(spec.symbol, _PairSlot(spec))
            slot.spec, slot.generation = spec, slot.generation + 1
            monitor = functools.partial(self._pair_monitor, spec.symbol, slot.generation)
            try:
                slot.ref = PairSupervisor.start(
                    spec=spec,
                    board=self._board,
                    on_parked=functools.partial(self._alert, "pair_parked"),
                    monitor=monitor,
                    generation=slot.generation,
                    scheduler=self._scheduler,
                )
            except Exception as exc:
                self.log.exception(f"{spec.symbol}: cannot start its supervisor")
                slot.ref = None
                self._park_status(spec.symbol, f"{type(exc).__name__}: {exc}")
                self._alert("pair_parked", spec.symbol, f"cannot start: {exc}")
                continue
            started.append((spec, slot.ref))
        for spec, ref in started:
            await_started(ref, sum(c.start_timeout_s for c in spec.children) + 1.0, f"pair:{spec.symbol}")

    def _pair_monitor(self, symbol: str, generation: int, exited: ChildExited) -> None:
        self._tell(
            PairSupervisorExited(
                symbol=symbol, generation=generation, failed=exited.failed, error=exited.error
            )
        )

    def _stop_pairs(self, symbols: tuple[str, ...], deadline: float | None) -> None:
        """Ask every listed pair supervisor to stop at once, then wait for each within its bound."""
        pending = []
        for symbol in symbols:
            slot = self._pairs[symbol]
            ref, slot.ref = slot.ref, None
            if ref is not None:
                pending.append((symbol, ref.stop(block=False), time.monotonic() + _pair_stop_s(slot.spec)))
        for symbol, future, own_deadline in pending:
            until = own_deadline if deadline is None else min(own_deadline, deadline)
            try:
                future.get(timeout=max(0.0, until - time.monotonic()))
            except pykka.Timeout:
                self.log.warning(f"pair:{symbol} did not stop in time; moving on")

    def _park_status(self, symbol: str, detail: str) -> None:
        current = self._board.pairs.get(symbol)
        base = current or GroupStatus(
            name=symbol,
            state=GroupState.PARKED,
            restarts_in_window=0,
            total_restarts=0,
            children=(),
            last_error=None,
        )
        self._board.publish(replace(base, state=GroupState.PARKED, last_error=detail))


class RootSupervisor:
    """Thread-safe handle on the tree; every mutation is serialised through the private root actor."""

    def __init__(
        self,
        spec: SystemSpec,
        *,
        on_alert: AlertSink | None = None,
        shutdown_timeout_s: float = 10.0,
        notifier: SdNotifier | None = None,
        board: StatusBoard | None = None,
        scheduler: Scheduler = timer_scheduler,
    ) -> None:
        self.board = board or StatusBoard()
        self.before_shutdown: list[Callable[[], None]] = []
        """Run first by :meth:`shutdown`, in order (the runner registers "stop accepting entries")."""
        self.shutdown_timeout_s = shutdown_timeout_s
        self._on_alert = on_alert
        self._notifier = notifier
        self._lock = threading.Lock()
        self._state = RootState.STARTING
        self._exit_code = 0
        self._shutdown_started = False
        self._done = threading.Event()
        self._root = _Root.start(
            spec=spec, board=self.board, alert=self._alert, escalate=self._escalate, scheduler=scheduler
        )

    @property
    def exit_code(self) -> int:
        return self._exit_code

    @property
    def state(self) -> RootState:
        return self._state

    def start(self, timeout_s: float | None = None) -> None:
        """Start the shared children in order, then every pair; return once all have run ``on_start``.

        Raises :class:`SupervisorStartError` (after stopping what started) if a shared child died while
        starting: like OTP, a supervisor whose children cannot start does not start.
        """
        if not self._root.ask(StartTree(), timeout=timeout_s):
            self._escalate("a shared child failed to start", background=False)
            raise SupervisorStartError("a shared child failed to start; see the log")
        with self._lock:
            if self._state is RootState.STARTING:
                self._state = RootState.RUNNING

    def reload(self, spec: SystemSpec, timeout_s: float | None = None) -> ReloadResult:
        """Apply ``spec.pairs``: start added pairs, stop removed ones, restart those whose fingerprint changed.

        ``spec.shared`` is ignored: shared children keep running (send them settings as messages).
        """
        result: ReloadResult = self._root.ask(ReloadTree(spec=spec), timeout=timeout_s)
        return result

    def restart_pair(self, symbol: str, timeout_s: float = 5.0) -> bool:
        """Un-park (or restart) one pair with a fresh budget; False if the symbol is unknown."""
        ok: bool = self._root.ask(RestartPair(symbol=symbol), timeout=timeout_s)
        return ok

    def park_pair(self, symbol: str, reason: str = "parked by operator", timeout_s: float = 5.0) -> bool:
        """Stop one pair's children and restart nothing until :meth:`restart_pair`; False if unknown."""
        ok: bool = self._root.ask(ParkPair(symbol=symbol, reason=reason), timeout=timeout_s)
        return ok

    def healthy(self, timeout_s: float = 1.0) -> bool:
        """Watchdog liveness: the root answers within ``timeout_s`` and every shared child is alive."""
        try:
            alive: bool = self._root.ask(Ping(), timeout=timeout_s)
        except (pykka.Timeout, pykka.ActorDeadError):
            return False
        return alive

    def status(self) -> TreeStatus:
        """Immutable snapshot of the whole tree, read without touching any mailbox."""
        pairs = self.board.pairs
        return TreeStatus(
            state=self._state,
            exit_code=self._exit_code,
            shared=self.board.shared,
            pairs=tuple(pairs[s] for s in sorted(pairs)),
        )

    def shutdown(self, timeout_s: float | None = None) -> int:
        """Orderly stop, bounded by ``timeout_s``: hooks, pairs in parallel, shared children in reverse.

        Idempotent: a second caller waits (bounded) for the first shutdown and gets the same exit code.
        """
        timeout = self.shutdown_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        with self._lock:
            first, self._shutdown_started = not self._shutdown_started, True
            if first:
                self._state = RootState.STOPPING
        if not first:
            self._done.wait(timeout)
            return self._exit_code
        logger.info(f"shutting down (bounded by {timeout:g}s)")
        if self._notifier is not None:
            self._notifier.stopping()
        for hook in self.before_shutdown:
            try:
                hook()
            except Exception:
                logger.exception("before_shutdown hook raised")
        try:
            self._root.ask(StopTree(deadline=deadline), timeout=max(0.0, deadline - time.monotonic()))
        except pykka.Timeout:
            logger.error("the tree did not stop in time; leaving the rest to the service manager")
        except pykka.ActorDeadError:
            logger.error("the root actor is gone; nothing left to stop through it")
        stop_ref(self._root, max(0.0, deadline - time.monotonic()), "root")
        with self._lock:
            self._state = RootState.STOPPED
        self._done.set()
        logger.info(f"tree stopped, exit code {self._exit_code}")
        return self._exit_code

    def wait(self, timeout_s: float | None = None) -> int:
        """Block until the tree has stopped (or ``timeout_s`` passed); return the exit code."""
        self._done.wait(timeout_s)
        return self._exit_code

    def _alert(self, kind: str, symbol: str | None, detail: str) -> None:
        if self._on_alert is None:
            return
        try:
            self._on_alert(kind, symbol, detail)
        except Exception:
            logger.exception(f"on_alert raised for {kind}")

    def _escalate(self, reason: str, *, background: bool = True) -> None:
        """The shared children cannot be kept up: stop everything and exit non-zero."""
        logger.critical(f"escalating: {reason}")
        self._exit_code = EX_SOFTWARE
        if background:
            # Called from the root actor's thread, which StopTree must be queued behind: never wait here.
            threading.Thread(target=self.shutdown, name="escalation", daemon=True).start()
        else:
            self.shutdown()


def install_signal_handlers(
    root: RootSupervisor,
    on_reload: Callable[[], None],
    *,
    notifier: SdNotifier | None = None,
    shutdown_timeout_s: float | None = None,
) -> SignalRelay:
    """SIGTERM/SIGINT → bounded ``root.shutdown``; SIGHUP → ``on_reload()`` framed by RELOADING=1/READY=1.

    Handlers only enqueue; the work runs on the relay's thread. Call from the main thread; ``restore()``
    on the result puts the previous handlers back.
    """

    def reload() -> None:
        if notifier is not None:
            notifier.reloading()
        try:
            on_reload()
        finally:
            if notifier is not None:
                notifier.ready()

    def stop() -> None:
        root.shutdown(shutdown_timeout_s)

    relay = SignalRelay({signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: reload})
    relay.install()
    return relay
