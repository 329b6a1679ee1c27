"""systemd integration: ``sd_notify`` datagrams, the watchdog heartbeat, and signal handling off the handler.

Everything is a no-op when ``$NOTIFY_SOCKET`` is unset, so the same code runs under systemd, in a container
and in a terminal. The watchdog only pets systemd while an injected liveness check passes: a wedged process
stops sending ``WATCHDOG=1`` and systemd restarts it after ``WatchdogSec``.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from loguru import logger


class SdNotifier:
    """Sends ``KEY=value`` lines to the service manager over ``$NOTIFY_SOCKET`` (AF_UNIX, SOCK_DGRAM)."""

    def __init__(self, address: str | None, *, monotonic_ns: Callable[[], int] | None = None) -> None:
        self.address = address or None
        self._monotonic_ns = monotonic_ns or (lambda: time.clock_gettime_ns(time.CLOCK_MONOTONIC))
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SdNotifier:
        return cls((os.environ if env is None else env).get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send one datagram of newline-separated assignments; False when disabled or the send failed."""
        if self.address is None:
            return False
        # A leading '@' names a socket in Linux's abstract namespace, which starts with a NUL byte.
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        payload = "\n".join(assignments).encode()
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.sendto(payload, target)
            except OSError as exc:
                logger.warning(f"sd_notify to {self.address} failed: {exc}")
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *(() if status is None else (f"STATUS={status}",)))

    def reloading(self) -> bool:
        """``RELOADING=1`` with the ``MONOTONIC_USEC`` systemd ≥ 253 requires; send ``ready()`` when done."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={self._monotonic_ns() // 1000}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half of ``$WATCHDOG_USEC`` when the watchdog is enabled for this process, else None."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


class Watchdog:
    """Thread sending ``WATCHDOG=1`` every ``interval_s`` while ``liveness()`` returns True."""

    def __init__(self, notifier: SdNotifier, liveness: Callable[[], bool], interval_s: float) -> None:
        self._notifier = notifier
        self._liveness = liveness
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                alive = self._liveness()
            except Exception:
                logger.exception("watchdog liveness check raised")
                alive = False
            if alive:
                self._notifier.watchdog()
            else:
                logger.warning("liveness check failed: withholding WATCHDOG=1")
            self._stop.wait(self._interval_s)


class SignalRelay:
    """Signal handlers that only enqueue; one worker thread runs the actions, so a handler never blocks.

    ``SimpleQueue.put`` is reentrant, the one queue operation safe inside a signal handler.
    """

    def __init__(self, actions: Mapping[int, Callable[[], object]]) -> None:
        self._actions = dict(actions)
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._previous: dict[int, Any] = {}
        self._thread = threading.Thread(target=self._run, name="signal-relay", daemon=True)

    @property
    def thread(self) -> threading.Thread:
        """The worker that runs the actions (watched: without it, SIGTERM would do nothing)."""
        return self._thread

    def install(self) -> None:
        """Install the handlers (main thread only, as Python requires) and start the worker."""
        self._thread.start()
        for signum in self._actions:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self, timeout_s: float = 5.0) -> None:
        """Put the previous handlers back and let the worker finish what it is running."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self._queue.put(signum)

    def _run(self) -> None:
        while (signum := self._queue.get()) is not None:
            logger.info(f"received {signal.Signals(signum).name}")
            try:
                self._actions[signum]()
            except Exception:
                logger.exception(f"handling {signal.Signals(signum).name} failed")


def service_signals(
    on_stop: Callable[[], object], on_reload: Callable[[], object], notifier: SdNotifier | None = None
) -> SignalRelay:
    """Install SIGTERM/SIGINT → ``on_stop``, SIGHUP → ``on_reload`` framed by RELOADING=1 … READY=1."""

    def reload() -> None:
        if notifier is not None:
            notifier.reloading()
        try:
            on_reload()
        finally:
            if notifier is not None:
                notifier.ready()

    relay = SignalRelay({signal.SIGTERM: on_stop, signal.SIGINT: on_stop, signal.SIGHUP: reload})
    relay.install()
    return relay
