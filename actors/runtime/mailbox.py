"""``Mailbox``: an actor's inbox that knows when its actor is idle, so a caller may handle a message itself.

A message told to an actor wakes the actor's thread, which then needs the GIL and a CPU; at a candle close
the market-data reader pays two thread switches per pair for that (``bench/live_latency.py`` and
``bench/universe.py``: about 0.1 ms per candle at 590 pairs on one CPU, more than the candle's own work).
When the actor is idle — nothing queued, nothing being handled — the caller may run the handler on its
own thread instead (``Actor.run_here``): the message is handled exactly as if it had been told at that
instant, because

* ``pending`` counts the messages put and not yet handled, under the queue's own mutex, so a caller sees
  a message queued or in progress and tells instead;
* ``turnstile`` is held while any message is handled, by the actor's thread or by a caller, so two
  handlers of one actor never run at once, and a message told while a caller handles one waits for it.

Like Akka's calling-thread dispatcher, but only when it cannot reorder anything: messages stay handled
one at a time, in the order they were told.
"""

from __future__ import annotations

import queue
import threading
import weakref
from typing import Any


class Mailbox(queue.Queue[Any]):
    """An unbounded FIFO inbox that counts what it holds and what is being handled (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = 0
        """Messages put and not yet handled, plus one while a caller handles one (under ``mutex``)."""
        self.turnstile = threading.Lock()
        """Held while a message is handled, on whichever thread."""
        self.owner: weakref.ref[Any] | None = None
        """The actor this is the inbox of (weak: the actor holds its inbox)."""
        self.handled_here = 0
        """Messages callers handled on their own threads."""

    def _put(self, item: Any) -> None:  # called by ``put`` under ``mutex``
        self.pending += 1
        super()._put(item)

    def settle(self) -> None:
        """A message (told, or reserved by a caller) is handled."""
        with self.mutex:
            self.pending -= 1

    def reserve(self) -> bool:
        """With ``turnstile`` held: if nothing is queued or being handled, count one message in (True)."""
        with self.mutex:
            if self.pending:
                return False
            self.pending = 1
            return True
