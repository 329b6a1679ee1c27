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
"""

from __future__ import annotations

import os
from pathlib import Path

from loguru import logger


class CpuPinning:
    """Applies ``supervisor.cpu_affinity`` to the whole process (module doc)."""

    def __init__(self, allowed: frozenset[int] | None = None) -> None:
        self.allowed = allowed if allowed is not None else frozenset(os.sched_getaffinity(0))
        """The CPUs the process may use at all; ``cpu_affinity`` must name a subset."""
        self.current: frozenset[int] | None = None
        """The CPUs last applied, or None when the process runs on every allowed CPU."""

    def check(self, cpus: list[int] | tuple[int, ...] | None) -> str | None:
        """Why ``cpus`` cannot be applied on this machine, or None."""
        if cpus is None:
            return None
        outside = sorted(set(cpus) - self.allowed)
        if outside:
            return (
                f"supervisor.cpu_affinity: CPU {', '.join(map(str, outside))} is not available to this "
                f"process, which may run on CPUs {', '.join(map(str, sorted(self.allowed)))}"
            )
        return None

    def apply(self, cpus: list[int] | tuple[int, ...] | None) -> int:
        """Pin every thread to ``cpus`` (None: every allowed CPU); returns the number of threads set."""
        problem = self.check(cpus)
        if problem is not None:
            raise ValueError(problem)
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
