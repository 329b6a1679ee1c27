"""``CpuPinning``: keep every thread of the process on the CPUs ``supervisor.cpu_affinity`` names.

The bot is one Python process whose threads take turns on one GIL. Spread over several cores, each GIL
hand-off from one thread to another (the reader → a pair → its executor, at every candle close) wakes a
thread that the kernel may place on another core, busy with something else, where it waits for that
core before it can even ask for the GIL. Kept on one core, the thread giving the GIL up and the one taking it
share a run queue. Measured in ``bench/live_latency.py`` (50 pairs × 5 timeframes, 2 cores, the local
exchange on both): closed-kline frame → entry sent p99 2.3–2.9 ms on one core against 4.3–5.2 ms on both.

Linux sets affinity per thread (``sched_setaffinity`` on a thread id), and a new thread inherits its
creator's, so ``apply`` sets it on every thread alive now (``/proc/self/task``) and the threads started
later follow. ``None`` gives the threads back every CPU the process was allowed when ``CpuPinning`` was
made (systemd's ``CPUAffinity=`` or a cgroup cpuset may have narrowed that already).

``"auto"`` (the default) picks one CPU itself: of the CPUs the process may use, the one least busy over a
half a second at start (``/proc/stat``), so two bots started on one machine do not both take CPU 0.
It keeps that CPU on a reload. Where the process may not set its affinity (a seccomp filter without
``sched_setaffinity``), ``"auto"`` says so once and runs unpinned; an explicit list is an error.

``supervisor.cpu_scheduling`` sets the kernel's policy for the same threads the same way (``schedule``).
``batch`` (the default, Linux ``SCHED_BATCH``) turns off wake-up preemption between them: a thread woken by
another (a pair told its candle by the reader, the reader told the pair is done) waits until the waker
blocks instead of preempting it, only to find the GIL still held and switch back. On one CPU every hand-off
then costs two context switches instead of four. Measured with 590 pykka actors handing a candle on in
turn (``CandleTurn``), 42 µs per hand-off against 77 µs with ``normal`` (``SCHED_OTHER``); CPU shares and
nice values are unchanged. A process that systemd started with another policy (``CPUSchedulingPolicy=``)
keeps it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from loguru import logger

AUTO = "auto"
"""``supervisor.cpu_affinity: auto``: one CPU, the least busy at start."""
CpuChoice = list[int] | tuple[int, ...] | str | None
POLICIES = {"batch": os.SCHED_BATCH, "normal": os.SCHED_OTHER}
"""``supervisor.cpu_scheduling`` → the Linux scheduling policy of every thread."""


class CpuSettings(Protocol):
    """What ``configure`` reads (the config's ``supervisor`` section)."""

    @property
    def cpu_affinity(self) -> CpuChoice: ...
    @property
    def cpu_scheduling(self) -> str: ...


class CpuPinning:
    """Applies ``supervisor.cpu_affinity`` to the whole process (module doc)."""

    def __init__(
        self,
        allowed: frozenset[int] | None = None,
        *,
        busy: Callable[[], dict[int, int]] | None = None,
        sample_s: float = 0.5,
    ) -> None:
        self.allowed = allowed if allowed is not None else frozenset(os.sched_getaffinity(0))
        """The CPUs the process may use at all; ``cpu_affinity`` must name a subset."""
        self.current: frozenset[int] | None = None
        """The CPUs last applied, or None when the process runs on every allowed CPU."""
        self.auto = False
        """``current`` was chosen by ``"auto"``."""
        self._busy = busy or busy_ticks
        self._sample_s = sample_s
        self.started_policy = os.sched_getscheduler(0)
        """The policy the process started with: restored by ``schedule(None)``."""
        self.policy: str | None = None
        """The ``cpu_scheduling`` last applied, or None when the threads keep the policy they started with."""

    def check(self, cpus: CpuChoice) -> str | None:
        """Why ``cpus`` cannot be applied on this machine, or None."""
        if cpus is None or isinstance(cpus, str):
            return None if cpus in {None, AUTO} else f"supervisor.cpu_affinity: {cpus!r} is not a CPU list"
        outside = sorted(set(cpus) - self.allowed)
        if outside:
            return (
                f"supervisor.cpu_affinity: CPU {', '.join(map(str, outside))} is not available to this "
                f"process, which may run on CPUs {', '.join(map(str, sorted(self.allowed)))}"
            )
        return None

    def configure(self, settings: CpuSettings) -> None:
        """``supervisor.cpu_affinity`` and ``supervisor.cpu_scheduling`` on every thread."""
        self.apply(settings.cpu_affinity)
        self.schedule(settings.cpu_scheduling)

    def restore(self) -> None:
        """Every thread back on the process's CPUs and policy as it started."""
        self.apply(None)
        self.schedule(None)

    def apply(self, cpus: CpuChoice) -> int:
        """Pin every thread to ``cpus`` (None: every allowed CPU; ``"auto"``: one, see the module doc);
        returns the number of threads set."""
        if cpus == AUTO:
            return self._apply_auto()
        problem = self.check(cpus)
        if problem is not None or isinstance(cpus, str):
            raise ValueError(problem)
        self.auto = False
        return self._pin(tuple(cpus) if cpus is not None else None)

    def least_busy(self) -> int:
        """The allowed CPU with the least busy time over ``sample_s`` (the highest-numbered on a tie)."""
        before = self._busy()
        time.sleep(self._sample_s)
        after = self._busy()
        return min(sorted(self.allowed, reverse=True), key=lambda c: after.get(c, 0) - before.get(c, 0))

    def _apply_auto(self) -> int:
        if len(self.allowed) < 2 or (self.auto and self.current is not None):
            return 0  # one CPU already, or chosen before (a reload keeps it)
        chosen = self.least_busy()
        try:
            count = self._pin((chosen,))
        except PermissionError as exc:
            logger.warning(f"cpu affinity: cannot pin this process ({exc}); its threads stay on every CPU")
            return 0
        self.auto = True
        return count

    def _pin(self, cpus: tuple[int, ...] | None) -> int:
        target = frozenset(cpus) if cpus is not None else self.allowed
        if cpus is None and self.current is None:
            return 0  # never pinned: leave the process as systemd or the shell started it
        count = _each_thread(lambda tid: os.sched_setaffinity(tid, target))
        self.current = frozenset(cpus) if cpus is not None else None
        where = ", ".join(map(str, sorted(target)))
        logger.info(f"cpu affinity: {count} threads on CPU {where}")
        return count

    def schedule(self, policy: str | None) -> int:
        """Set every thread's scheduling policy (``"batch"``, ``"normal"``; None: the one the process started
        with); returns the number of threads set. A process started with a policy of neither kind (systemd's
        ``CPUSchedulingPolicy=``) keeps it, as does one a seccomp filter forbids to change (said once)."""
        if policy == self.policy:
            return 0
        if self.started_policy not in POLICIES.values():
            logger.info(f"cpu scheduling: the process started with policy {self.started_policy}; kept")
            return 0
        target = self.started_policy if policy is None else POLICIES[policy]
        try:
            count = _each_thread(lambda tid: os.sched_setscheduler(tid, target, os.sched_param(0)))
        except PermissionError as exc:
            logger.warning(f"cpu scheduling: cannot set the threads' policy ({exc}); they keep theirs")
            return 0
        self.policy = policy
        if policy is not None:
            logger.info(f"cpu scheduling: {count} threads {policy}")
        return count


def _each_thread(change: Callable[[int], None]) -> int:
    """``change(0)`` (this thread first: threads it starts meanwhile inherit), then every thread's id."""
    change(0)
    count = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            change(int(task.name))
        except (ProcessLookupError, FileNotFoundError):
            continue  # the thread ended while we went through the list
        count += 1
    return count


def busy_ticks() -> dict[int, int]:
    """Busy clock ticks per CPU since boot (``/proc/stat``: every column but idle and iowait)."""
    out = {}
    for line in Path("/proc/stat").read_text(encoding="ascii").splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            ticks = [int(v) for v in values]
            out[int(name[3:])] = sum(ticks) - ticks[3] - ticks[4]
    return out
