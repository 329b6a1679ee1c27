"""``KlineSocket``: python-binance's ``ReconnectingWebsocket`` with a read loop fit for high-rate market data.

The library's own read loop costs about 33 µs of the event-loop thread per frame; this one 13 µs, the
same as reading its ``websockets`` connection directly (``bench/ws_read_cost.py``, 2.6×). Per frame the
library wraps ``ws.recv()`` in ``asyncio.wait_for`` (a new task), formats the whole decoded message into
a debug f-string whether or not debug logging is on, puts it on an ``asyncio.Queue`` and the consumer
takes it off through a second ``wait_for``. With 250 kline streams closing together every minute, that
is the difference between a 3 ms and an 8 ms burst on the thread everything else waits behind.

This subclass keeps everything else of the library's socket — the URL it connects to, the handshake and
proxy support, ``__aenter__``/``__aexit__`` — and replaces only ``_read_loop``: each frame is decoded
with the library's ``json_loads`` (orjson when installed) and handed to ``on_frame(message,
received_ns)`` on the loop thread, in order, with no queue in between. When the connection ends, for
whatever reason, ``ended`` resolves with the reason; the owner reconnects and backfills. There is no
read queue to overflow: a consumer that falls behind leaves frames in ``websockets``' bounded buffer and
then in the kernel's, which is the back-pressure Binance itself sees.

A frame that is not valid JSON is counted, reported through ``on_malformed`` and skipped: the connection
stays up, and the kline it may have carried is recovered by the gap check of the next one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from binance.ws.reconnecting_websocket import ReconnectingWebsocket

FrameSink = Callable[[Any, int], None]
"""``(decoded message, time.perf_counter_ns() when the frame was read)``; runs on the loop thread."""


def market_socket_address(root: str, *, usd_m: bool) -> tuple[str, str]:
    """(url, prefix) of a combined market stream, as ``BinanceSocketManager.futures_multiplex_socket``
    builds them: USDⓈ-M ``{FSTREAM_URL}market/stream?streams=…``, COIN-M ``{DSTREAM_URL}stream?streams=…``.
    """
    return (f"{root}market/" if usd_m else root), "stream?streams="


class KlineSocket(ReconnectingWebsocket):  # type: ignore[misc]  # the library is untyped
    """See the module docstring. ``MAX_RECONNECTS`` is 0: the owner reconnects (and backfills)."""

    MAX_RECONNECTS = 0

    def __init__(
        self,
        *,
        url: str,
        prefix: str,
        streams: list[str],
        on_frame: FrameSink,
        on_malformed: Callable[[str], None],
    ) -> None:
        super().__init__(url=url, path="/".join(streams), prefix=prefix)
        self._on_frame = on_frame
        self._on_malformed = on_malformed
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        """Resolves with why the read loop stopped (``"closed: …"`` or ``"error: …"``)."""

    async def _read_loop(self) -> None:
        ws = self.ws
        loads = self.json_loads
        on_frame = self._on_frame
        reason = "closed: read loop ended"
        try:
            if ws is None:
                reason = "closed: no connection"
                return
            while True:
                raw = await ws.recv()
                received_ns = time.perf_counter_ns()
                try:
                    message = loads(raw)
                except ValueError as exc:
                    self._on_malformed(f"not JSON ({exc}): {str(raw)[:80]!r}")
                    continue
                on_frame(message, received_ns)
        except asyncio.CancelledError:
            reason = "closed: cancelled"
            raise
        except Exception as exc:  # ConnectionClosed*, OSError, … : the owner decides what follows
            reason = f"error: {type(exc).__name__}: {exc}"
        finally:
            self._handle_read_loop = None  # what ``__aexit__`` (``_kill_read_loop``) waits for
            if not self.ended.done():
                self.ended.set_result(reason)
