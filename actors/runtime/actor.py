"""Base class for every actor: a declared inbox, dispatch to ``on_<message>`` handlers, stats, exit reports.

An actor names the messages it accepts as the type argument of its base, ``class Ledger(Actor[Inbox])``
with ``Inbox = Decision | Alert | ...``; a subclass widens its base's with ``class C(Base, Actor[More])``.
Defining the class fails (``TypeError``) when a type in the inbox has no ``on_<snake_case>`` handler, or a
handler answers no type of the inbox; at run time a message outside the inbox is logged and dropped.
Senders hold an ``Address[Inbox]``, so mypy refuses a message the receiver does not accept.

pykka actors cannot be restarted and report failures only to their own ``on_failure``; supervision is
ours. Each actor is started with a ``monitor`` callback and calls it exactly once when it ends — normally,
on failure, or when ``on_start`` raised — so its supervisor can decide what to do from the child spec.
The callback runs in the dying actor's thread: it must only ``tell``.

An idle actor may let a caller handle a message on the caller's own thread (``run_here``; see
:mod:`.mailbox`), for the messages it says it ``takes_here``: ones whose handling cannot block.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar, get_args, get_origin

import pykka
from loguru import logger

from .mailbox import Mailbox


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildExited:
    """Event to a supervisor: one of its children ended."""

    child_id: str
    generation: int
    """Which incarnation ended; a supervisor ignores exits of children it already replaced."""
    failed: bool
    error: str | None = None
    """``Type: message`` of the exception (never its traceback or locals: they could hold secrets)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorStats:
    """What the inspection shell shows per actor; read from any thread without asking the actor."""

    name: str
    started_monotonic: float
    messages: int
    last_message_monotonic: float | None
    mailbox: int
    alive: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Barrier:
    """Any actor runs ``done`` when it reaches this message: everything told before it has been handled."""

    done: Callable[[], None]


Monitor = Callable[[ChildExited], None]


def _nothing() -> None:
    """A ``Barrier`` that only wakes an actor."""


M = TypeVar("M")
M_contra = TypeVar("M_contra", contravariant=True)


class Address(Protocol[M_contra]):
    """Where a sender tells messages of type ``M`` (an actor ref, a router entry, a forwarding teller)."""

    def tell(self, message: M_contra) -> None: ...


class ActorDirectory:
    """Every live actor by name, for the shell and metrics: weak references, lock-free reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._actors: dict[str, weakref.ref[Actor[Any]]] = {}

    def add(self, actor: Actor[Any]) -> None:
        with self._lock:
            self._actors = {**self._actors, actor.name: weakref.ref(actor)}

    def remove(self, actor: Actor[Any]) -> None:
        with self._lock:
            current = self._actors.get(actor.name)
            if current is not None and current() is actor:
                self._actors = {k: v for k, v in self._actors.items() if k != actor.name}

    def stats(self) -> dict[str, ActorStats]:
        """Counters of every registered actor that is still alive."""
        out = {}
        for name, ref in self._actors.items():
            actor = ref()
            if actor is not None:
                out[name] = actor.stats()
        return out


_LIFECYCLE = frozenset({"on_start", "on_stop", "on_failure", "on_receive"})
"""pykka's own hooks: ``on_`` names that are not message handlers."""

DIRECTORY = ActorDirectory()
"""The process-wide directory every ``Actor`` registers in when it starts."""

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def handler_name(message_type: type) -> str:
    """``on_`` + snake_case of the message class name: ``KlineClosed`` → ``on_kline_closed``."""
    return "on_" + _SNAKE.sub("_", message_type.__name__).lower()


def _inbox_of(cls: type) -> tuple[type, ...] | None:
    """The message types named by ``Actor[...]`` among ``cls``'s own bases, or None if it names none."""
    for base in getattr(cls, "__orig_bases__", ()):
        if get_origin(base) is Actor:
            (inbox,) = get_args(base)
            return tuple(get_args(inbox)) or (inbox,)
    return None


