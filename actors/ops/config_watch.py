"""Reload when the config file's content changes (``supervisor.watch_config``), as SIGHUP does."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    import threading
    from pathlib import Path


def watch_config(
    path: Path, stop: threading.Event, on_change: Callable[[], object], interval_s: float = 2.0
) -> None:
    """Poll ``path`` every ``interval_s`` until ``stop``; call ``on_change`` when its bytes change.

    Editors replace files rather than rewrite them, so bytes are compared, not inodes or mtimes; a file
    that is briefly missing mid-save is skipped, not taken for a change.
    """
    seen = _read(path)
    while not stop.wait(interval_s):
        current = _read(path)
        if current is not None and current != seen:
            seen = current
            logger.info(f"{path} changed: reloading")
            on_change()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
