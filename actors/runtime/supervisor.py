"""``Supervisor``: one_for_one over ordered children with one restart budget (OTP intensity/period).

pykka actors cannot be restarted, so restarting a child means starting a new incarnation from its
:class:`~.child_spec.ChildSpec` with the next generation number. Children report their end through the
``monitor`` callback of :mod:`.actor`; the supervisor receives that as a ``ChildExited`` message and ignores
exits of generations it already replaced. Backoff delays are timers that ``tell`` the supervisor a
``RestartChild``: a supervisor never sleeps. Each supervisor publishes an immutable ``GroupStatus`` to a
``StatusBoard`` on every change, so the shell never queues behind a mailbox.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pykka
from loguru import logger
from pykka.messages import ProxyGetAttr

from .actor import Actor, ChildExited, Monitor
from .child_spec import (
    Cancellable,
    ChildSpec,
    Restart,
    RestartBudget,
    RestartPolicy,
    Scheduler,
    timer_scheduler,
)
from .protocol import ParkGroup, Ping, RestartChild, RestartGroup, SupervisorInbox
from .status import ChildStatus, GroupState, GroupStatus, StatusBoard


def tell_quietly(ref: pykka.ActorRef[Any], message: object) -> None:
    """``tell`` tolerating a dead receiver: late exits and timers may outlive their supervisor."""
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        logger.debug(f"dropped {type(message).__name__} for stopped {ref}")


def stop_ref(ref: pykka.ActorRef[Any], timeout_s: float, what: str) -> bool:
    """Ask ``ref`` to stop and wait at most ``timeout_s``; log and give up if it does not."""
    try:
        ref.stop(block=False).get(timeout=max(0.0, timeout_s))
    except pykka.Timeout:
        logger.warning(f"{what} did not stop within {timeout_s:.3g}s; moving on")
        return False
    return True


def await_started(ref: pykka.ActorRef[Any], timeout_s: float, what: str) -> bool:
    """Wait until ``ref`` ran ``on_start`` (messages are handled only after it); False if it died."""
    try:
        ref.ask(ProxyGetAttr(attr_path=("actor_urn",)), timeout=timeout_s)
    except pykka.ActorDeadError:
        return False
    except pykka.Timeout:
        logger.warning(f"{what} still starting after {timeout_s:.3g}s; carrying on")
    return True


@dataclass(slots=True)
class _Slot:
    spec: ChildSpec
    generation: int = 0
    running: bool = False
    """From start until this generation's exit is handled or the supervisor stops it."""
    ref: pykka.ActorRef[Any] | None = None
    timer: Cancellable | None = None


