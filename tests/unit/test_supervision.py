"""Supervision tree, driven by a scripted fake child (like OTP's supervisor suite: die, stop, block)."""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pykka
import pytest
from loguru import logger

from nancemakina.actors.ops.systemd import SdNotifier, service_signals
from nancemakina.actors.runtime.actor import Actor, ChildExited
from nancemakina.actors.runtime.child_spec import (
    ChildSpec,
    Restart,
    RestartBudget,
    RestartPolicy,
    timer_scheduler,
)
from nancemakina.actors.runtime.protocol import Ping as SupervisorPing
from nancemakina.actors.runtime.protocol import RestartGroup
from nancemakina.actors.runtime.status import SHARED, GroupState, GroupStatus, StatusBoard
from nancemakina.actors.runtime.supervisor import Supervisor
from nancemakina.actors.runtime.tree import (
    EX_SOFTWARE,
    GroupSpec,
    GroupSupervisor,
    RootState,
    SupervisionTree,
    SupervisorStartError,
    TreeSpec,
)

WAIT_S = 5.0


# ---------------------------------------------------------------- the scripted fake child


@dataclass(frozen=True, slots=True, kw_only=True)
class Die:
    reason: str = "scripted failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class StopNormally:
    """``Stop`` in OTP's suite; renamed because ``on_stop`` is pykka's own hook."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    pass


class Journal:
    """Thread-safe event log the tests wait on (a Condition, never a sleep)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.refs: dict[str, list[pykka.ActorRef[Any]]] = {}
        self._cond = threading.Condition()

    def add(self, event: str) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Any, timeout: float = WAIT_S) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.events), timeout), self.events

    def wait_event(self, event: str) -> None:
        self.wait_for(lambda events: event in events)

    def starts(self, child_id: str) -> list[str]:
        return [e for e in self.events if e.startswith(f"start:{child_id}#")]

    def stops(self) -> list[str]:
        return [e for e in self.events if e.startswith("stop:")]


@dataclass
class Script:
    """Behaviour of every incarnation of one child id."""

    fail_starts: int = 0
    """How many of the next starts raise in ``on_start``."""
    stop_gate: threading.Event | None = None
    """When set, ``stop_actor`` blocks until this event is set."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeChild(Actor[Die | StopNormally | Ping]):
    """A scripted child, as OTP's own supervisor tests use: it dies, stops or answers on command."""

    def __init__(self, *, name: str, monitor: Any, generation: int, journal: Journal, script: Script) -> None:
        super().__init__(name=name, monitor=monitor, generation=generation)
        self.journal = journal
        self.script = script

    def start_actor(self) -> None:
        self.journal.add(f"start:{self.name}#{self._generation}")
        with self.script.lock:
            fail = self.script.fail_starts > 0
            self.script.fail_starts -= int(fail)
        if fail:
            raise RuntimeError("scripted start failure")

    def stop_actor(self) -> None:
        if self.script.stop_gate is not None:
            self.script.stop_gate.wait(WAIT_S * 2)
        self.journal.add(f"stop:{self.name}#{self._generation}")

    def on_die(self, message: Die) -> None:
        raise RuntimeError(message.reason)

    def on_stop_normally(self, _message: StopNormally) -> None:
        self.stop()

    def on_ping(self, _message: Ping) -> tuple[str, int]:
        return self.name, self._generation


def child(
    journal: Journal,
    child_id: str,
    restart: Restart = Restart.PERMANENT,
    shutdown_timeout_s: float = 0.3,
    **script: Any,
) -> ChildSpec:
    behaviour = Script(**script)

    def start(monitor: Any, generation: int) -> pykka.ActorRef[Any]:
        ref = FakeChild.start(
            name=child_id, monitor=monitor, generation=generation, journal=journal, script=behaviour
        )
        journal.refs.setdefault(child_id, []).append(ref)
        return ref

    return ChildSpec(id=child_id, start=start, restart=restart, shutdown_timeout_s=shutdown_timeout_s)


