"""What both WebSocket streams (market data and user data) share about their python-binance sockets.

Where they connect (``StreamRoots``), how long to wait before reconnecting after a drop (``backoff_delay``)
and how to close a socket promptly (``close_socket``). Each stream reconnects itself, with the library's own
reconnects off, so that every drop reaches the stream's owner.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, MutableMapping
from typing import Any, Protocol

from binance.ws.constants import WSListenerState
from binance.ws.reconnecting_websocket import ReconnectingWebsocket
from loguru import logger

log = logger.bind(component="ws")


class StreamRoots(Protocol):
    """The venue's WebSocket roots (``BinanceSocketManager.FSTREAM_URL`` / ``DSTREAM_URL`` values)."""

    @property
    def fstream_url(self) -> str: ...
    @property
    def dstream_url(self) -> str: ...


def backoff_delay(
    attempt: int, *, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base × 2^attempt)]."""
    return rand() * min(cap_s, base_s * 2.0 ** min(attempt, 30))


class _ClosingLog(logging.LoggerAdapter[logging.Logger]):
    """The library's logger for a socket we are closing on purpose: everything at DEBUG.

    Told to close, python-binance's read loop reports the closed connection as errors (ConnectionClosedOK,
    "Connection closed. Reconnecting...", "Max reconnections 0 reached", BinanceWebsocketUnableToConnect):
    four ERROR lines on every clean shutdown. They are the close we asked for; the same loop's reports
    while the socket is in use keep their level."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:  # noqa: ARG002 - all DEBUG
        super().log(logging.DEBUG, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return f"(closing) {msg}", kwargs


_CLOSING_LOG = _ClosingLog(logging.getLogger("binance.ws.reconnecting_websocket"))


async def close_socket(sock: ReconnectingWebsocket, timeout_s: float, name: str) -> None:
    """Close the wire first: the library's read loop then wakes now, not after its 10 s recv timeout.

    The read loop is told it is exiting before the wire closes, so it stops instead of reconnecting, and
    what it says about the close goes to DEBUG (``_ClosingLog``)."""
    sock.ws_state = WSListenerState.EXITING
    sock._log = _CLOSING_LOG  # noqa: SLF001 - the library keeps its logger per socket, and says no more
    try:
        if sock.ws is not None:
            await asyncio.wait_for(sock.ws.close(), timeout_s)
        await asyncio.wait_for(sock.__aexit__(None, None, None), timeout_s)
    except Exception as exc:
        log.warning(f"{name}: closing a socket: {type(exc).__name__}: {exc}")
