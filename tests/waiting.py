"""Waiting for something to happen in a test: poll a condition until a deadline, never sleep a fixed time.

Used only where the code under test offers no event or future to wait on; the deadline turns a hang into
a failure that names what never happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.01) -> Any:
    """Poll ``predicate()`` until it is truthy and return its value; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        pause.wait(poll_s)