class Immediate:
    """Scheduler recording each backoff delay and firing at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, delay_s: float, callback: Any) -> Any:
        self.delays.append(delay_s)
        callback()
        return threading.Timer(0, lambda: None)


class Never:
    """Scheduler whose timers never fire: the child stays down for the whole test."""

    def __call__(self, delay_s: float, callback: Any) -> Any:
        return threading.Timer(0, lambda: None)


class MidRandom(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


class WatchedBoard(StatusBoard):
    """StatusBoard whose tests can wait for a published state."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()

    def publish(self, status: GroupStatus) -> None:
        super().publish(status)
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, name: str, predicate: Any, timeout: float = WAIT_S) -> GroupStatus:
        def current() -> GroupStatus | None:
            return self.shared if name == SHARED else self.groups.get(name)

        with self._cond:
            ok = self._cond.wait_for(lambda: (s := current()) is not None and predicate(s), timeout)
        assert ok, current()
        status = current()
        assert status is not None
        return status


def policy(intensity: int = 10, **kwargs: Any) -> RestartPolicy:
    defaults: dict[str, Any] = {"period_s": 60.0, "backoff_initial_s": 0.001, "backoff_max_s": 0.002}
    return RestartPolicy(intensity=intensity, **{**defaults, **kwargs})


@pytest.fixture
def gates() -> Iterator[list[threading.Event]]:
    """Events set after the test, before conftest's fixture stops every actor: a child hanging in its
    stop is let go."""
    opened: list[threading.Event] = []
    yield opened
    for gate in opened:
        gate.set()


def supervise(journal: Journal, *specs: ChildSpec, scheduler: Any = None, **kwargs: Any):
    board = WatchedBoard()
    alerts: list[tuple[str, str]] = []
    ref = Supervisor.start(
        name="G",
        children=specs,
        policy=kwargs.pop("policy", policy()),
        board=board,
        on_exhausted=lambda name, reason: alerts.append((name, reason)),
        scheduler=scheduler or Immediate(),
        **kwargs,
    )
    ref.ask(SupervisorPing(), timeout=WAIT_S)  # answered once on_start has started every child
    return ref, board, alerts


# ---------------------------------------------------------------- policy and budget


