"""The root of the actor tree: shared children, one ``PairSupervisor`` per pair, reloads, orderly shutdown.

Shape (OTP)::

    root ─┬─ Supervisor["shared"]   ledger → executor → market streams, one_for_one, ``shared_policy``
          ├─ PairSupervisor[BTCUSDT] one child per timeframe, one_for_one, the pair's own policy
          └─ ...

The shared supervisor exhausting its budget (or crashing) escalates: the tree stops in order and the exit
code becomes 70 so systemd restarts the process. A pair exhausting its budget parks itself and alerts; no
other pair notices (each supervisor is its own actor thread). Every mutation of the tree runs in one private
root actor, so :class:`RootSupervisor` is safe to call from any thread (signal relay, control socket,
config watcher); :meth:`RootSupervisor.status` reads the :class:`StatusBoard`, never a mailbox.

A reload diffs pairs by symbol and ``fingerprint`` and touches only what changed. Shared children are never
restarted by a reload: the caller sends them settings updates as messages if it needs to.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pykka
from loguru import logger

from ..ops.systemd import SdNotifier, SignalRelay, service_signals
from .actor import Actor
from .supervision import (
    SHARED,
    ChildSpec,
    GroupState,
    GroupStatus,
    ParkPair,
    Ping,
    RestartPair,
    RestartPolicy,
    Scheduler,
    StatusBoard,
    Supervisor,
    await_started,
    stop_ref,
    tell_quietly,
    timer_scheduler,
)

EX_SOFTWARE = 70
"""Exit code when the shared children cannot be kept up: systemd restarts the process."""

AlertSink = Callable[[str, "str | None", str], None]
"""``on_alert(kind, symbol, detail)``; called from actor threads, so it must only tell or enqueue."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PairSpec:
    """One pair's children (one per timeframe, in start order) and its own restart budget."""

    symbol: str
    fingerprint: Hashable
    """The pair's effective settings, and anything else whose change should restart the pair."""
    children: tuple[ChildSpec, ...]
    policy: RestartPolicy


class PairSupervisor(Supervisor):
    """A pair's supervisor: parks and calls ``on_parked(symbol, reason)`` instead of escalating.

    ``kwargs`` (``scheduler``, ``monitor``, ``generation``) pass through to :class:`Supervisor`.
    """

    def __init__(
        self, *, spec: PairSpec, board: StatusBoard, on_parked: Callable[[str, str], None], **kwargs: Any
    ) -> None:
        super().__init__(
            name=spec.symbol,
            children=spec.children,
            policy=spec.policy,
            board=board,
            on_exhausted=on_parked,
            **kwargs,
        )


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
    """A shared child was dead right after start; the tree was stopped again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTree:
    """Root-internal: start the shared supervisor, then the pairs; answers False if a shared child died."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadTree:
    """Root-internal: diff the pairs against ``spec`` and apply; answers a :class:`ReloadResult`."""

    spec: SystemSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class StopTree:
    """Root-internal: stop the pairs in parallel, then the shared children in reverse."""

    deadline: float
    """``time.monotonic()`` by which the root stops waiting for anything."""


