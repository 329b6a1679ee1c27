"""One bot per state directory: an exclusive lock taken before anything else touches the directory, then
its ledger checked (``claim_state_dir``).

``nancemakina run`` takes ``<state_dir>/nancemakina.lock`` (``flock``) first thing, before logging, the
ledger or the control socket; a second ``run`` on the same state directory refuses at once, in one line,
with the pid holding it, and changes nothing. The kernel drops the lock with its process (kill -9
included), so a crash never leaves a stale lock. Within one process the lock is shared (the CLI and the
root supervisor both take it; tests start several bots in one process one after another).
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from ..config import Config, Mode
from ..tree.ledger.ledger_files import archive_previous_ledger, check_ledger_file, ledger_path

LOCK_FILE = "nancemakina.lock"


class StateDirInUseError(RuntimeError):
    """Another live process runs a bot on this state directory; the message says which and what to do."""


class StateLock:
    """The process's hold on one state directory (see the module docstring)."""

    _held: ClassVar[dict[Path, tuple[int, int]]] = {}
    """Resolved lock path → (file descriptor, holders in this process)."""
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, state_dir: Path) -> None:
        self.path = (state_dir / LOCK_FILE).resolve()
        self._released = False

    @classmethod
    def acquire(cls, state_dir: Path) -> StateLock:
        """Hold ``state_dir`` for this process, or raise ``StateDirInUseError``."""
        state_dir.mkdir(parents=True, exist_ok=True)
        lock = cls(state_dir)
        with cls._guard:
            held = cls._held.get(lock.path)
            if held is not None:
                cls._held[lock.path] = (held[0], held[1] + 1)
                return lock
            fd = os.open(lock.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise StateDirInUseError(
                    f"state directory {state_dir} is in use by nancemakina {owner}: stop that bot first "
                    "(systemctl stop nancemakina, or kill -TERM its pid), or give this run its own state_dir"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}\n".encode())
            cls._held[lock.path] = (fd, 1)
        return lock

    def release(self) -> None:
        """Let go (idempotent); the directory is free once every holder in this process let go."""
        with self._guard:
            if self._released:
                return
            self._released = True
            fd, count = self._held[self.path]
            if count > 1:
                self._held[self.path] = (fd, count - 1)
                return
            del self._held[self.path]
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def claim_state_dir(config: Config) -> StateLock:
    """Hold the config's state directory for this bot, then make sure its ledger may be used: refused if
    empty, damaged or open elsewhere (``LedgerStoreError``). A replay against a fresh in-process exchange
    starts a fresh ledger: the previous one is kept as ``ledger.prev.sqlite3``."""
    state = config.state_path()
    lock = StateLock.acquire(state)
    check_ledger_file(ledger_path(state))
    if config.api.mode is Mode.REPLAY and config.replay.exchange_url is None:
        archive_previous_ledger(state)
    return lock