class Supervisor(Actor[SupervisorInbox]):
    """one_for_one over ordered children with one restart budget (OTP intensity/period).

    Children start in order (each awaited) in ``on_start`` and stop in reverse in ``on_stop``. When the budget
    is exhausted, ``on_exhausted(name, reason)`` is called; with ``park_on_exhaustion`` the supervisor first
    stops its children and parks. If the supervisor itself crashes, it stops its children and does the same.
    """

    def __init__(
        self,
        *,
        name: str,
        children: tuple[ChildSpec, ...],
        policy: RestartPolicy,
        board: StatusBoard,
        on_exhausted: Callable[[str, str], None],
        park_on_exhaustion: bool = True,
        scheduler: Scheduler = timer_scheduler,
        monitor: Monitor | None = None,
        generation: int = 0,
    ) -> None:
        super().__init__(name=name, monitor=monitor, generation=generation)
        ids = [c.id for c in children]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{name}: duplicate child ids in {ids}")
        self._slots = {c.id: _Slot(c) for c in children}
        self._budget = RestartBudget(policy)
        self._restarts_asked = 0
        self._board = board
        self._on_exhausted = on_exhausted
        self._park_on_exhaustion = park_on_exhaustion
        self._scheduler = scheduler
        self._state = GroupState.STOPPED
        self._last_error: str | None = None
        self._tell = functools.partial(tell_quietly, self.actor_ref)

    def start_actor(self) -> None:
        self._start_all()

    def stop_actor(self) -> None:
        self._stop_all(GroupState.STOPPED)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        try:
            kind = getattr(exception_type, "__name__", "?")
            self._last_error = f"supervisor crashed: {kind}: {exception_value}"
            self._give_up(self._last_error, stop_children=True)
        finally:
            super().on_failure(exception_type, exception_value, traceback)

    def on_child_exited(self, message: ChildExited) -> None:
        slot = self._slots.get(message.child_id)
        if slot is None or not slot.running or message.generation != slot.generation:
            return
        slot.ref, slot.running = None, False
        if message.failed:
            self._last_error = f"{message.child_id}: {message.error}"
            self.log.warning(f"{message.child_id}#{message.generation} failed: {message.error}")
        restart = slot.spec.restart
        ended = restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and not message.failed)
        if ended or self._state is GroupState.PARKED:
            self._publish()
        elif not self._budget.record():
            policy = self._budget.policy
            reason = f"over {policy.intensity} restarts in {policy.period_s:g}s; last: {self._last_error}"
            self._give_up(reason, stop_children=self._park_on_exhaustion)
        else:
            delay = self._budget.policy.delay_s(self._budget.in_window())
            retry = RestartChild(child_id=message.child_id, generation=slot.generation)
            slot.timer = self._scheduler(delay, functools.partial(self._tell, retry))
            self._state = GroupState.RESTARTING
            self._publish()

    def on_restart_child(self, message: RestartChild) -> None:
        slot = self._slots.get(message.child_id)
        if slot is None or slot.running or slot.generation != message.generation:
            return
        if self._state in {GroupState.PARKED, GroupState.STOPPED}:
            return
        slot.timer = None
        self._start(slot)
        if all(s.timer is None for s in self._slots.values()):
            self._state = GroupState.RUNNING
        self._publish()

    def on_restart_group(self, _message: RestartGroup) -> None:
        self.log.info("restarting every child with a fresh budget")
        self._restarts_asked += 1
        self._stop_all(GroupState.STOPPED)
        self._budget.reset()
        self._start_all()

    def on_park_group(self, message: ParkGroup) -> None:
        self._give_up(message.reason, stop_children=True)

    def on_ping(self, _message: Ping) -> bool:
        return all(s.running and s.ref is not None and s.ref.is_alive() for s in self._slots.values())

    def status(self) -> GroupStatus:
        return GroupStatus(
            name=self.name,
            state=self._state,
            restarts_in_window=self._budget.in_window(),
            total_restarts=self._budget.total,
            restarts_asked=self._restarts_asked,
            children=tuple(
                ChildStatus(child_id=i, alive=s.ref is not None and s.running, generation=s.generation)
                for i, s in self._slots.items()
            ),
            last_error=self._last_error,
            incarnation=self._generation,
        )

    def _give_up(self, reason: str, *, stop_children: bool) -> None:
        self.log.error(f"giving up: {reason}")
        if stop_children:
            self._stop_all(GroupState.PARKED)
        else:
            self._state = GroupState.PARKED
            self._publish()
        try:
            self._on_exhausted(self.name, reason)
        except Exception:
            self.log.exception("on_exhausted callback raised")

    def _start_all(self) -> None:
        self._state = GroupState.RUNNING
        pending: list[tuple[pykka.ActorRef[Any], _Slot]] = []

        def settle() -> None:
            for ref, slot in pending:
                await_started(ref, slot.spec.start_timeout_s, f"{self.name}/{slot.spec.id}#{slot.generation}")
            pending.clear()

        for slot in self._slots.values():
            if slot.spec.await_start:
                settle()  # a child that waits for its start also waits for the siblings started before it
                self._start(slot)
            elif (ref := self._start(slot, wait=False)) is not None:
                pending.append((ref, slot))
        settle()
        self._publish()

    def _stop_all(self, state: GroupState) -> None:
        self._state = state
        for slot in reversed(self._slots.values()):
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None
            ref, slot.ref, slot.running = slot.ref, None, False
            if ref is not None:
                stop_ref(ref, slot.spec.shutdown_timeout_s, f"{self.name}/{slot.spec.id}")
        self._publish()

    def _start(self, slot: _Slot, *, wait: bool = True) -> pykka.ActorRef[Any] | None:
        """Start ``slot``'s next generation; with ``wait``, block until its ``on_start`` ran. Returns the ref
        when it still has to be awaited (``wait=False``)."""
        slot.generation += 1
        child_id, generation = slot.spec.id, slot.generation

        def monitor(exited: ChildExited) -> None:
            # Trust our own bookkeeping, not whatever name/generation the child was built with.
            self._tell(replace(exited, child_id=child_id, generation=generation))

        slot.running = True
        try:
            slot.ref = slot.spec.start(monitor, generation)
        except Exception as exc:
            self.log.exception(f"{child_id}#{generation}: start raised")
            error = f"{type(exc).__name__}: {exc}"
            monitor(ChildExited(child_id=child_id, generation=generation, failed=True, error=error))
            return None
        if not wait:
            return slot.ref
        await_started(slot.ref, slot.spec.start_timeout_s, f"{self.name}/{child_id}#{generation}")
        return None

    def _publish(self) -> None:
        self._board.publish(self.status())
