"""Fault injection: what the next requests, streams, stops and listenKeys suffer.

Every fault is armed from Python (``LocalExchange.faults``) or over ``/sim/v1/faults/...`` and consumed
by the REST and stream layers on the exchange's event loop. What real venues and networks do:

* HTTP answers instead of the real one: 5xx, 429/418 with Retry-After, ``html`` (a CDN's 502 page),
  ``-1021`` (timestamp outside recvWindow); these are answered without executing the request;
* answers lost or damaged *after* the request executed: ``unknown`` (503 -1007), ``truncated`` (200 with
  half the JSON), ``empty`` (200, no body), ``reset`` (the connection dies mid-body), ``slow`` (the answer
  comes ``seconds`` later, past the client's timeout);
* WebSocket frames: ``malformed`` (garbage text before the next frame), ``truncated`` (the next frame cut in
  half: its content is lost), ``unknown-stream`` (a frame for a stream nobody subscribed);
* a stop the exchange accepts and then expires or cancels on its own (``StopExpiry``);
* clock skew: the exchange's clock runs ``clock_skew_ms`` ahead (or behind), so signed requests stamped
  on an old offset get -1021 until the client resyncs.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

EXECUTED_KINDS = frozenset({"unknown", "truncated", "empty", "reset", "slow"})
"""HTTP faults that let the request execute and then lose or damage its answer."""
HTTP_FAULT_KINDS = frozenset({"500", "502", "503", "504", "429", "418", "html", "-1021"}) | EXECUTED_KINDS
WS_FRAME_KINDS = frozenset({"malformed", "truncated", "unknown-stream"})
WS_TARGETS = frozenset({"market", "user"})
STOP_END_STATUSES = frozenset({"EXPIRED", "CANCELED"})
FIRED_LOG = 20_000
"""Fired faults kept in ``Faults.log`` (oldest dropped first)."""


@dataclass(slots=True, kw_only=True)
class HttpFault:
    """Answer the next ``count`` requests matching ``path`` (prefix) and ``method`` with ``kind``."""

    kind: str
    count: int
    path: str = ""
    method: str = ""
    retry_after_s: int = 1
    seconds: float = 0.0
    """``slow``: how long the answer is held back after the request executed."""
    skip: int = 0
    """Let this many matching requests through first (e.g. an entry, to hit the close that follows it)."""
    until: float = 0.0
    """When set (``time.monotonic()``), every matching request until then, whatever ``count`` says: an
    outage of a known length."""

    def matches(self, method: str, path: str) -> bool:
        live = self.count > 0 if not self.until else time.monotonic() < self.until
        return live and path.startswith(self.path) and self.method in {"", method}


@dataclass(slots=True, kw_only=True)
class WsFrameFault:
    """Damage the next ``count`` frames sent to ``target`` clients (market streams or user-data streams)."""

    kind: str
    count: int
    target: str = "market"


@dataclass(slots=True, kw_only=True)
class StopExpiry:
    """The next ``count`` STOP_MARKET algo orders (of ``symbol``, '' = any) are accepted, then ended by the
    exchange ``after_s`` seconds later with ``status`` (EXPIRED or CANCELED) and an ALGO_UPDATE."""

    count: int
    after_s: float = 0.5
    status: str = "EXPIRED"
    symbol: str = ""


@dataclass(slots=True, kw_only=True)
class Faults:
    """Armed faults; mutated only on the exchange's loop (the Python API hops onto it)."""

    http: list[HttpFault] = field(default_factory=list)
    reject_codes: list[tuple[int, str]] = field(default_factory=list)
    """Rejections for the next orders (POST order / algoOrder), oldest first."""
    latency_s: float = 0.0
    latency_path: str = ""
    stalls: dict[str, float] = field(default_factory=dict)
    """Stream name ('' = every stream) → loop time until which nothing is sent on it."""
    fired: dict[str, int] = field(default_factory=dict)
    log: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=FIRED_LOG))
    """(wall time, kind, what it hit) of each fault as it fired: what an observer holds a symptom against."""
    ws_frames: list[WsFrameFault] = field(default_factory=list)
    stop_expiries: list[StopExpiry] = field(default_factory=list)
    clock_skew_ms: int = 0
    """How far the exchange's wall clock runs ahead of the host's (negative: behind)."""

    def add_http(self, fault: HttpFault) -> None:
        if fault.kind not in HTTP_FAULT_KINDS:
            raise ValueError(f"unknown HTTP fault {fault.kind!r}; one of {sorted(HTTP_FAULT_KINDS)}")
        if fault.count < 1:
            raise ValueError(f"count must be at least 1, got {fault.count}")
        self.http.append(fault)

    def add_ws_frame(self, fault: WsFrameFault) -> None:
        if fault.kind not in WS_FRAME_KINDS:
            raise ValueError(f"unknown WebSocket frame fault {fault.kind!r}; one of {sorted(WS_FRAME_KINDS)}")
        if fault.target not in WS_TARGETS:
            raise ValueError(f"target must be one of {sorted(WS_TARGETS)}, got {fault.target!r}")
        if fault.count < 1:
            raise ValueError(f"count must be at least 1, got {fault.count}")
        self.ws_frames.append(fault)

    def add_stop_expiry(self, fault: StopExpiry) -> None:
        if fault.status not in STOP_END_STATUSES:
            raise ValueError(f"status must be one of {sorted(STOP_END_STATUSES)}, got {fault.status!r}")
        if fault.count < 1 or fault.after_s < 0:
            raise ValueError(f"need count >= 1 and after >= 0, got {fault.count} and {fault.after_s}")
        self.stop_expiries.append(fault)

    def take_ws_frame(self, target: str) -> WsFrameFault | None:
        for fault in self.ws_frames:
            if fault.target == target:
                fault.count -= 1
                self._fire(f"ws-{fault.kind}", target)
                if fault.count == 0:
                    self.ws_frames.remove(fault)
                return fault
        return None

    def take_stop_expiry(self, symbol: str) -> StopExpiry | None:
        for fault in self.stop_expiries:
            if fault.symbol in {"", symbol}:
                fault.count -= 1
                self._fire("stop-expiry", f"{symbol} {fault.status} after {fault.after_s:g}s")
                if fault.count == 0:
                    self.stop_expiries.remove(fault)
                return fault
        return None

    def take_http(self, method: str, path: str) -> HttpFault | None:
        if self.http and any(f.until and time.monotonic() >= f.until for f in self.http):
            self.http = [f for f in self.http if not f.until or time.monotonic() < f.until]
        for fault in self.http:
            if fault.matches(method, path):
                if fault.skip:
                    fault.skip -= 1
                    return None
                self._fire(fault.kind, f"{method} {path}")
                if not fault.until:
                    fault.count -= 1
                    if fault.count == 0:
                        self.http.remove(fault)
                return fault
        return None

    def take_reject(self) -> tuple[int, str] | None:
        if not self.reject_codes:
            return None
        code = self.reject_codes.pop(0)
        self._fire("reject", str(code[0]))
        return code

    def latency_for(self, method: str, path: str) -> float:
        if not self.latency_s or not path.startswith(self.latency_path):
            return 0.0
        self._fire("latency", f"{method} {path} {self.latency_s:g}s")
        return self.latency_s

    def _fire(self, kind: str, detail: str) -> None:
        self.fired[kind] = self.fired.get(kind, 0) + 1
        self.log.append((time.time(), kind, detail))

    def stalled(self, stream: str, now: float) -> bool:
        until = max(self.stalls.get(stream, 0.0), self.stalls.get("", 0.0))
        return now < until


UNKNOWN_STREAM = "nmunknownusdt@kline_1m"
"""A stream no client subscribes: frames for it test that a client drops what it did not ask for."""


def damage_frame(fault: WsFrameFault, text: str, *, combined: bool) -> list[str]:
    """What goes on the wire instead of the frame ``text`` (in order)."""
    if fault.kind == "malformed":
        return ['{"stream":"' + UNKNOWN_STREAM + '","data":{"e":"kline",' + "\x00\ufffd", text]
    if fault.kind == "truncated":
        return [text[: max(1, len(text) // 2)]]
    if combined:
        stray = '{"stream":"' + UNKNOWN_STREAM + '","data":{"e":"kline","E":0,"s":"NMUNKNOWNUSDT","k":{}}}'
    else:
        stray = '{"e":"STRATEGY_UPDATE","T":0,"E":0,"su":{"si":1,"st":"UNKNOWN","ss":"NEW"}}'
    return [stray, text]
