"""The position ledger's files on disk: ``<state_dir>/ledger.sqlite3``, its WAL, and the previous run's.

A ledger is created whole (built under a temporary name, then renamed), so a ``ledger.sqlite3`` that exists
is a database with its tables. Before anything opens it, :func:`check_ledger_file` refuses what must not be
traded on, with what to do about it:

- an empty file (a ledger is never empty: it was truncated, its history is gone from it);
- a file whose header is not SQLite's (damaged): SQLite itself must not open it, because opening a database
  it cannot read as WAL deletes the ``-wal`` file beside it, and the WAL may hold every recent commit;
- a ``-wal`` file without its database.

The caller's refusal leaves every file as it found it. Nothing here deletes or moves a file another live
process has open (:func:`holders`), and a WAL is never separated from its database: the previous run's
ledger is checkpointed into one file before it is moved aside.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from loguru import logger

LEDGER_FILE = "ledger.sqlite3"
PREVIOUS_LEDGER_FILE = "ledger.prev.sqlite3"
SQLITE_MAGIC = b"SQLite format 3\x00"
_SIDECARS = ("-wal", "-shm")


class LedgerStoreError(Exception):
    """The ledger file cannot be used; the message names it and what to do. The bot must not trade
    without its ledger."""


def ledger_path(state_dir: Path) -> Path:
    return state_dir / LEDGER_FILE


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def check_ledger_file(path: Path) -> bool:
    """Refuse a ledger file that must not be opened (module docstring); True if it exists, False if the
    ledger is yet to be created. Reads 16 bytes at most; never opens the file with SQLite."""
    wal = Path(f"{path}-wal")
    size, wal_size = _size(path), _size(wal) or 0
    keep = "keep it and its -wal, -shm files together"
    if size is None:
        if wal_size:
            raise LedgerStoreError(
                f"ledger database {path} is missing but its WAL {wal} ({wal_size} bytes) holds commits: "
                f"restore {path.name} from a backup, or move {wal.name} aside to start a new, empty ledger"
            )
        return False
    if size == 0:
        raise LedgerStoreError(
            f"ledger database {path} is empty (0 bytes): a ledger is never created empty, so this one was "
            "truncated and the trading history it held is gone from it. Restore it from a backup; to start "
            f"a new, empty ledger on purpose, move it aside first (mv {path} {path}.empty)"
        )
    with path.open("rb") as f:
        header = f.read(len(SQLITE_MAGIC))
    if header != SQLITE_MAGIC:
        held = f"; its WAL ({wal_size} bytes) holds the latest commits, {keep}" if wal_size else ""
        raise LedgerStoreError(
            f"ledger database {path} is damaged: its header is not an SQLite database's{held}. The bot will "
            "not open it (SQLite would delete the WAL). Restore it from a backup (`sqlite3 ... .recover` may "
            f"save the rest); to start a new, empty ledger, move the files aside (mv {path} {path}.damaged)"
        )
    return True


def holders(paths: list[Path]) -> list[tuple[int, str]]:
    """Other live processes that have one of ``paths`` open: (pid, command line). Linux (``/proc``); empty
    where processes cannot be inspected."""
    wanted = {str(p.resolve()) for p in paths if p.exists()}
    found: list[tuple[int, str]] = []
    if not wanted or not Path("/proc").is_dir():
        return found
    own = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == own:
            continue
        try:
            held = any(str(fd.readlink()) in wanted for fd in (proc / "fd").iterdir())
            if held:
                cmd = (proc / "cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace").strip()
                found.append((int(proc.name), cmd[:120]))
        except OSError:
            continue  # gone meanwhile, or not ours to inspect
    return found


def archive_previous_ledger(state_dir: Path) -> None:
    """A replay against a fresh in-process exchange starts from a fresh ledger.

    The previous run's ledger is kept as ``ledger.prev.sqlite3`` (replacing the one before it) so ``report``
    shows one run, not a mix. Refused (``LedgerStoreError``) while another process has it open, or when it
    is damaged; its WAL is checkpointed into it first, so database and WAL never part.
    """
    current = ledger_path(state_dir)
    if not check_ledger_file(current):
        return
    files = [current, *(Path(f"{current}{s}") for s in _SIDECARS)]
    busy = holders(files)
    if busy:
        who = ", ".join(f"pid {pid} ({cmd})" for pid, cmd in busy)
        raise LedgerStoreError(
            f"ledger database {current} is open in {who}: a replay would move it aside as the previous "
            "run's. Close that process first (or give this run its own state_dir)"
        )
    try:
        db = sqlite3.connect(current, isolation_level=None)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()  # the last connection: SQLite removes the (now empty) WAL and the -shm
    except sqlite3.Error as exc:
        raise LedgerStoreError(f"cannot fold the WAL of {current} into it before keeping it: {exc}") from exc
    if any(_size(Path(f"{current}{s}")) for s in _SIDECARS[:1]):
        raise LedgerStoreError(f"{current}-wal is still in use: not moving {current} aside")
    previous = state_dir / PREVIOUS_LEDGER_FILE
    for suffix in _SIDECARS:  # the replaced ledger's own sidecars must not pair up with the moved one
        Path(f"{previous}{suffix}").unlink(missing_ok=True)
    current.replace(previous)
    Path(f"{current}-shm").unlink(missing_ok=True)
    logger.info(f"replay: previous ledger kept as {previous}")
