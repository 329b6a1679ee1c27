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
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger

AUTO = "auto"
"""``supervisor.cpu_affinity: auto``: one CPU, the least busy at start."""
CpuChoice = list[int] | tuple[int, ...] | str | None


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
        count = 0
        os.sched_setaffinity(0, target)  # this thread first: threads it starts meanwhile inherit
        for task in Path("/proc/self/task").iterdir():
            try:
                os.sched_setaffinity(int(task.name), target)
            except (ProcessLookupError, FileNotFoundError):
                continue  # the thread ended while we went through the list
            count += 1
        self.current = frozenset(cpus) if cpus is not None else None
        where = ", ".join(map(str, sorted(target)))
        logger.info(f"cpu affinity: {count} threads on CPU {where}")
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
