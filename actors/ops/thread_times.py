"""Where the process's time went, per kind of thread: CPU, and time runnable but waiting for a CPU.

Used by the shell's ``threads`` command (totals since each thread started) and by
``bench/live_latency.py`` (``ThreadClock``: the difference between two moments).

Linux keeps, per thread, ``/proc/self/task/TID/schedstat``: nanoseconds on a CPU, nanoseconds runnable
on a run queue (waiting for a core, not for the GIL: a thread waiting for the GIL sleeps on a condition
variable), and the number of times it was scheduled. ``ThreadClock`` reads them at two moments and names
each thread by its Python name with the trailing ``-N`` dropped (pykka names actor threads
``ClassName-N``), so 250 pair threads sum into one line. ``/proc/stat`` gives how busy the machine's
cores were over the same window, the local exchange included.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

_SUFFIX = re.compile(r"[-_ ]?\d+$")


@dataclass(frozen=True, slots=True)
class Times:
    cpu_ns: int
    wait_ns: int
    slices: int


def _kind(name: str) -> str:
    stem = name.split(" (", 1)[0]
    return _SUFFIX.sub("", stem) or name


def _schedstat(tid: int) -> Times | None:
    try:
        cpu, wait, slices = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[:3]
    except (OSError, ValueError):
        return None
    return Times(int(cpu), int(wait), int(slices))


def _machine() -> tuple[int, int]:
    """(busy, total) jiffies over every CPU, from the first line of /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _affinity(tid: int) -> frozenset[int] | None:
    try:
        return frozenset(os.sched_getaffinity(tid))
    except OSError:
        return None


def _every_thread() -> dict[int, Times]:
    """Scheduler totals of every thread of this process alive now, by thread id."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        times = _schedstat(int(task.name))
        if times is not None:
            out[int(task.name)] = times
    return out


def _names() -> dict[int, str]:
    return {t.native_id: _kind(t.name) for t in threading.enumerate() if t.native_id is not None}


@dataclass(slots=True)
class _Kind:
    threads: int = 0
    cpu_ns: int = 0
    wait_ns: int = 0
    wakeups: int = 0
    cpus: set[str] = field(default_factory=set)


def thread_kinds() -> list[dict[str, object]]:
    """Per kind of thread, busiest first: threads, CPU seconds, run-queue wait, wake-ups and the CPUs its
    threads may run on, totalled since each live thread started (threads that ended are not counted)."""
    names = _names()
    kinds: dict[str, _Kind] = {}
    for tid, times in _every_thread().items():
        k = kinds.setdefault(names.get(tid, "native"), _Kind())
        k.threads += 1
        k.cpu_ns += times.cpu_ns
        k.wait_ns += times.wait_ns
        k.wakeups += times.slices
        cpus = _affinity(tid)
        if cpus is not None:
            k.cpus.add(",".join(map(str, sorted(cpus))))
    return [
        {
            "kind": name,
            "threads": k.threads,
            "cpu_s": k.cpu_ns / 1e9,
            "wait_s": k.wait_ns / 1e9,
            "wakeups": k.wakeups,
            "wait_per_wakeup_us": k.wait_ns / k.wakeups / 1e3 if k.wakeups else 0.0,
            "cpus": " | ".join(sorted(k.cpus)),
        }
        for name, k in sorted(kinds.items(), key=lambda kv: kv[1].cpu_ns, reverse=True)
    ]


class ThreadClock:
    """Per-thread-kind CPU and run-queue wait between ``start()`` and ``stop()`` (module doc)."""

    def __init__(self) -> None:
        self._before: dict[int, Times] = {}
        self._names: dict[int, str] = {}
        self._machine0 = (0, 0)
        self.by_kind: dict[str, tuple[int, Times]] = {}
        self.machine_busy = 0.0

    def _sample(self) -> dict[int, Times]:
        self._names.update(_names())
        return _every_thread()

    def start(self) -> None:
        self._before = self._sample()
        self._machine0 = _machine()

    def stop(self) -> None:
        after = self._sample()
        busy0, total0 = self._machine0
        busy1, total1 = _machine()
        self.machine_busy = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        kinds: dict[str, list[int]] = {}
        for tid, t in after.items():
            b = self._before.get(tid, Times(0, 0, 0))
            row = kinds.setdefault(self._names.get(tid, "native"), [0, 0, 0, 0])
            row[0] += 1
            row[1] += t.cpu_ns - b.cpu_ns
            row[2] += t.wait_ns - b.wait_ns
            row[3] += t.slices - b.slices
        self.by_kind = {k: (r[0], Times(r[1], r[2], r[3])) for k, r in kinds.items()}

    def lines(self, wall_s: float, top: int = 8) -> list[str]:
        """The busiest kinds: threads, CPU share of one core, run-queue wait, wait per scheduling."""
        rows = sorted(self.by_kind.items(), key=lambda kv: kv[1][1].cpu_ns, reverse=True)
        cpu = sum(t.cpu_ns for _, t in self.by_kind.values())
        wait = sum(t.wait_ns for _, t in self.by_kind.values())
        head = (
            f"  whole bot process: {cpu / 1e9 / wall_s:.0%} of a core, {wait / 1e9 / wall_s:.0%} of a core's "
            f"worth runnable but waiting for a CPU; machine's cores {self.machine_busy:.0%} busy"
        )
        out = [head]
        for kind, (n, t) in rows[:top]:
            per = t.wait_ns / t.slices / 1e3 if t.slices else 0.0
            out.append(
                f"  {kind:<22} {n:>4} threads  cpu {t.cpu_ns / 1e9 / wall_s:5.1%} of a core  "
                f"run-queue wait {t.wait_ns / 1e6:8.1f} ms ({per:6.1f} µs per wake-up, {t.slices:,} wake-ups)"
            )
        return out
