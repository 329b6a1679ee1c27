"""Generic OTP-style supervision: child specs, restart budgets with backoff, status snapshots, one_for_one.

pykka actors cannot be restarted, so "restarting" a child means starting a new incarnation from its
:class:`ChildSpec` with the next generation number. A :class:`ChildGroup` lives inside one supervising actor
and is only ever touched from that actor's thread; children report their end through the ``monitor``
callback of :mod:`actors.base`, which the group turns into a ``ChildExited`` told to its supervisor. Delays
between restarts are timers that ``tell`` the supervisor a :class:`RestartChild`: a supervisor never sleeps.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

import pykka
from loguru import logger
from pykka.messages import ProxyGetAttr

from actors.base import Actor, ActorStats, ChildExited, Monitor


class Restart(StrEnum):
    """When a child that ended is started again (OTP semantics)."""

    PERMANENT = "permanent"
    """Always, whether it failed or stopped normally."""
    TRANSIENT = "transient"
    """Only after a failure."""
    TEMPORARY = "temporary"
    """Never."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildSpec:
    """How to start one child: data, like OTP's ``{id, start, restart, shutdown}``."""

    id: str
    start: Callable[[Monitor, int], pykka.ActorRef[Any]]
    """Called with the monitor callback and the generation; returns the started actor's ref."""
    restart: Restart = Restart.PERMANENT
    shutdown_timeout_s: float = 5.0
    """How long an orderly stop may take before the supervisor logs it and moves on."""
    start_timeout_s: float = 30.0
    """How long the supervisor waits for ``on_start`` before starting the next child anyway."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PairSpec:
    """One pair's children (one per timeframe, in start order) and restart budget."""

    symbol: str
    fingerprint: Hashable
    """The pair's effective settings (and anything else that should restart it when it changes)."""
    children: tuple[ChildSpec, ...]
    policy: RestartPolicy


class Cancellable(Protocol):
    def cancel(self) -> None: ...


Scheduler = Callable[[float, Callable[[], None]], Cancellable]
"""Runs a callback after a delay (seconds) on some other thread; the result cancels it."""


def timer_scheduler(delay_s: float, callback: Callable[[], None]) -> Cancellable:
    """Default :data:`Scheduler`: a daemon ``threading.Timer``."""
    timer = threading.Timer(delay_s, callback)
    timer.daemon = True
    timer.start()
    return timer


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """Restart intensity (more than ``intensity`` restarts within ``period_s`` exhausts it) and backoff."""

    intensity: int
    period_s: float
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 10.0
    jitter: float = 0.5
    """Delays are multiplied by uniform(1 − jitter, 1 + jitter)."""
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    @classmethod
    def for_pairs(cls, settings: Any) -> RestartPolicy:
        """Per-pair budget from ``config.supervisor``."""
        return cls(
            intensity=settings.pair_max_restarts,
            period_s=settings.pair_restart_period_s,
            backoff_initial_s=settings.backoff_initial_s,
            backoff_max_s=settings.backoff_max_s,
        )

    @classmethod
    def for_shared(cls, settings: Any) -> RestartPolicy:
        """Budget of the shared children (ledger, executor, market streams) from ``config.supervisor``."""
        return cls(
            intensity=settings.shared_max_restarts,
            period_s=settings.shared_restart_period_s,
            backoff_initial_s=settings.backoff_initial_s,
            backoff_max_s=settings.backoff_max_s,
        )

    def delay_s(self, attempt: int) -> float:
        """Backoff before restart number ``attempt`` (1-based) of the current window."""
        base = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** max(0, attempt - 1))
        return base * self.rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)


class RestartBudget:
    """Sliding-window restart counter of one supervisor (not thread-safe: owned by one actor)."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._times: deque[float] = deque()
        self.total = 0

    def record(self) -> bool:
        """Count one restart now; False when that exceeds the intensity (the budget is exhausted)."""
        self.total += 1
        self._times.append(self.policy.clock())
        return self.in_window() <= self.policy.intensity

    def in_window(self) -> int:
        """Restarts within the last ``period_s``."""
        horizon = self.policy.clock() - self.policy.period_s
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        return len(self._times)

    def reset(self) -> None:
        self._times.clear()


class GroupState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    """At least one child waits for its backoff timer."""
    PARKED = "parked"
    """Budget exhausted (or parked by an operator); nothing restarts until a ``RestartPair``."""
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildStatus:
    child_id: str
    alive: bool
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupStatus:
    """Immutable snapshot of one supervisor's children; ``name`` is the symbol for a pair."""

    name: str
    state: GroupState
    restarts_in_window: int
    total_restarts: int
    children: tuple[ChildStatus, ...]
    last_error: str | None

    @property
    def symbol(self) -> str:
        return self.name


PairStatus = GroupStatus


