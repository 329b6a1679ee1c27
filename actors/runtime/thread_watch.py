"""``ThreadWatch``: the process's threads outside the actor tree, watched like its actors are supervised.

A supervisor restarts an actor that dies; a plain thread that dies (the config watcher, the ledger's
reconcile timer, the metrics and control servers, the signal relay, a user-data stream) just stops doing
its job, silently. Each long-lived thread is registered here when it starts, as *essential* (the process
cannot do its job without it: the systemd watchdog stops being fed, so systemd restarts the process) or
not (health turns degraded). :meth:`check` logs each death once, at ERROR, and reports it to ``on_death``
(the bot raises an operator alert); it runs from the main thread's wait loop, the watchdog and ``health``.
Threads that are replaced (a restarted actor's timer) are re-registered under the same name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadThread:
    """A watched thread that ended while the process was running."""

    name: str
    role: str
    """What stopped working, in words an operator reads (``periodic reconciliation``)."""
    essential: bool
    died_monotonic: float


@dataclass(slots=True)
class _Watched:
    thread: threading.Thread
    role: str
    essential: bool
    died: float | None = None


class ThreadWatch:
    """Registry of long-lived threads; see the module docstring."""

    def __init__(self, on_death: Callable[[DeadThread], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._watched: dict[str, _Watched] = {}
        self._on_death = on_death
        self._closed = False

    def watch(self, thread: threading.Thread, *, role: str, essential: bool) -> threading.Thread:
        """Watch ``thread`` (started or about to be) under its name, replacing a previous one of that name."""
        with self._lock:
            self._watched[thread.name] = _Watched(thread=thread, role=role, essential=essential)
        return thread

    def spawn(
        self, target: Callable[[], object], *, name: str, role: str, essential: bool
    ) -> threading.Thread:
        """Start a daemon thread running ``target`` and watch it."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        self.watch(thread, role=role, essential=essential)
        thread.start()
        return thread

    def watch_named(self, name: str, *, role: str, essential: bool) -> bool:
        """Watch the running thread called ``name`` (one another module started); False if none runs."""
        thread = next((t for t in threading.enumerate() if t.name == name), None)
        if thread is None:
            return False
        self.watch(thread, role=role, essential=essential)
        return True

    def forget(self, name: str) -> None:
        """Stop watching ``name`` (its owner stopped it on purpose)."""
        with self._lock:
            self._watched.pop(name, None)

    def close(self) -> None:
        """Shutdown has begun: threads end on purpose from now on, and no death is reported."""
        with self._lock:
            self._closed = True

    def check(self) -> list[DeadThread]:
        """Every watched thread that died, oldest first; each newly found death is logged and reported."""
        fresh: list[DeadThread] = []
        with self._lock:
            if self._closed:
                return []
            now = time.monotonic()
            for name, w in self._watched.items():
                if w.died is None and w.thread.ident is not None and not w.thread.is_alive():
                    w.died = now
                    fresh.append(
                        DeadThread(name=name, role=w.role, essential=w.essential, died_monotonic=now)
                    )
            dead = [
                DeadThread(name=n, role=w.role, essential=w.essential, died_monotonic=w.died)
                for n, w in self._watched.items()
                if w.died is not None
            ]
        for death in fresh:
            impact = "the process can no longer do its job" if death.essential else "health is degraded"
            logger.error(f"thread {death.name} died: {death.role} stopped; {impact}")
            if self._on_death is not None:
                try:
                    self._on_death(death)
                except Exception:
                    logger.exception(f"reporting the death of {death.name} failed")
        return sorted(dead, key=lambda d: d.died_monotonic)

    def essential_alive(self) -> bool:
        """False once an essential thread died (the systemd watchdog is then no longer fed)."""
        return not any(d.essential for d in self.check())