class Actor(pykka.ThreadingActor, Generic[M]):
    """Dispatches ``tell``/``ask`` messages by type to ``on_<message>`` handlers; see the module docstring."""

    accepts: ClassVar[tuple[type, ...]] = (Barrier,)
    """Every message type this actor handles (its inbox and :class:`Barrier`), checked at class creation."""
    _handlers: ClassVar[dict[type, str]] = {}

    def __init__(self, *, name: str, monitor: Monitor | None = None, generation: int = 0) -> None:
        super().__init__()
        self.name = name
        self._monitor = monitor
        self._generation = generation
        self._messages = 0
        self._last_message: float | None = None
        self._started = time.monotonic()
        self._reported = threading.Event()
        self.log = logger.bind(actor=name)
        self.restarts = generation
        self._mailbox: Mailbox = self.actor_inbox  # type: ignore[assignment]  # made by _create_actor_inbox
        self._mailbox.owner = weakref.ref(self)
        self._here = False
        """Callers may handle messages here (``run_here``): set once started, cleared on stop or failure."""
        self._failed_here: Exception | None = None
        """What a handler raised on a caller's thread; the actor's own thread raises it next (fails)."""

    @staticmethod
    def _create_actor_inbox() -> Mailbox:  # pykka's hook: the inbox its thread reads
        return Mailbox()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        inbox = _inbox_of(cls)
        if inbox is not None:  # a subclass may widen its base's inbox: ``class C(Supervisor, Actor[Extra])``
            cls.accepts = tuple(dict.fromkeys((*cls.accepts, *inbox)))
        missing = [t.__name__ for t in cls.accepts if not callable(getattr(cls, handler_name(t), None))]
        if missing:
            raise TypeError(f"{cls.__name__} accepts {', '.join(missing)} but has no handler for it")
        handled = {handler_name(t) for t in cls.accepts}
        stray = [n for n in dir(cls) if n.startswith("on_") and n not in _LIFECYCLE and n not in handled]
        if stray:
            raise TypeError(f"{cls.__name__}: {', '.join(stray)} handle no message of its inbox")
        cls._handlers = {t: handler_name(t) for t in cls.accepts}

    def _handle_receive(self, message: Any) -> Any:
        """pykka's entry for every message this actor's thread takes from its inbox (ours, a stop, a proxy
        call): handled under the turnstile, then settled, so ``run_here`` knows when the actor is idle."""
        box = self._mailbox
        with box.turnstile:
            try:
                return super()._handle_receive(message)
            except BaseException:
                self._here = False
                raise
            finally:
                box.settle()

    def on_receive(self, message: Any) -> Any:
        """Route to the handler for the message's type; a message outside the inbox is a programming error."""
        failed = self._failed_here
        if failed is not None:  # a handler failed on a caller's thread (``run_here``): fail now, here
            raise failed
        return self._dispatch(message)

    def takes_here(self, message: Any) -> bool:  # noqa: ARG002 - a hook: no message by default
        """Whether a caller may handle ``message`` on its own thread (under the turnstile, actor idle): only
        for messages whose handling never blocks nor waits for another actor."""
        return False

    def run_here(self, message: M) -> bool:
        """Handle ``message`` on the calling thread, now, if this actor is idle and ``takes_here`` it;
        False when it did nothing (then tell it). It is handled as if told at this instant: whatever was
        told before is already handled, whatever is told meanwhile waits for it (:mod:`.mailbox`). A
        failure is raised on the actor's own thread, which then fails as if it had handled the message."""
        box = self._mailbox
        if not self._here or not box.turnstile.acquire(blocking=False):
            return False
        try:
            if not self._here or self.actor_stopped.is_set() or not box.reserve():
                return False
            try:
                if not self.takes_here(message):
                    return False
                self._dispatch(message)
                box.handled_here += 1
            except Exception as exc:
                self._here = False
                self._failed_here = exc
                with contextlib.suppress(pykka.ActorDeadError):  # wake the actor's thread to fail
                    self.actor_ref.tell(Barrier(done=_nothing))
            finally:
                box.settle()
            return True
        finally:
            box.turnstile.release()

    def _dispatch(self, message: Any) -> Any:
        self._messages += 1
        self._last_message = time.monotonic()
        name = self._handlers.get(type(message))
        if name is None:
            self.log.error(f"{type(message).__name__} is not in its inbox; message dropped")
            return None
        return getattr(self, name)(message)

    def on_barrier(self, message: Barrier) -> None:
        """Everything queued before the barrier is handled: run its callback."""
        message.done()

    def on_start(self) -> None:
        """Runs ``start_actor``; a failure there is reported to the supervisor like any other."""
        DIRECTORY.add(self)
        with self._mailbox.turnstile:
            try:
                self.start_actor()
            except Exception as exc:
                self._report(failed=True, error=f"{type(exc).__name__}: {exc}")
                raise
            self._here = True

    def start_actor(self) -> None:
        """Hook for subclasses: setup in the actor's own thread before the first message."""

    def stop_actor(self) -> None:
        """Hook for subclasses: cleanup on an orderly stop."""

    def on_stop(self) -> None:
        self._here = False  # under the turnstile (``_handle_receive``): no caller is handling one here
        try:
            self.stop_actor()
        finally:
            self._report(failed=False)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:  # noqa: ARG002
        self._here = False
        self._report(failed=True, error=f"{getattr(exception_type, '__name__', '?')}: {exception_value}")

    def _report(self, *, failed: bool, error: str | None = None) -> None:
        DIRECTORY.remove(self)
        if self._reported.is_set():
            return
        self._reported.set()
        if self._monitor is not None:
            self._monitor(
                ChildExited(child_id=self.name, generation=self._generation, failed=failed, error=error)
            )

    def stats(self) -> ActorStats:
        """Snapshot of this actor's counters (thread-safe reads of ints/floats)."""
        return ActorStats(
            name=self.name,
            started_monotonic=self._started,
            messages=self._messages,
            last_message_monotonic=self._last_message,
            mailbox=self.actor_inbox.qsize(),  # type: ignore[attr-defined]  # a queue.Queue for ThreadingActor
            alive=not self.actor_stopped.is_set(),
        )