class StatusBoard:
    """Latest snapshots for the shell and metrics. Writers swap immutable mappings; readers never lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pairs: Mapping[str, GroupStatus] = MappingProxyType({})
        self._stats: Mapping[str, Callable[[], ActorStats]] = MappingProxyType({})
        self.shared: GroupStatus | None = None
        """The shared children's snapshot (``name == "shared"``)."""

    @property
    def pairs(self) -> Mapping[str, GroupStatus]:
        return self._pairs

    def publish(self, status: GroupStatus) -> None:
        """Store the shared group's (``name == "shared"``) or a pair's latest snapshot."""
        if status.name == SHARED:
            self.shared = status
            return
        with self._lock:
            self._pairs = MappingProxyType({**self._pairs, status.name: status})

    def remove_pair(self, symbol: str) -> None:
        with self._lock:
            self._pairs = MappingProxyType({k: v for k, v in self._pairs.items() if k != symbol})

    def register_stats(self, name: str, provider: Callable[[], ActorStats]) -> None:
        """Add an actor's ``stats`` callable (e.g. a bound ``Actor.stats``) under ``name``."""
        with self._lock:
            self._stats = MappingProxyType({**self._stats, name: provider})

    def unregister_stats(self, name: str) -> None:
        with self._lock:
            self._stats = MappingProxyType({k: v for k, v in self._stats.items() if k != name})

    def stats(self) -> dict[str, ActorStats]:
        """Call every registered provider (they read counters, they do not ask)."""
        return {name: provider() for name, provider in self._stats.items()}


SHARED = "shared"


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartChild:
    """Timer → supervisor: the backoff of ``child_id``'s incarnation ``generation`` has elapsed."""

    child_id: str
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPair:
    """Command (shell → root → pair supervisor): reset the budget and start every child fresh."""

    symbol: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParkPair:
    """Command (shell → root → pair supervisor): stop the pair's children and restart nothing."""

    symbol: str
    reason: str = "parked by operator"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """Liveness probe: a supervisor answers ``True`` when its children are all alive."""


class Outcome(StrEnum):
    """What a supervisor did with a ``ChildExited``; ENDED = not restarted (temporary, or clean transient)."""

    IGNORED = "ignored"
    ENDED = "ended"
    RESTARTING = "restarting"
    EXHAUSTED = "exhausted"


@dataclass(slots=True)
class _Slot:
    spec: ChildSpec
    generation: int = 0
    running: bool = False
    """True from start until the current generation's exit is seen or the supervisor stops it."""
    ref: pykka.ActorRef[Any] | None = None
    timer: Cancellable | None = None


def stop_ref(ref: pykka.ActorRef[Any], timeout_s: float, what: str) -> bool:
    """Ask ``ref`` to stop and wait at most ``timeout_s``; log and give up if it does not."""
    try:
        ref.stop(block=False).get(timeout=max(0.0, timeout_s))
    except pykka.Timeout:
        logger.warning(f"{what} did not stop within {timeout_s:.3g}s; moving on")
        return False
    return True


def await_started(ref: pykka.ActorRef[Any], timeout_s: float, what: str) -> bool:
    """Wait until ``ref`` has run ``on_start`` (any message is handled only after it); False if it died."""
    try:
        ref.ask(ProxyGetAttr(attr_path=("actor_urn",)), timeout=timeout_s)
    except pykka.ActorDeadError:
        return False
    except pykka.Timeout:
        logger.warning(f"{what} still starting after {timeout_s:.3g}s; starting the next child anyway")
    return True


