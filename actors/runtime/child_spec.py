"""Child specs and restart policies: what a supervisor starts, and how often it may restart it (OTP).

A :class:`ChildSpec` is data, like OTP's ``{id, start, restart, shutdown}``; a :class:`RestartPolicy` is an
intensity within a period plus jittered exponential backoff; a :class:`RestartBudget` counts restarts in
that sliding window. Nothing here knows what the children are.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import pykka

from .actor import Monitor


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
    await_start: bool = True
    """False: the next child starts without waiting for this one's ``on_start`` (siblings that do not
    depend on each other warm up side by side). The supervisor still waits for it before starting a later
    child whose ``await_start`` is True, and before its own start (or a group restart) is complete."""


class Cancellable(Protocol):
    def cancel(self) -> None: ...


Scheduler = Callable[[float, Callable[[], None]], Cancellable]
"""Runs a callback after a delay (seconds) on another thread; the result cancels it."""


def timer_scheduler(delay_s: float, callback: Callable[[], None]) -> Cancellable:
    """Default :data:`Scheduler`: a daemon ``threading.Timer``."""
    timer = threading.Timer(delay_s, callback)
    timer.daemon = True
    timer.start()
    return timer


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """More than ``intensity`` restarts within ``period_s`` exhausts the budget; backoff between restarts."""

    intensity: int
    period_s: float
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 10.0
    jitter: float = 0.5
    """Each delay is multiplied by uniform(1 − jitter, 1 + jitter)."""
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

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
        horizon = self.policy.clock() - self.policy.period_s
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        return len(self._times)

    def reset(self) -> None:
        self._times.clear()
