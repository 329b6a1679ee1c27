"""Kline stream names and frames: the Binance JSON of the market streams, read into ``Kline`` here.

This is the venue boundary of the market data: ``kline_stream`` names a stream the way Binance spells it,
``parse_kline_frame`` turns one combined-stream frame into a ``Kline`` (or says it is not one), and a frame
that claims to be a kline but cannot be read raises ``MalformedFrameError`` naming its stream.
``unclosed_update_price`` is the cheap read for the frames that are most of the traffic: an unclosed
update's symbol and close price, without building a ``Kline``.
"""

from __future__ import annotations

from typing import Any

from ..domain.model import TIMEFRAME_MS, Kline

_KLINE_EVENTS = frozenset({"kline", "continuous_kline"})
"""The ``data.e`` values of kline frames (a contract's klines, and continuous-contract klines)."""


class MalformedFrameError(ValueError):
    """A frame that claims to be a kline but cannot be read; ``stream`` names where it came from."""

    def __init__(self, stream: str, reason: str) -> None:
        super().__init__(f"malformed frame on stream {stream!r}: {reason}")
        self.stream = stream


def kline_stream(symbol: str, timeframe: str) -> str:
    """Binance stream name, e.g. ``btcusdt@kline_1m``."""
    return f"{symbol.lower()}@kline_{timeframe}"


def parse_kline_frame(frame: Any) -> Kline | None:
    """A combined-stream frame ``{"stream", "data": {"e": "kline", "k": {...}}}`` → ``Kline``.

    None for frames that are not klines (SUBSCRIBE replies, other events); ``MalformedFrameError`` otherwise.
    """
    if not isinstance(frame, dict):
        raise MalformedFrameError("?", f"expected a JSON object, got {type(frame).__name__}")
    data = frame.get("data")
    if data is None:
        return None
    stream = str(frame.get("stream", "?"))
    if not isinstance(data, dict):
        raise MalformedFrameError(stream, "'data' is not an object")
    if data.get("e") not in _KLINE_EVENTS:
        return None
    try:
        k = data["k"]
        closed = k["x"]
        timeframe = k["i"]
        if not isinstance(closed, bool) or timeframe not in TIMEFRAME_MS:
            raise MalformedFrameError(stream, f"bad 'x'={closed!r} or 'i'={timeframe!r}")
        return Kline(
            symbol=str(k.get("s") or data.get("s") or data["ps"]),
            timeframe=timeframe,
            open_time_ms=int(k["t"]),
            open=float(k["o"]),
            high=float(k["h"]),
            low=float(k["l"]),
            close=float(k["c"]),
            volume=float(k["v"]),
            closed=closed,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, MalformedFrameError):
            raise
        raise MalformedFrameError(stream, f"{type(exc).__name__}: {exc}") from exc


def unclosed_update_price(frame: Any) -> tuple[str, float] | None:
    """``(symbol, close)`` of an unclosed kline update with a readable symbol and close, else None.

    Anything else (closed klines, replies, frames missing those fields) is left to ``parse_kline_frame``,
    which also reports malformed frames.
    """
    if type(frame) is not dict:
        return None
    data = frame.get("data")
    if type(data) is not dict or data.get("e") not in _KLINE_EVENTS:
        return None
    k = data.get("k")
    if type(k) is not dict or k.get("x") is not False:
        return None
    symbol = k.get("s") or data.get("s") or data.get("ps")
    try:
        price = float(k["c"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(symbol, str) or not symbol:
        return None
    return symbol, price
