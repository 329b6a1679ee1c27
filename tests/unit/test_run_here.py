"""``Actor.run_here``: a caller handles a message on its own thread only when that cannot reorder anything."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pykka
import pytest

from nancemakina.actors.runtime.actor import Actor, ChildExited
from nancemakina.actors.runtime.mailbox import Mailbox
from nancemakina.actors.runtime.routing import Router
from tests.waiting import wait_until


@dataclass(frozen=True)
class Work:
    tag: str
    gate: threading.Event | None = field(default=None, compare=False)
    """When set, the handler waits for it (a handler that is still running)."""
    fail: bool = False


class Worker(Actor[Work]):
    def __init__(self, *, monitor: Any = None, here: bool = True) -> None:
        super().__init__(name="worker", monitor=monitor)
        self.done: list[tuple[str, int]] = []
        self.entered = threading.Event()
        self._takes = here

    def takes_here(self, message: object) -> bool:
        return self._takes

    def on_work(self, message: Work) -> None:
        self.entered.set()
        if message.gate is not None:
            assert message.gate.wait(5)
        if message.fail:
            raise RuntimeError(f"{message.tag} failed")
        self.done.append((message.tag, threading.get_ident()))


@pytest.fixture
def worker():
    exits: list[ChildExited] = []
    ref = Worker.start(monitor=exits.append)
    actor = ref._actor_weakref()  # the test looks at the actor's own record of what it handled
    wait_until(lambda: actor._here, 5, "the worker started")
    yield ref, actor, exits
    if ref.is_alive():
        ref.stop()


def test_an_idle_actor_has_the_message_handled_on_the_callers_thread(worker) -> None:
    _ref, actor, _ = worker
    assert actor.run_here(Work("a")) is True
    assert actor.done == [("a", threading.get_ident())]
    assert actor._mailbox.handled_here == 1
    assert actor.stats().messages == 1


def test_a_busy_actor_is_left_alone_and_the_message_is_not_handled(worker) -> None:
    ref, actor, _ = worker
    gate = threading.Event()
    ref.tell(Work("slow", gate))
    assert actor.entered.wait(5)
    assert actor.run_here(Work("b")) is False
    gate.set()
    wait_until(lambda: len(actor.done) == 1, 5, "the slow message handled")
    assert [tag for tag, _ in actor.done] == ["slow"]


def test_the_mailbox_counts_a_message_from_put_until_handled() -> None:
    box = Mailbox()
    assert box.reserve() is True  # idle: a caller may handle one
    box.settle()
    box.put("queued")
    assert box.reserve() is False  # queued: it goes first, the caller must tell
    box.get()
    assert box.reserve() is False  # taken by the actor's thread but not handled yet
    box.settle()
    assert box.reserve() is True
    box.put("told meanwhile")
    assert box.pending == 2
    assert box.reserve() is False


def test_a_message_told_while_a_caller_handles_one_waits_for_it(worker) -> None:
    ref, actor, _ = worker
    gate = threading.Event()
    result: list[bool] = []
    caller = threading.Thread(target=lambda: result.append(actor.run_here(Work("here", gate))))
    caller.start()
    assert actor.entered.wait(5)
    ref.tell(Work("told"))
    assert actor._mailbox.pending == 2  # reserved by the caller, and the one just told
    assert actor.done == []  # the actor's thread waits for the caller's handler
    gate.set()
    caller.join(5)
    wait_until(lambda: len(actor.done) == 2, 5, "the told message handled")
    assert result == [True]
    assert [tag for tag, _ in actor.done] == ["here", "told"]
    assert actor.done[0][1] == caller.ident != actor.done[1][1]


def test_a_message_the_actor_does_not_take_here_is_refused() -> None:
    ref = Worker.start(here=False)
    actor = ref._actor_weakref()
    try:
        wait_until(lambda: actor._here, 5, "the worker started")
        assert actor.run_here(Work("x")) is False
        assert actor._mailbox.pending == 0  # the reservation was given back: telling still works
        ref.ask(Work("x"))
        assert [tag for tag, _ in actor.done] == ["x"]
    finally:
        ref.stop()


def test_a_failure_on_the_callers_thread_fails_the_actor_on_its_own(worker) -> None:
    ref, actor, exits = worker
    assert actor.run_here(Work("boom", fail=True)) is True  # handled (and failed) here; the caller goes on
    wait_until(lambda: exits, 5, "the worker's exit reported")
    assert exits[0].failed
    assert exits[0].error == "RuntimeError: boom failed"
    assert not ref.is_alive()
    assert actor.run_here(Work("after")) is False
    with pytest.raises(pykka.ActorDeadError):
        ref.tell(Work("after"))
    assert actor.done == []


def test_a_stopped_actor_is_never_run_here(worker) -> None:
    ref, actor, _ = worker
    ref.stop()
    assert actor.run_here(Work("late")) is False
    assert actor.done == []


def test_the_router_runs_a_message_here_through_the_current_incarnation(worker) -> None:
    ref, actor, _ = worker
    router: Router[Work] = Router()
    assert router.run_here("BTCUSDT", "1m", Work("nobody")) is False
    router.register("BTCUSDT", "1m", ref)
    assert router.run_here("BTCUSDT", "1m", Work("r")) is True
    assert actor.done == [("r", threading.get_ident())]