def test_budget_counts_restarts_in_a_sliding_window() -> None:
    now = [0.0]
    budget = RestartBudget(policy(intensity=2, period_s=10.0, clock=lambda: now[0]))
    assert budget.record()
    assert budget.record()
    assert not budget.record(), "a third restart within 10 s exceeds intensity 2"
    now[0] = 10.5
    assert budget.in_window() == 0
    assert budget.record()
    assert budget.total == 4


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter() -> None:
    mid = RestartPolicy(intensity=5, period_s=1, backoff_initial_s=0.1, backoff_max_s=0.5, rng=MidRandom())
    assert [mid.delay_s(n) for n in (1, 2, 3, 4, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    jittered = RestartPolicy(intensity=5, period_s=1, backoff_initial_s=1.0, rng=random.Random(7))
    assert all(0.5 <= jittered.delay_s(1) <= 1.5 for _ in range(200))


# ---------------------------------------------------------------- one supervisor


def test_children_start_in_order_and_stop_in_reverse() -> None:
    journal = Journal()
    ref, board, _ = supervise(journal, child(journal, "a"), child(journal, "b"), child(journal, "c"))
    board.wait_for("G", lambda s: s.state is GroupState.RUNNING)
    assert journal.events == ["start:a#1", "start:b#1", "start:c#1"]
    ref.stop()
    assert journal.stops() == ["stop:c#1", "stop:b#1", "stop:a#1"]
    assert board.groups["G"].state is GroupState.STOPPED


class Rendezvous(FakeChild):
    """A child whose ``on_start`` returns only once every sibling in its party has started."""

    party: threading.Barrier

    def start_actor(self) -> None:
        self.journal.add(f"start:{self.name}#{self._generation}")
        self.party.wait(WAIT_S)  # raises BrokenBarrierError (a failed start) if started one at a time


def side_by_side(journal: Journal, child_id: str, party: threading.Barrier) -> ChildSpec:
    def start(monitor: Any, generation: int) -> pykka.ActorRef[Any]:
        cls = type("Rendezvous_" + child_id, (Rendezvous,), {"party": party})
        return cls.start(
            name=child_id, monitor=monitor, generation=generation, journal=journal, script=Script()
        )

    return ChildSpec(id=child_id, start=start, await_start=False, start_timeout_s=WAIT_S)


def test_children_that_do_not_await_their_start_warm_up_side_by_side() -> None:
    journal = Journal()
    party = threading.Barrier(3)
    specs = (
        child(journal, "executor"),
        *(side_by_side(journal, tf, party) for tf in ("1m", "5m", "15m")),
        child(journal, "last"),
    )
    ref, board, alerts = supervise(journal, *specs)
    status = board.wait_for("G", lambda s: s.state is GroupState.RUNNING)
    assert journal.events[0] == "start:executor#1"  # awaited before the side-by-side group starts
    assert sorted(journal.events[1:4]) == ["start:15m#1", "start:1m#1", "start:5m#1"]
    assert journal.events[4] == "start:last#1"  # waits for every sibling started before it
    assert all(c.alive and c.generation == 1 for c in status.children)
    assert not alerts
    party.reset()
    ref.tell(RestartGroup(name="G"))  # the group restart starts them side by side again
    journal.wait_for(lambda events: events.count("start:last#1") == 1 and "start:last#2" in events)
    assert sorted(journal.events[-4:-1]) == ["start:15m#2", "start:1m#2", "start:5m#2"]
    party.abort()  # a stray restart during teardown must not wait at the barrier
    ref.stop()


@pytest.mark.parametrize(
    ("restart", "message", "restarted"),
    [
        (Restart.PERMANENT, Die(), True),
        (Restart.PERMANENT, StopNormally(), True),
        (Restart.TRANSIENT, Die(), True),
        (Restart.TRANSIENT, StopNormally(), False),
        (Restart.TEMPORARY, Die(), False),
        (Restart.TEMPORARY, StopNormally(), False),
    ],
)
def test_restart_types_follow_otp(restart: Restart, message: object, restarted: bool) -> None:
    journal = Journal()
    _, board, _ = supervise(journal, child(journal, "a", restart))
    journal.refs["a"][0].tell(message)
    if restarted:
        status = board.wait_for("G", lambda s: s.children[0].generation == 2 and s.children[0].alive)
        assert status.total_restarts == 1
    else:
        status = board.wait_for("G", lambda s: not s.children[0].alive)
        assert (status.total_restarts, journal.starts("a")) == (0, ["start:a#1"])


def test_one_for_one_restarts_only_the_failed_child() -> None:
    journal = Journal()
    _, board, _ = supervise(journal, child(journal, "a"), child(journal, "b"))
    sibling = journal.refs["b"][0]
    journal.refs["a"][0].tell(Die())
    board.wait_for("G", lambda s: s.children[0].generation == 2 and s.children[0].alive)
    assert journal.refs["b"] == [sibling]
    assert sibling.ask(Ping(), timeout=WAIT_S) == ("b", 1)
    assert journal.refs["a"][1].ask(Ping(), timeout=WAIT_S) == ("a", 2)


def test_restarts_wait_for_the_policy_backoff() -> None:
    journal = Journal()
    scheduler = Immediate()
    backoff = policy(backoff_initial_s=0.1, backoff_max_s=0.5, rng=MidRandom())
    _, board, _ = supervise(journal, child(journal, "a"), scheduler=scheduler, policy=backoff)
    for generation in (1, 2, 3, 4):
        journal.refs["a"][-1].tell(Die())
        board.wait_for("G", lambda s, g=generation: s.children[0].generation == g + 1 and s.children[0].alive)
    assert scheduler.delays == pytest.approx([0.1, 0.2, 0.4, 0.5])


def test_a_real_timer_delays_the_restart_by_at_least_the_backoff() -> None:
    journal = Journal()
    backoff = policy(backoff_initial_s=0.05, backoff_max_s=0.05, jitter=0.0)
    _, board, _ = supervise(journal, child(journal, "a"), scheduler=timer_scheduler, policy=backoff)
    died = time.monotonic()
    journal.refs["a"][0].tell(Die())
    board.wait_for("G", lambda s: s.state is GroupState.RESTARTING)
    board.wait_for("G", lambda s: s.children[0].alive and s.state is GroupState.RUNNING)
    assert time.monotonic() - died >= 0.05


def test_exits_of_stale_generations_are_ignored() -> None:
    journal = Journal()
    ref, board, _ = supervise(journal, child(journal, "a"))
    ref.tell(ChildExited(child_id="a", generation=0, failed=True, error="old"))
    ref.tell(ChildExited(child_id="nobody", generation=1, failed=True, error="unknown"))
    assert ref.ask(SupervisorPing(), timeout=WAIT_S) is True  # processed after the stale exits
    assert journal.starts("a") == ["start:a#1"]
    assert board.groups["G"].total_restarts == 0


def test_a_failing_on_start_counts_as_a_failure() -> None:
    journal = Journal()
    _, board, _ = supervise(journal, child(journal, "a", fail_starts=1))
    status = board.wait_for("G", lambda s: s.children[0].alive and s.children[0].generation == 2)
    assert status.total_restarts == 1
    assert "scripted start failure" in (status.last_error or "")


def test_a_raising_start_function_counts_as_a_failure() -> None:
    journal = Journal()
    calls: list[int] = []
    inner = child(journal, "a")

    def start(monitor: Any, generation: int) -> pykka.ActorRef[Any]:
        calls.append(generation)
        if generation == 1:
            raise OSError("cannot open")
        return inner.start(monitor, generation)

    _, board, _ = supervise(journal, ChildSpec(id="a", start=start))
    status = board.wait_for("G", lambda s: s.children[0].alive)
    assert (calls, status.total_restarts) == ([1, 2], 1)


def test_exhausting_the_budget_parks_the_group() -> None:
    journal = Journal()
    _, board, alerts = supervise(
        journal, child(journal, "a"), child(journal, "b"), policy=policy(intensity=1)
    )
    journal.refs["a"][0].tell(Die())
    board.wait_for("G", lambda s: s.children[0].generation == 2 and s.children[0].alive)
    journal.refs["a"][1].tell(Die(reason="again"))
    status = board.wait_for("G", lambda s: s.state is GroupState.PARKED)
    assert not any(c.alive for c in status.children)
    assert [name for name, _ in alerts] == ["G"]
    assert "again" in alerts[0][1]
    assert "stop:b#1" in journal.events


class Crashable(Supervisor, Actor[Die]):
    def on_die(self, _message: Die) -> None:
        raise RuntimeError("supervisor bug")


def test_a_crashing_supervisor_stops_its_children_and_gives_up() -> None:
    journal = Journal()
    board = WatchedBoard()
    alerts: list[tuple[str, str]] = []
    ref = Crashable.start(
        name="G",
        children=(child(journal, "a"), child(journal, "b")),
        policy=policy(),
        board=board,
        on_exhausted=lambda name, reason: alerts.append((name, reason)),
    )
    ref.tell(Die())
    status = board.wait_for("G", lambda s: s.state is GroupState.PARKED)
    assert "supervisor bug" in (status.last_error or "")
    assert journal.stops() == ["stop:b#1", "stop:a#1"]
    assert alerts == [("G", status.last_error)]


def test_status_board_ignores_snapshots_of_replaced_supervisors() -> None:
    board = StatusBoard()

    def snapshot(incarnation: int, state: GroupState) -> GroupStatus:
        return GroupStatus(
            name="BTC",
            state=state,
            restarts_in_window=0,
            total_restarts=0,
            children=(),
            last_error=None,
            incarnation=incarnation,
        )

    board.publish(snapshot(2, GroupState.RUNNING))
    board.publish(snapshot(1, GroupState.STOPPED))
    assert board.groups["BTC"].state is GroupState.RUNNING
    board.remove_group("BTC")
    board.publish(snapshot(2, GroupState.STOPPED))
    assert "BTC" not in board.groups
    board.publish(snapshot(3, GroupState.RUNNING))
    assert board.groups["BTC"].name == "BTC"


# ---------------------------------------------------------------- the root


class Tree:
    """A root over ledger → executor → stream and some pairs, recording alerts."""

    def __init__(
        self,
        pairs: tuple[str, ...] = ("BTC", "ETH"),
        *,
        shared_policy: RestartPolicy | None = None,
        pair_policy: RestartPolicy | None = None,
        scheduler: Any = None,
        notifier: SdNotifier | None = None,
        hang: tuple[threading.Event, float] | None = None,
        **shared_script: Any,
    ) -> None:
        self.hang = hang
        """(gate, shutdown_timeout_s) of every pair's 5m child, which blocks in stop until the gate opens."""
        self.journal = Journal()
        self.board = WatchedBoard()
        self.alerts: list[tuple[str, str | None, str]] = []
        self.alerted = threading.Event()
        self.pair_policy = pair_policy or policy()
        shared = tuple(
            child(self.journal, name, **shared_script.get(name, {}))
            for name in ("ledger", "executor", "stream")
        )
        self.spec = TreeSpec(
            shared=shared,
            shared_policy=shared_policy or policy(),
            groups={s: self.pair(s) for s in pairs},
        )
        self.root = SupervisionTree(
            self.spec,
            on_parked=lambda name, reason: self.alert("pair_parked", name, reason),
            on_escalated=lambda reason: self.alert("shared_exhausted", None, reason),
            on_stopping=notifier.stopping if notifier is not None else None,
            board=self.board,
            scheduler=scheduler or Immediate(),
            shutdown_timeout_s=3.0,
        )

    def pair(self, symbol: str, fingerprint: object = 1) -> GroupSpec:
        slow: dict[str, Any] = {}
        if self.hang is not None:
            slow = {"stop_gate": self.hang[0], "shutdown_timeout_s": self.hang[1]}
        children = (child(self.journal, f"{symbol}/1m"), child(self.journal, f"{symbol}/5m", **slow))
        return GroupSpec(name=symbol, fingerprint=fingerprint, children=children, policy=self.pair_policy)

    def alert(self, kind: str, symbol: str | None, detail: str) -> None:
        self.alerts.append((kind, symbol, detail))
        self.alerted.set()

    def ref(self, child_id: str) -> pykka.ActorRef[Any]:
        return self.journal.refs[child_id][-1]


def test_start_brings_up_shared_children_in_order_then_the_pairs() -> None:
    tree = Tree()
    tree.root.start(timeout_s=WAIT_S)
    assert tree.journal.events[:3] == ["start:ledger#1", "start:executor#1", "start:stream#1"]
    assert sorted(tree.journal.events[3:]) == sorted(
        ["start:BTC/1m#1", "start:BTC/5m#1", "start:ETH/1m#1", "start:ETH/5m#1"]
    )
    status = tree.root.status()
    assert status.state is RootState.RUNNING
    assert [p.name for p in status.groups] == ["BTC", "ETH"]
    assert status.shared is not None
    assert all(c.alive for c in status.shared.children)
    assert tree.root.healthy()


def test_shutdown_runs_hooks_then_stops_pairs_then_shared_in_reverse() -> None:
    tree = Tree(pairs=("BTC",))
    tree.root.before_shutdown.append(lambda: tree.journal.add("hook"))
    tree.root.start(timeout_s=WAIT_S)
    assert tree.root.shutdown(timeout_s=WAIT_S) == 0
    tail = tree.journal.events[tree.journal.events.index("hook") :]
    assert tail == [
        "hook",
        "stop:BTC/5m#1",
        "stop:BTC/1m#1",
        "stop:stream#1",
        "stop:executor#1",
        "stop:ledger#1",
    ]
    assert tree.root.wait(timeout_s=0) == 0
    assert tree.root.status().state is RootState.STOPPED
    assert tree.root.shutdown(timeout_s=1.0) == 0, "idempotent"
    assert tree.journal.events.count("hook") == 1


def test_a_pair_over_budget_is_parked_and_the_others_are_untouched() -> None:
    tree = Tree(pair_policy=policy(intensity=1))
    tree.root.start(timeout_s=WAIT_S)
    eth_before = (tree.ref("ETH/1m"), tree.ref("ETH/5m"))
    tree.ref("BTC/1m").tell(Die())
    tree.board.wait_for("BTC", lambda s: s.children[0].generation == 2 and s.children[0].alive)
    tree.ref("BTC/1m").tell(Die(reason="twice"))
    assert tree.alerted.wait(WAIT_S)
    assert tree.alerts[0][:2] == ("pair_parked", "BTC")
    assert "twice" in tree.alerts[0][2]
    assert tree.board.wait_for("BTC", lambda s: s.state is GroupState.PARKED).restarts_in_window == 2
    assert (tree.ref("ETH/1m"), tree.ref("ETH/5m")) == eth_before
    assert [r.ask(Ping(), timeout=WAIT_S) for r in eth_before] == [("ETH/1m", 1), ("ETH/5m", 1)]
    assert tree.root.healthy()
    assert tree.root.exit_code == 0

    assert tree.root.restart_group("BTC")
    status = tree.board.wait_for(
        "BTC", lambda s: s.state is GroupState.RUNNING and all(c.alive for c in s.children)
    )
    assert status.restarts_in_window == 0
    assert tree.ref("BTC/1m").ask(Ping(), timeout=WAIT_S) == ("BTC/1m", 3)
    assert not tree.root.restart_group("XRP")


def test_a_pair_whose_supervisor_died_is_started_afresh_by_restart_pair() -> None:
    tree = Tree()
    tree.root.start(timeout_s=WAIT_S)
    (btc,) = [
        r
        for r in pykka.ActorRegistry.get_by_class(GroupSupervisor)
        if r.actor_urn and r.proxy().name.get() == "BTC"
    ]
    btc.stop()
    tree.board.wait_for("BTC", lambda s: s.state is GroupState.STOPPED)
    assert tree.root.restart_group("BTC")
    tree.board.wait_for("BTC", lambda s: s.state is GroupState.RUNNING and s.incarnation > 2)
    assert tree.ref("BTC/1m").ask(Ping(), timeout=WAIT_S) == ("BTC/1m", 1)
    assert len(tree.journal.refs["BTC/1m"]) == 2


def test_park_pair_stops_its_children_until_restarted() -> None:
    tree = Tree()
    tree.root.start(timeout_s=WAIT_S)
    assert tree.root.park_group("ETH")
    status = tree.board.wait_for("ETH", lambda s: s.state is GroupState.PARKED)
    assert not any(c.alive for c in status.children)
    assert tree.alerts == [("pair_parked", "ETH", "parked by operator")]
    assert tree.board.groups["BTC"].state is GroupState.RUNNING


def test_a_shared_child_over_budget_stops_the_tree_with_a_failure_exit_code() -> None:
    tree = Tree(shared_policy=policy(intensity=1))
    tree.root.start(timeout_s=WAIT_S)
    tree.ref("executor").tell(Die())
    tree.board.wait_for(SHARED, lambda s: s.children[1].generation == 2 and s.children[1].alive)
    tree.ref("executor").tell(Die())
    assert tree.root.wait(timeout_s=WAIT_S) == EX_SOFTWARE
    assert tree.alerts[0][:2] == ("shared_exhausted", None)
    assert tree.journal.stops()[-2:] == ["stop:stream#1", "stop:ledger#1"]
    assert {"stop:BTC/1m#1", "stop:ETH/5m#1"} <= set(tree.journal.stops())
    assert pykka.ActorRegistry.get_all() == []


def test_start_fails_when_a_shared_child_cannot_start() -> None:
    tree = Tree(scheduler=Never(), executor={"fail_starts": 1})
    with pytest.raises(SupervisorStartError):
        tree.root.start(timeout_s=WAIT_S)
    assert tree.root.exit_code == EX_SOFTWARE
    assert tree.root.wait(timeout_s=0) == EX_SOFTWARE
    assert not any(e.startswith("start:BTC") for e in tree.journal.events)


def test_healthy_is_false_while_a_shared_child_is_down() -> None:
    tree = Tree(scheduler=Never())
    tree.root.start(timeout_s=WAIT_S)
    assert tree.root.healthy()
    tree.ref("stream").tell(Die())
    tree.board.wait_for(SHARED, lambda s: s.state is GroupState.RESTARTING)
    assert not tree.root.healthy()


def test_reload_touches_only_added_removed_and_changed_pairs() -> None:
    tree = Tree(pairs=("AAA", "BBB", "CCC"))
    tree.root.start(timeout_s=WAIT_S)
    kept = tree.ref("AAA/1m")
    new_spec = TreeSpec(
        shared=tree.spec.shared,
        shared_policy=tree.spec.shared_policy,
        groups={
            "AAA": tree.spec.groups["AAA"],
            "BBB": tree.pair("BBB", fingerprint=2),
            "DDD": tree.pair("DDD"),
        },
    )
    result = tree.root.reload(new_spec, timeout_s=WAIT_S)
    assert (result.added, result.removed, result.restarted, result.unchanged) == (
        ("DDD",), ("CCC",), ("BBB",), ("AAA",)
    )  # fmt: skip
    assert tree.journal.refs["AAA/1m"] == [kept]
    assert kept.ask(Ping(), timeout=WAIT_S) == ("AAA/1m", 1)
    assert len(tree.journal.refs["BBB/1m"]) == 2
    assert not tree.journal.refs["BBB/1m"][0].is_alive()
    assert not tree.journal.refs["CCC/1m"][0].is_alive()
    assert tree.ref("DDD/5m").ask(Ping(), timeout=WAIT_S) == ("DDD/5m", 1)
    assert sorted(tree.board.groups) == ["AAA", "BBB", "DDD"]
    assert tree.journal.starts("ledger") == ["start:ledger#1"], "shared children are not restarted"


def test_a_child_hanging_in_stop_is_given_up_after_its_shutdown_timeout(gates) -> None:
    gate = threading.Event()
    gates.append(gate)
    tree = Tree(pairs=("BTC",), hang=(gate, 0.2))
    tree.root.start(timeout_s=WAIT_S)
    began = time.monotonic()
    tree.root.shutdown(timeout_s=WAIT_S)
    assert 0.2 <= time.monotonic() - began < 2.0
    assert tree.journal.stops() == ["stop:BTC/1m#1", "stop:stream#1", "stop:executor#1", "stop:ledger#1"]


def test_shutdown_is_bounded_in_total_and_keeps_time_for_the_shared_children(gates) -> None:
    gate = threading.Event()
    gates.append(gate)
    tree = Tree(pairs=("BTC", "ETH"), hang=(gate, 30.0))
    tree.root.start(timeout_s=WAIT_S)
    began = time.monotonic()
    tree.root.shutdown(timeout_s=0.6)
    assert time.monotonic() - began < 1.2
    assert tree.journal.stops()[-3:] == ["stop:stream#1", "stop:executor#1", "stop:ledger#1"]


def test_groups_still_stopping_at_the_deadline_are_named_in_one_warning(gates) -> None:
    gate = threading.Event()
    gates.append(gate)
    pairs = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG")
    tree = Tree(pairs=pairs, hang=(gate, 30.0))
    tree.root.start(timeout_s=WAIT_S)
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    try:
        tree.root.shutdown(timeout_s=0.6)
    finally:
        logger.remove(sink)
    late = [w for w in warnings if "group supervisors did not stop in time" in w]
    assert late == [
        "7 of 7 group supervisors did not stop in time (AAA, BBB, CCC, DDD, EEE and 2 more); moving on"
    ]


# ---------------------------------------------------------------- signals


def test_sighup_reloads_and_sigterm_shuts_down(tmp_path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(WAIT_S)
    notifier = SdNotifier(str(tmp_path / "notify"))
    tree = Tree(pairs=(), notifier=notifier)
    tree.root.start(timeout_s=WAIT_S)
    reloaded = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    relay = service_signals(lambda: tree.root.shutdown(2.0), reloaded.set, notifier)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        assert reloaded.wait(WAIT_S)
        assert listener.recv(256).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
        assert listener.recv(256) == b"READY=1"
        os.kill(os.getpid(), signal.SIGTERM)
        assert tree.root.wait(timeout_s=WAIT_S) == 0
        assert listener.recv(256) == b"STOPPING=1"
        assert tree.journal.stops() == ["stop:stream#1", "stop:executor#1", "stop:ledger#1"]
    finally:
        relay.restore()
        listener.close()
    assert signal.getsignal(signal.SIGTERM) is previous
