"""``SupervisionTree``: the root of a two-level tree — one shared group, then one group per key — generic.

Shape (OTP)::

    root ─┬─ Supervisor["shared"]    started first, stopped last; its exhaustion stops the whole tree
          ├─ GroupSupervisor[key]    one per group (a trading pair, in nancemakina), its own budget
          └─ ...

The shared supervisor exhausting its budget (or crashing) escalates: the tree stops in order and the exit
code becomes 70 so a service manager restarts the process. A group exhausting its budget parks itself and
reports ``on_parked``; no other group notices (each supervisor is its own actor thread). Every mutation of
the tree runs in one private root actor, so :class:`SupervisionTree` is safe to call from any thread (signal
relay, control socket, config watcher); :meth:`SupervisionTree.status` reads the ``StatusBoard``, never a
mailbox. A reload diffs groups by name and ``fingerprint`` and touches only what changed; shared children are
never restarted by a reload. Nothing here knows what the children are.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pykka
from loguru import logger

from .actor import Actor
from .child_spec import ChildSpec, RestartPolicy, Scheduler, timer_scheduler
from .protocol import ParkGroup, Ping, RestartGroup
from .status import SHARED, GroupState, GroupStatus, StatusBoard
from .supervisor import Supervisor, await_started, stop_ref, tell_quietly

Parked = Callable[[str, str], None]
"""``on_parked(group, reason)``; called from actor threads, so it must only tell or enqueue."""
Escalated = Callable[[str], None]
"""``on_escalated(reason)``: the shared group gave up and the tree is stopping (exit code 70)."""


EX_SOFTWARE = 70
"""Exit code when the shared children cannot be kept up: systemd restarts the process."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSpec:
    """One group's children (in start order) and its own restart budget."""

    name: str
    fingerprint: Hashable
    """Whatever, when it changes, should restart the group on a reload (a pair's effective settings)."""
    children: tuple[ChildSpec, ...]
    policy: RestartPolicy