class ChildGroup:
    """one_for_one over ordered children with one restart budget; used from its supervisor's thread only."""

    def __init__(
        self,
        *,
        name: str,
        specs: tuple[ChildSpec, ...],
        policy: RestartPolicy,
        tell: Callable[[object], None],
        scheduler: Scheduler = timer_scheduler,
    ) -> None:
        ids = [s.id for s in specs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{name}: duplicate child ids in {ids}")
        self.name = name
        self.budget = RestartBudget(policy)
        self.state = GroupState.STOPPED
        self.last_error: str | None = None
        self._slots = {s.id: _Slot(s) for s in specs}
        self._tell = tell
        self._scheduler = scheduler

    def refs(self) -> tuple[pykka.ActorRef[Any] | None, ...]:
        """Current incarnations in start order (None while restarting or ended)."""
        return tuple(slot.ref for slot in self._slots.values())

    def all_alive(self) -> bool:
        return all(s.running and s.ref is not None and s.ref.is_alive() for s in self._slots.values())

    def start_all(self) -> bool:
        """Start every child in order, waiting for each; False if one died during its ``on_start``."""
        self.state = GroupState.RUNNING
        ok = True
        for slot in self._slots.values():
            ok = self._start(slot) and ok
        return ok

    def stop_all(self, deadline: float | None = None, state: GroupState = GroupState.STOPPED) -> None:
        """Stop every child in reverse order, each bounded by its ``shutdown_timeout_s`` and ``deadline``."""
        self.state = state
        for slot in reversed(self._slots.values()):
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None
            ref, slot.ref, slot.running = slot.ref, None, False
            if ref is not None:
                timeout = slot.spec.shutdown_timeout_s
                if deadline is not None:
                    timeout = min(timeout, deadline - time.monotonic())
                stop_ref(ref, timeout, f"{self.name}/{slot.spec.id}")

    def on_child_exited(self, exited: ChildExited) -> Outcome:
        slot = self._slots.get(exited.child_id)
        if slot is None or not slot.running or exited.generation != slot.generation:
            return Outcome.IGNORED
        slot.ref, slot.running = None, False
        if exited.failed:
            self.last_error = f"{exited.child_id}: {exited.error}"
            logger.warning(f"{self.name}/{exited.child_id}#{exited.generation} failed: {exited.error}")
        restart = slot.spec.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and not exited.failed):
            return Outcome.ENDED
        if not self.budget.record():
            return Outcome.EXHAUSTED
        delay = self.budget.policy.delay_s(self.budget.in_window())
        message = RestartChild(child_id=exited.child_id, generation=slot.generation)
        slot.timer = self._scheduler(delay, lambda: self._tell(message))
        self.state = GroupState.RESTARTING
        return Outcome.RESTARTING

    def on_restart_child(self, message: RestartChild) -> None:
        slot = self._slots.get(message.child_id)
        if slot is None or slot.running or slot.generation != message.generation:
            return
        if self.state in {GroupState.PARKED, GroupState.STOPPED}:
            return
        slot.timer = None
        self._start(slot)
        if all(s.timer is None for s in self._slots.values()):
            self.state = GroupState.RUNNING

    def snapshot(self) -> GroupStatus:
        return GroupStatus(
            name=self.name,
            state=self.state,
            restarts_in_window=self.budget.in_window(),
            total_restarts=self.budget.total,
            children=tuple(
                ChildStatus(child_id=i, alive=s.ref is not None and s.running, generation=s.generation)
                for i, s in self._slots.items()
            ),
            last_error=self.last_error,
        )

    def _start(self, slot: _Slot) -> bool:
        slot.generation += 1
        child_id, generation = slot.spec.id, slot.generation
        what = f"{self.name}/{child_id}#{generation}"

        def monitor(exited: ChildExited) -> None:
            # Trust our own bookkeeping, not whatever name/generation the child was built with.
            self._tell(replace(exited, child_id=child_id, generation=generation))

        slot.running = True
        try:
            slot.ref = slot.spec.start(monitor, generation)
        except Exception as exc:
            logger.exception(f"{what}: start raised")
            monitor(ChildExited(child_id=child_id, generation=generation, failed=True, error=repr(exc)))
            return False
        return await_started(slot.ref, slot.spec.start_timeout_s, what)


def tell_quietly(ref: pykka.ActorRef[Any], message: object) -> None:
    """``tell`` tolerating a dead receiver: late exits and timers may outlive their supervisor."""
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        logger.debug(f"dropped {type(message).__name__} for stopped {ref}")


class PairSupervisor(Actor):
    """one_for_one over one pair's timeframe actors, with the pair's own budget; parks, never escalates."""

    def __init__(
        self,
        *,
        spec: PairSpec,
        board: StatusBoard,
        on_parked: Callable[[str, str], None],
        monitor: Monitor | None = None,
        generation: int = 0,
        scheduler: Scheduler = timer_scheduler,
    ) -> None:
        super().__init__(name=f"pair:{spec.symbol}", monitor=monitor, generation=generation)
        self.symbol = spec.symbol
        self._board = board
        self._on_parked = on_parked
        tell = functools.partial(tell_quietly, self.actor_ref)
        self._group = ChildGroup(
            name=spec.symbol, specs=spec.children, policy=spec.policy, tell=tell, scheduler=scheduler
        )

    def start_actor(self) -> None:
        self._group.start_all()
        self._publish()

    def stop_actor(self) -> None:
        self._group.stop_all()
        self._publish()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        try:
            self._group.stop_all()
            self._publish()
        finally:
            super().on_failure(exception_type, exception_value, traceback)

    def on_child_exited(self, message: ChildExited) -> None:
        outcome = self._group.on_child_exited(message)
        if outcome is Outcome.EXHAUSTED:
            policy = self._group.budget.policy
            self._park(
                f"more than {policy.intensity} restarts in {policy.period_s:g}s; "
                f"last error: {self._group.last_error}"
            )
        elif outcome is not Outcome.IGNORED:
            self._publish()

    def on_restart_child(self, message: RestartChild) -> None:
        self._group.on_restart_child(message)
        self._publish()

    def on_restart_pair(self, _message: RestartPair) -> None:
        self.log.info(f"{self.symbol}: restarting every child with a fresh budget")
        self._group.stop_all()
        self._group.budget.reset()
        self._group.start_all()
        self._publish()

    def on_park_pair(self, message: ParkPair) -> None:
        self._park(message.reason)

    def on_ping(self, _message: Ping) -> bool:
        return self._group.all_alive()

    def _park(self, reason: str) -> None:
        self.log.error(f"{self.symbol}: parked: {reason}")
        self._group.stop_all(state=GroupState.PARKED)
        self._publish()
        try:
            self._on_parked(self.symbol, reason)
        except Exception:
            self.log.exception(f"{self.symbol}: on_parked callback raised")

    def _publish(self) -> None:
        self._board.publish(self._group.snapshot())
