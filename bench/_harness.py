"""What the live benchmarks share: the local exchange in its own process, the probes they attach to the
daemon (hooks it exposes; nothing patched in a library), and how they summarise latencies."""

from __future__ import annotations

import contextlib
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pykka
import requests
from _synthetic import ROOT

from nancemakina.actors.domain.model import TIMEFRAME_MS, Leg
from nancemakina.actors.messages import EntryRejected, KlineClosed, OrderStateChanged, SubmitEntry
from nancemakina.actors.runtime.routing import Router
from nancemakina.actors.tree.actor_refs import Refs


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def rss_mib(pid: int | str = "self") -> float:
    with Path(f"/proc/{pid}/statm").open(encoding="ascii") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def cpu_s(pid: int | str = "self") -> float:
    """CPU seconds (user + system) a process has used, from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of an already sorted list."""
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def summary_ms(values_ns: list[int]) -> str:
    if not values_ns:
        return "no samples"
    v = sorted(values_ns)
    return (
        f"p50 {quantile(v, 0.5) / 1e6:7.3f}  p99 {quantile(v, 0.99) / 1e6:7.3f}  "
        f"max {v[-1] / 1e6:8.3f} ms  (n={len(v):,})"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(slots=True)
class ExchangeProcess:
    url: str
    pid: int


def pin_process(pid: int, cpus: frozenset[int]) -> int:
    """Move every thread of process ``pid`` to ``cpus``; returns how many were moved."""
    moved = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except (ProcessLookupError, FileNotFoundError):
            continue
        moved += 1
    return moved


@contextlib.contextmanager
def exchange_process(
    paths: list[Path],
    *,
    speed: str,
    start_ms: int,
    updates: int = 3,
    update_interval_ms: int | None = None,
    weight_limit: int = 100_000_000,
    order_limits: tuple[int, int] = (10_000_000, 60_000_000),
    paused: bool = True,
    nice: int = 0,
    cpus: frozenset[int] = frozenset(),
) -> Iterator[ExchangeProcess]:
    """``nancemakina exchange`` on a free port (paused until the bot resumes it, unless ``paused=False``).

    ``cpus``: run it only on these CPUs (``taskset``), as a venue on another machine would. The default
    weight limit and the order limits are raised far above Binance's, for benchmarks that squeeze hours
    into minutes.
    """
    port = free_port()
    argv = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
    argv += ["nice", "-n", str(nice)] if nice else []
    argv += [str(Path(sys.executable).with_name("nancemakina")), "exchange", "--port", str(port)]
    argv += ["--speed", speed, "--start", str(start_ms), "--weight-limit", str(weight_limit)]
    argv += ["--order-limits", ",".join(map(str, order_limits))]
    argv += ["--paused"] if paused else []
    if update_interval_ms is not None:
        argv += ["--update-interval-ms", str(update_interval_ms)]
    else:
        argv += ["--updates-per-candle", str(updates)]
    for p in paths:
        argv += ["--data", str(p)]
    # stderr to a file, not a pipe nobody reads: a synthetic symbol is announced there, and 590 of them
    # would fill a pipe and stall the exchange before it listens
    log = tempfile.NamedTemporaryFile(prefix="nm-exchange-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                tail = Path(log.name).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"exchange exited {proc.returncode}: {tail}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/sim/v1/status", timeout=1).ok:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("exchange did not come up in 600 s")
            time.sleep(0.1)
        yield ExchangeProcess(url=url, pid=proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)


# ---- instrumentation ----------------------------------------------------------------------------------


@dataclass(slots=True)
class TimedRefs(Refs):
    """``Refs`` that stamps when a pair emits each ``SubmitEntry`` (keyed by symbol and signal candle)."""

    emitted: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    router: TimedRouter | None = None

    def tell_executor(self, symbol: str, message: object) -> None:
        if isinstance(message, SubmitEntry):
            d = message.decision
            self.emitted[d.symbol, d.signal_open_time_ms] = (message.received_ns, time.perf_counter_ns())
        Refs.tell_executor(self, symbol, message)


class TimedRouter(Router):
    """``Router`` that notes, per candle close, when the first closed frame of that close was read.

    A frame's own stamp starts when the reader gets to it, so the frames read before it at the same close
    are not in its latency; "first frame of the close → entry sent" counts them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.burst_start: dict[int, int] = {}
        """Close time (ms) → ``perf_counter_ns`` of the first closed frame of that close read."""
        self.burst_end: dict[int, int] = {}
        """Close time (ms) → ``perf_counter_ns`` of the last closed frame of that close read."""
        self.close_of: dict[int, int] = {}
        """A closed frame's ``received_ns`` → its close time (ms)."""
        self.streamed: dict[tuple[int, str], int] = {}
        """(close time, timeframe) → closed candles told from the stream."""
        self.backfilled: dict[tuple[int, str], int] = {}
        """(close time, timeframe) → closed candles told from a REST repair."""

        self._noted = threading.local()
        """Per reader thread, the message ``run_here`` noted and handed back to be told (noted once)."""

    def run_here(self, symbol: str, timeframe: str, message: object) -> bool:
        self._note(timeframe, message)  # before: the pair's handler, on this thread, reads the stamps
        handled = super().run_here(symbol, timeframe, message)
        self._noted.message = None if handled else message
        return handled

    def tell(self, symbol: str, timeframe: str, message: object) -> bool:
        if message is not getattr(self._noted, "message", None):
            self._note(timeframe, message)
        self._noted.message = None
        return super().tell(symbol, timeframe, message)

    def _note(self, timeframe: str, message: object) -> None:
        if isinstance(message, KlineClosed):
            close = message.kline.open_time_ms + TIMEFRAME_MS[timeframe]
            if message.received_ns:
                first = self.burst_start.get(close)
                if first is None or message.received_ns < first:
                    self.burst_start[close] = message.received_ns
                if message.received_ns > self.burst_end.get(close, 0):
                    self.burst_end[close] = message.received_ns
                self.close_of[message.received_ns] = close
            counts = self.streamed if message.received_ns and not message.backfilled else self.backfilled
            counts[close, timeframe] = counts.get((close, timeframe), 0) + 1


@dataclass(frozen=True, slots=True)
class Sample:
    key: tuple[str, int]
    latency_ns: int
    sent_ns: int


@dataclass(slots=True)
class Probe:
    """Receives the executor's ``latency`` and ``events`` callbacks (both on the executor's thread)."""

    samples: list[Sample] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    entry_started: dict[str, int] = field(default_factory=dict)
    service_ns: list[int] = field(default_factory=list)
    """Executor time per accepted entry: entry submitted → take-profit order acknowledged."""
    _last_entry: tuple[str, int] | None = None

    def latency(self, ns: int) -> None:
        if self._last_entry is not None:
            self.samples.append(Sample(self._last_entry, ns, time.perf_counter_ns()))

    def event(self, event: object) -> None:
        now = time.perf_counter_ns()
        if isinstance(event, EntryRejected):
            self.rejected[event.reason] = self.rejected.get(event.reason, 0) + 1
        elif isinstance(event, OrderStateChanged):
            if event.leg is Leg.ENTRY and event.status == "submitted":
                _, symbol, signal, _ = event.client_id.split("-")
                self._last_entry = (symbol, int(signal))
                self.entry_started[event.symbol] = now
            elif event.leg is Leg.TAKE_PROFIT and event.status != "submitted":
                started = self.entry_started.pop(event.symbol, None)
                if started is not None:
                    self.service_ns.append(now - started)


def alive_actors() -> list[str]:
    return sorted(r.actor_class.__name__ for r in pykka.ActorRegistry.get_all())


def exit_past_lingering_actors() -> None:
    """An actor that outlived ``RootSupervisor.shutdown`` (e.g. an executor busy with its backlog) is a
    non-daemon thread: the interpreter would wait for it. Reported by the bench; do not hang on it."""
    if alive_actors():
        pykka.ActorRegistry.stop_all(block=False)
        sys.stderr.flush()
        os._exit(0)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])