def _stop_budget_s(children: tuple[ChildSpec, ...]) -> float:
    return sum(c.shutdown_timeout_s for c in children) + 1.0


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
        self._spec = spec
        self._board = board
        self._alert = alert
        self._escalate = escalate
        self._scheduler = scheduler
        self._shared: pykka.ActorRef[Any] | None = None
        self._pairs: dict[str, tuple[PairSpec, pykka.ActorRef[Any] | None]] = {}
        self._incarnations = itertools.count(1)
        self._stopping = False

    def on_start_tree(self, _message: StartTree) -> bool:
        if self._shared is not None:
            return self.on_ping(Ping())
        shared = self._spec.shared
        self._shared = Supervisor.start(
            name=SHARED,
            children=shared,
            policy=self._spec.shared_policy,
            board=self._board,
            on_exhausted=self._shared_exhausted,
            park_on_exhaustion=False,
            scheduler=self._scheduler,
        )
        await_started(self._shared, sum(c.start_timeout_s for c in shared) + 1.0, SHARED)
        if not self.on_ping(Ping()):
            return False
        self._start_pairs(self._spec.pairs.values())
        return True

    def on_reload_tree(self, message: ReloadTree) -> ReloadResult:
        new, old = message.spec.pairs, {symbol: spec for symbol, (spec, _) in self._pairs.items()}
        if self._stopping:
            return ReloadResult(unchanged=tuple(old))
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
        self.log.info(f"reload applied: {result}")
        return result

    def on_stop_tree(self, message: StopTree) -> None:
        self._stopping = True
        # Pairs may not starve the shared children (the ledger flushes last) of their own stop time.
        reserve = min(_stop_budget_s(self._spec.shared), (message.deadline - time.monotonic()) / 2)
        self._stop_pairs(tuple(self._pairs), deadline=message.deadline - reserve)
        if self._shared is not None:
            stop_ref(self._shared, message.deadline - time.monotonic(), SHARED)

    def on_restart_pair(self, message: RestartPair) -> bool:
        if message.symbol not in self._pairs or self._stopping:
            return False
        spec, ref = self._pairs[message.symbol]
        if ref is not None and ref.is_alive():
            tell_quietly(ref, message)
        else:
            self._start_pairs([spec])
        return True

    def on_park_pair(self, message: ParkPair) -> bool:
        ref = self._pairs.get(message.symbol, (None, None))[1]
        if ref is None or not ref.is_alive():
            return False
        tell_quietly(ref, message)
        return True

    def on_ping(self, _message: Ping) -> bool:
        """All shared children alive; asks the shared supervisor, which never asks back (no cycle)."""
        try:
            return self._shared is not None and bool(self._shared.ask(Ping(), timeout=0.5))
        except (pykka.Timeout, pykka.ActorDeadError):
            return False

    def _shared_exhausted(self, _name: str, reason: str) -> None:
        # Runs in the shared supervisor's thread (or as it crashes): alert, then stop from another thread.
        if not self._stopping:
            self._alert("shared_exhausted", None, reason)
            self._escalate(reason)

    def _start_pairs(self, specs: Iterable[PairSpec]) -> None:
        """Start pair supervisors side by side, then wait for each (its children start in its on_start)."""
        started = []
        for spec in specs:
            try:
                ref = PairSupervisor.start(
                    spec=spec,
                    board=self._board,
                    on_parked=functools.partial(self._alert, "pair_parked"),
                    scheduler=self._scheduler,
                    generation=next(self._incarnations),
                )
            except Exception as exc:
                self.log.exception(f"{spec.symbol}: cannot start its supervisor")
                self._pairs[spec.symbol] = (spec, None)
                self._board.publish(
                    GroupStatus(name=spec.symbol, state=GroupState.PARKED, last_error=repr(exc))
                )
                self._alert("pair_parked", spec.symbol, f"cannot start: {exc!r}")
                continue
            self._pairs[spec.symbol] = (spec, ref)
            started.append((spec, ref))
        for spec, ref in started:
            await_started(ref, sum(c.start_timeout_s for c in spec.children) + 1.0, spec.symbol)

    def _stop_pairs(self, symbols: tuple[str, ...], deadline: float | None) -> None:
        """Ask every listed pair supervisor to stop at once, then wait for each within its bound."""
        pending = []
        for symbol in symbols:
            spec, ref = self._pairs[symbol]
            self._pairs[symbol] = (spec, None)
            if ref is not None:
                own = time.monotonic() + _stop_budget_s(spec.children)
                pending.append(
                    (symbol, ref.stop(block=False), own if deadline is None else min(own, deadline))
                )
        for symbol, future, until in pending:
            try:
                future.get(timeout=max(0.0, until - time.monotonic()))
            except pykka.Timeout:
                self.log.warning(f"{symbol}: pair supervisor did not stop in time; moving on")


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
        self._done = threading.Event()
        self._root = _Root.start(
            spec=spec, board=self.board, alert=self._alert, escalate=self._escalate, scheduler=scheduler
        )

    @property
    def exit_code(self) -> int:
        return self._exit_code

    def start(self, timeout_s: float | None = None) -> None:
        """Start the shared children in order, then every pair; return once all ran ``on_start``.

        Like OTP, a tree whose shared children cannot start does not start: if one is dead right after
        starting, everything is stopped, the exit code becomes 70 and :class:`SupervisorStartError` raised.
        """
        if not self._root.ask(StartTree(), timeout=timeout_s):
            self._exit_code = EX_SOFTWARE
            self.shutdown()
            raise SupervisorStartError("a shared child failed to start; see the log")
        with self._lock:
            if self._state is RootState.STARTING:
                self._state = RootState.RUNNING

    def reload(self, spec: SystemSpec, timeout_s: float | None = None) -> ReloadResult:
        """Start added pairs, stop removed ones, restart those whose fingerprint changed (not ``shared``)."""
        result: ReloadResult = self._root.ask(ReloadTree(spec=spec), block=True, timeout=timeout_s)
        return result

    def restart_pair(self, symbol: str, timeout_s: float = 5.0) -> bool:
        """Un-park (or restart) one pair with a fresh budget; False if unknown or the tree is stopping.

        Raises ``pykka.Timeout`` if the root is still busy (e.g. applying a reload) after ``timeout_s``.
        """
        return self._ask(RestartPair(symbol=symbol), timeout_s)

    def park_pair(self, symbol: str, reason: str = "parked by operator", timeout_s: float = 5.0) -> bool:
        """Stop one pair's children; nothing restarts until :meth:`restart_pair`. False if not running."""
        return self._ask(ParkPair(symbol=symbol, reason=reason), timeout_s)

    def healthy(self, timeout_s: float = 1.0) -> bool:
        """Watchdog liveness: the root answers within ``timeout_s`` and every shared child is alive."""
        try:
            return self._ask(Ping(), timeout_s)
        except pykka.Timeout:
            return False

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
        """Orderly stop bounded by ``timeout_s``: hooks, pairs in parallel, then shared children in reverse.

        Idempotent: later callers wait (bounded) for the first shutdown and get the same exit code.
        """
        timeout = self.shutdown_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        with self._lock:
            first = self._state not in {RootState.STOPPING, RootState.STOPPED}
            self._state = RootState.STOPPING if first else self._state
        if not first:
            self._done.wait(timeout)
            return self._exit_code
        logger.info(f"shutting down within {timeout:g}s")
        if self._notifier is not None:
            self._notifier.stopping()
        for hook in self.before_shutdown:
            try:
                hook()
            except Exception:
                logger.exception("before_shutdown hook raised")
        try:
            self._root.ask(StopTree(deadline=deadline), timeout=max(0.0, deadline - time.monotonic()))
        except (pykka.Timeout, pykka.ActorDeadError) as exc:
            logger.error(f"the tree did not stop in time ({exc!r}); leaving the rest to the service manager")
        stop_ref(self._root, deadline - time.monotonic(), "root")
        with self._lock:
            self._state = RootState.STOPPED
        self._done.set()
        logger.info(f"tree stopped, exit code {self._exit_code}")
        return self._exit_code

    def wait(self, timeout_s: float | None = None) -> int:
        """Block until the tree has stopped (or ``timeout_s`` passed); return the exit code."""
        self._done.wait(timeout_s)
        return self._exit_code

    def _ask(self, message: object, timeout_s: float) -> bool:
        try:
            return bool(self._root.ask(message, timeout=timeout_s))
        except pykka.ActorDeadError:
            return False

    def _alert(self, kind: str, symbol: str | None, detail: str) -> None:
        if self._on_alert is None:
            return
        try:
            self._on_alert(kind, symbol, detail)
        except Exception:
            logger.exception(f"on_alert raised for {kind}")

    def _escalate(self, reason: str) -> None:
        """The shared children cannot be kept up: exit code 70 and an orderly stop of everything."""
        logger.critical(f"escalating to a full stop: {reason}")
        self._exit_code = EX_SOFTWARE
        # Called from actor threads that StopTree may have to wait for: never shut down inline.
        threading.Thread(target=self.shutdown, name="escalation", daemon=True).start()


def install_signal_handlers(
    root: RootSupervisor,
    on_reload: Callable[[], None],
    *,
    notifier: SdNotifier | None = None,
    shutdown_timeout_s: float | None = None,
) -> SignalRelay:
    """SIGTERM/SIGINT → bounded ``root.shutdown``; SIGHUP → ``on_reload()`` framed by RELOADING=1/READY=1.

    The handlers only enqueue; the work runs on the relay's thread. Call from the main thread; ``restore()``
    on the result puts the previous handlers back.
    """
    return service_signals(lambda: root.shutdown(shutdown_timeout_s), on_reload, notifier)