class GroupSupervisor(Supervisor):
    """A group's supervisor: over budget it parks and calls ``on_parked(name, reason)``; it never escalates.

    ``kwargs`` (``scheduler``, ``monitor``, ``generation``) pass through to :class:`Supervisor`.
    """

    def __init__(self, *, spec: GroupSpec, board: StatusBoard, on_parked: Parked, **kwargs: Any) -> None:
        super().__init__(
            name=spec.name,
            children=spec.children,
            policy=spec.policy,
            board=board,
            on_exhausted=on_parked,
            **kwargs,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeSpec:
    shared: tuple[ChildSpec, ...]
    """Started in this order, stopped in reverse."""
    shared_policy: RestartPolicy
    groups: Mapping[str, GroupSpec] = field(default_factory=dict)


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
    groups: tuple[GroupStatus, ...]


class SupervisorStartError(RuntimeError):
    """A shared child was dead right after start; the tree was stopped again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTree:
    """Root-internal: start the shared supervisor, then the groups; answers False if a shared child died."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadTree:
    """Root-internal: diff the groups against ``spec`` and apply; answers a :class:`ReloadResult`."""

    spec: TreeSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class StopTree:
    """Root-internal: stop the groups in parallel, then the shared children in reverse."""

    deadline: float
    """``time.monotonic()`` by which the root stops waiting for anything."""


TreeRootInbox = StartTree | ReloadTree | StopTree | RestartGroup | ParkGroup | Ping
"""What the tree's root accepts (only :class:`SupervisionTree` tells it)."""


def _stop_budget_s(children: tuple[ChildSpec, ...]) -> float:
    return sum(c.shutdown_timeout_s for c in children) + 1.0


class _TreeRoot(Actor[TreeRootInbox]):
    """Serialises every change to the tree; only :class:`SupervisionTree` talks to it."""

    def __init__(
        self,
        *,
        spec: TreeSpec,
        board: StatusBoard,
        on_parked: Parked,
        escalate: Callable[[str], None],
        scheduler: Scheduler,
    ) -> None:
        super().__init__(name="root")
        self._spec = spec
        self._board = board
        self._on_parked = on_parked
        self._escalate = escalate
        self._scheduler = scheduler
        self._shared: pykka.ActorRef[Any] | None = None
        self._groups: dict[str, tuple[GroupSpec, pykka.ActorRef[Any] | None]] = {}
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
        self._start_groups(self._spec.groups.values())
        return True

    def on_reload_tree(self, message: ReloadTree) -> ReloadResult:
        new, old = message.spec.groups, {name: spec for name, (spec, _) in self._groups.items()}
        if self._stopping:
            return ReloadResult(unchanged=tuple(old))
        removed = tuple(n for n in old if n not in new)
        restarted = tuple(n for n in old if n in new and new[n].fingerprint != old[n].fingerprint)
        added = tuple(n for n in new if n not in old)
        self._stop_groups((*removed, *restarted), deadline=None)
        for name in removed:
            del self._groups[name]
            self._board.remove_group(name)
        self._start_groups(new[n] for n in (*restarted, *added))
        unchanged = tuple(n for n in old if n in new and n not in restarted)
        result = ReloadResult(added=added, removed=removed, restarted=restarted, unchanged=unchanged)
        self.log.info(f"reload applied: {result}")
        return result

    def on_stop_tree(self, message: StopTree) -> None:
        self._stopping = True
        # Groups may not starve the shared children (which flush last) of their own stop time.
        reserve = min(_stop_budget_s(self._spec.shared), (message.deadline - time.monotonic()) / 2)
        self._stop_groups(tuple(self._groups), deadline=message.deadline - reserve)
        if self._shared is not None:
            stop_ref(self._shared, message.deadline - time.monotonic(), SHARED)

    def on_restart_group(self, message: RestartGroup) -> bool:
        if message.name not in self._groups or self._stopping:
            return False
        spec, ref = self._groups[message.name]
        if ref is not None and ref.is_alive():
            tell_quietly(ref, message)
        else:
            self._start_groups([spec])
        return True

    def on_park_group(self, message: ParkGroup) -> bool:
        ref = self._groups.get(message.name, (None, None))[1]
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
        # Runs in the shared supervisor's thread (or as it crashes): stop from another thread.
        if not self._stopping:
            self._escalate(reason)

    def _start_groups(self, specs: Iterable[GroupSpec]) -> None:
        """Start group supervisors side by side, then wait for each (its children start in its on_start)."""
        started = []
        for spec in specs:
            try:
                ref = GroupSupervisor.start(
                    spec=spec,
                    board=self._board,
                    on_parked=self._on_parked,
                    scheduler=self._scheduler,
                    generation=next(self._incarnations),
                )
            except Exception as exc:
                self.log.exception(f"{spec.name}: cannot start its supervisor")
                self._groups[spec.name] = (spec, None)
                self._board.publish(
                    GroupStatus(name=spec.name, state=GroupState.PARKED, last_error=repr(exc))
                )
                self._on_parked(spec.name, f"cannot start: {exc!r}")
                continue
            self._groups[spec.name] = (spec, ref)
            started.append((spec, ref))
        for spec, ref in started:
            await_started(ref, sum(c.start_timeout_s for c in spec.children) + 1.0, spec.name)

    def _stop_groups(self, names: tuple[str, ...], deadline: float | None) -> None:
        """Ask every listed group supervisor to stop at once, then wait for each within its bound."""
        pending = []
        for name in names:
            spec, ref = self._groups[name]
            self._groups[name] = (spec, None)
            if ref is not None:
                own = time.monotonic() + _stop_budget_s(spec.children)
                pending.append((name, ref.stop(block=False), own if deadline is None else min(own, deadline)))
        late = []
        for name, future, until in pending:
            try:
                future.get(timeout=max(0.0, until - time.monotonic()))
            except pykka.Timeout:
                late.append(name)
        if late:  # one line: at 590 pairs on one CPU, hundreds may still be stopping at the deadline
            shown = ", ".join(late[:5]) + (f" and {len(late) - 5} more" if len(late) > 5 else "")
            self.log.warning(
                f"{len(late)} of {len(pending)} group supervisors did not stop in time ({shown}); moving on"
            )


class SupervisionTree:
    """Thread-safe handle on the tree; every mutation is serialised through the private root actor."""

    def __init__(
        self,
        spec: TreeSpec,
        *,
        on_parked: Parked | None = None,
        on_escalated: Escalated | None = None,
        shutdown_timeout_s: float = 10.0,
        on_stopping: Callable[[], object] | None = None,
        board: StatusBoard | None = None,
        scheduler: Scheduler = timer_scheduler,
    ) -> None:
        self.board = board or StatusBoard()
        self.before_shutdown: list[Callable[[], None]] = []
        """Run first by :meth:`shutdown`, in order (the bot registers "stop accepting entries")."""
        self.shutdown_timeout_s = shutdown_timeout_s
        self._on_parked = on_parked
        self._on_escalated = on_escalated
        self._on_stopping = on_stopping
        self._lock = threading.Lock()
        self._state = RootState.STARTING
        self._exit_code = 0
        self._done = threading.Event()
        self._root = _TreeRoot.start(
            spec=spec, board=self.board, on_parked=self._parked, escalate=self._escalate, scheduler=scheduler
        )

    @property
    def exit_code(self) -> int:
        return self._exit_code

    def start(self, timeout_s: float | None = None) -> None:
        """Start the shared children in order, then every group; return once all ran ``on_start``.

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

    def reload(self, spec: TreeSpec, timeout_s: float | None = None) -> ReloadResult:
        """Start added groups, stop removed ones, restart those whose fingerprint changed (not ``shared``)."""
        result: ReloadResult = self._root.ask(ReloadTree(spec=spec), block=True, timeout=timeout_s)
        return result

    def restart_group(self, name: str, timeout_s: float = 5.0) -> bool:
        """Un-park (or restart) one group with a fresh budget; False if unknown or the tree is stopping.

        Raises ``pykka.Timeout`` if the root is still busy (e.g. applying a reload) after ``timeout_s``.
        """
        return self._ask(RestartGroup(name=name), timeout_s)

    def park_group(self, name: str, reason: str = "parked by operator", timeout_s: float = 5.0) -> bool:
        """Stop one group's children; nothing restarts until :meth:`restart_group`. False if not running."""
        return self._ask(ParkGroup(name=name, reason=reason), timeout_s)

    def healthy(self, timeout_s: float = 1.0) -> bool:
        """Liveness: the root answers within ``timeout_s`` and every shared child is alive."""
        try:
            return self._ask(Ping(), timeout_s)
        except pykka.Timeout:
            return False

    def status(self) -> TreeStatus:
        """Immutable snapshot of the whole tree, read without touching any mailbox."""
        groups = self.board.groups
        return TreeStatus(
            state=self._state,
            exit_code=self._exit_code,
            shared=self.board.shared,
            groups=tuple(groups[n] for n in sorted(groups)),
        )

    def shutdown(self, timeout_s: float | None = None) -> int:
        """Orderly stop bounded by ``timeout_s``: hooks, groups in parallel, then shared children in reverse.

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
        for hook in ([self._on_stopping] if self._on_stopping else []) + self.before_shutdown:
            try:
                hook()
            except Exception:
                logger.exception("a shutdown hook raised")
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

    def _parked(self, name: str, reason: str) -> None:
        if self._on_parked is None:
            return
        try:
            self._on_parked(name, reason)
        except Exception:
            logger.exception(f"on_parked raised for {name}")

    def _escalate(self, reason: str) -> None:
        """The shared children cannot be kept up: exit code 70 and an orderly stop of everything."""
        logger.critical(f"escalating to a full stop: {reason}")
        self._exit_code = EX_SOFTWARE
        if self._on_escalated is not None:
            try:
                self._on_escalated(reason)
            except Exception:
                logger.exception("on_escalated raised")
        # Called from actor threads that StopTree may have to wait for: never shut down inline.
        threading.Thread(target=self.shutdown, name="escalation", daemon=True).start()
