"""Fault injection: what the next requests, streams and listenKeys suffer.

Every fault is armed from Python (``LocalExchange.faults``) or over ``/sim/v1/faults/...`` and consumed
by the REST and stream layers on the exchange's event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HTTP_FAULT_KINDS = frozenset({"500", "502", "503", "504", "429", "418", "unknown"})
"""``unknown`` = execute the request, then answer 503 -1007 (execution status unknown)."""


@dataclass(slots=True, kw_only=True)
class HttpFault:
    """Answer the next ``count`` requests matching ``path`` (prefix) and ``method`` with ``kind``."""

    kind: str
    count: int
    path: str = ""
    method: str = ""
    retry_after_s: int = 1

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and path.startswith(self.path) and self.method in {"", method}


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

    def add_http(self, fault: HttpFault) -> None:
        if fault.kind not in HTTP_FAULT_KINDS:
            raise ValueError(f"unknown HTTP fault {fault.kind!r}; one of {sorted(HTTP_FAULT_KINDS)}")
        self.http.append(fault)

    def take_http(self, method: str, path: str) -> HttpFault | None:
        for fault in self.http:
            if fault.matches(method, path):
                fault.count -= 1
                self.fired[fault.kind] = self.fired.get(fault.kind, 0) + 1
                if fault.count == 0:
                    self.http.remove(fault)
                return fault
        return None

    def take_reject(self) -> tuple[int, str] | None:
        if not self.reject_codes:
            return None
        self.fired["reject"] = self.fired.get("reject", 0) + 1
        return self.reject_codes.pop(0)

    def latency_for(self, path: str) -> float:
        return self.latency_s if path.startswith(self.latency_path) else 0.0

    def stalled(self, stream: str, now: float) -> bool:
        until = max(self.stalls.get(stream, 0.0), self.stalls.get("", 0.0))
        return now < until
