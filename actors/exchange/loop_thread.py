"""One background thread owning one asyncio loop: the shape both WebSocket clients share."""

from __future__ import annotations

import asyncio
import logging
import threading

log = logging.getLogger(__name__)


class LoopThread:
    """``start`` runs ``_main`` on a fresh loop in a daemon thread; ``stop`` sets ``_stop_event`` and joins.

    ``_main`` must create ``self._stop_event`` on its loop, set ``self._ready`` once it can serve, and return
    after the stop event is set (cleaning up what it opened).
    """

    name: str

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop_event: asyncio.Event | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self.name}: event loop did not start within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask ``_main`` to finish and join the thread (bounded by ``timeout``)."""
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error(f"{self.name}: thread did not stop within {timeout} s")
            self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except Exception:
            log.exception(f"{self.name}: event loop failed")
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        """Subclasses serve here until ``self._stop_event`` is set."""
        self._stop_event = asyncio.Event()
        self._ready.set()
        await self._stop_event.wait()
