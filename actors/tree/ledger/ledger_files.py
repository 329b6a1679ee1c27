"""The position ledger's files on disk: ``<state_dir>/ledger.sqlite3`` and its WAL, and the previous run's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from pathlib import Path

LEDGER_FILE = "ledger.sqlite3"
PREVIOUS_LEDGER_FILE = "ledger.prev.sqlite3"


def ledger_path(state_dir: Path) -> Path:
    return state_dir / LEDGER_FILE


def archive_previous_ledger(state_dir: Path) -> None:
    """A replay against a fresh in-process exchange starts from a fresh ledger.

    The previous run's ledger (with its WAL) is kept as ``ledger.prev.sqlite3`` so ``report`` shows one
    run, not a mix.
    """
    if not ledger_path(state_dir).exists():
        return
    for suffix in ("", "-wal", "-shm"):
        old = state_dir / f"{LEDGER_FILE}{suffix}"
        if old.exists():
            old.replace(state_dir / f"{PREVIOUS_LEDGER_FILE}{suffix}")
    logger.info(f"replay: previous ledger kept as {state_dir / PREVIOUS_LEDGER_FILE}")
