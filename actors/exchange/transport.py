"""``Transport``: one python-binance client behind a lock, the weight budget, error translation, time sync.

Every request goes through ``Transport.call``: acquire its weight, call the library, adopt the
``X-MBX-USED-WEIGHT-1M`` header, translate failures (429/418 also hold the shared budget). A signed
call syncs the time offset first when it never was (or long ago) and, on -1021, resyncs and retries once.

python-binance's sync ``Client`` stamps signed requests with ``time.time() * 1000 + timestamp_offset``
and never sets the offset itself; ``sync_time`` measures it against the venue's clock (round-trip
midpoint) and sets it on the instance.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from binance import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from ..domain.model import ContractType
from .endpoints import Endpoints, TimeSource, make_client
from .errors import ClockSkew, ExchangeError, IpBanned, RateLimited, Rejected, translate
from .parse import MalformedPayload
from .ratelimit import WeightBudget

_LIBRARY_ERRORS = (BinanceAPIException, BinanceRequestException, requests.RequestException)
DEFAULT_RESYNC_INTERVAL_S = 1800.0
"""Resync the time offset before a signed call when the last sync is older than this."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayCounters:
    """Counters for metrics (copies; safe to keep)."""

    requests: dict[str, int]
    """Requests sent, by endpoint (``GET /fapi/v1/klines``)."""
    errors: dict[str, int]
    """Failures by error class (``Rejected``, ``TransientError``, ...)."""
    time_offset_ms: int | None
    time_syncs: int


def endpoint(method: str, contract: ContractType, path: str, version: int = 1) -> str:
    """Metrics label of a futures endpoint, e.g. ``POST /dapi/v1/order``."""
    root = "fapi" if contract is ContractType.USDT_M else "dapi"
    return f"{method} /{root}/v{version}/{path}"


class Transport:
    """Thread-safe request path of one gateway (see the module docstring)."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        api_key: str | None,
        api_secret: str | None,
        budget: WeightBudget,
        recv_window_ms: int,
        timeout_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.endpoints = endpoints
        self.budget = budget
        self.client: Client = make_client(
            endpoints, api_key, api_secret, timeout_s, recv_window_ms=recv_window_ms
        )
        self.resync_interval_s = DEFAULT_RESYNC_INTERVAL_S
        self._clock = clock
        self._lock = threading.RLock()
        self._stats = threading.Lock()
        """Guards the counters alone, so metrics never wait behind a request held by the budget."""
        self._secrets = tuple(s for s in (api_key, api_secret) if s)
        self._requests: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._offset_ms: int | None = None
        self._synced_at = 0.0
        self._syncs = 0

    # --- requests --------------------------------------------------------------------------------

    def call(
        self,
        name: str,
        weight: int,
        fn: Callable[[], Any],
        *,
        signed: bool = False,
        placing: bool = False,
        expect: frozenset[int] = frozenset(),
    ) -> Any:
        """``fn()`` (a python-binance call) under the lock and the budget; raises ``ExchangeError``.

        ``expect``: rejection codes the caller treats as an answer (e.g. -4046): not counted as errors.
        """
        with self._lock:
            if signed and self._sync_due():
                self._sync_locked()
            try:
                return self._once(name, weight, fn, placing=placing, expect=expect)
            except ClockSkew:
                if not signed:
                    raise
                self._sync_locked()
                return self._once(name, weight, fn, placing=placing, expect=expect)

    def _once(
        self,
        name: str,
        weight: int,
        fn: Callable[[], Any],
        *,
        placing: bool,
        expect: frozenset[int] = frozenset(),
    ) -> Any:
        try:
            self.budget.acquire(weight)
        except RateLimited:
            self.count_error("RateLimited")
            raise
        with self._stats:
            self._requests[name] += 1
        try:
            result = fn()
        except _LIBRARY_ERRORS as exc:
            err = translate(exc, endpoint=name, placing=placing, secrets=self._secrets)
            self._failed(exc, err, counted=not (isinstance(err, Rejected) and err.code in expect))
            raise err from exc
        response = self.client.response
        self._record_headers(getattr(response, "headers", None))
        return result

    def _failed(self, exc: BaseException, err: ExchangeError, *, counted: bool) -> None:
        if counted:
            self.count_error(type(err).__name__)
        if isinstance(exc, BinanceAPIException):
            self._record_headers(getattr(exc.response, "headers", None))
        if isinstance(err, RateLimited):
            self.budget.record_rate_limited(err.retry_after_s, banned=isinstance(err, IpBanned))

    def _record_headers(self, headers: Any) -> None:
        if headers is None:
            return
        value = headers.get("X-MBX-USED-WEIGHT-1M")
        try:
            self.budget.record_used(int(value) if value is not None else None)
        except (TypeError, ValueError):
            return

    def count_error(self, name: str) -> None:
        """Count a failure found after the call (e.g. a malformed payload) under ``name``."""
        with self._stats:
            self._errors[name] += 1

    # --- time ------------------------------------------------------------------------------------

    def _sync_due(self) -> bool:
        return self._offset_ms is None or self._clock() - self._synced_at > self.resync_interval_s

    def sync_time(self) -> int:
        """Measure the venue clock's offset from ``time.time()`` and sign with it; returns the offset (ms)."""
        with self._lock:
            return self._sync_locked()

    def _sync_locked(self) -> int:
        if self.endpoints.time_source is TimeSource.API:
            name, fn = "GET /api/v3/time", self.client.get_server_time
        else:
            name, fn = "GET /fapi/v1/time", self.client.futures_time
        # python-binance stamps with time.time(), not our injectable clock: measure against the same.
        before = time.time()
        body = self._once(name, 1, fn, placing=False)
        after = time.time()
        server_ms = server_time_of(body)
        offset = server_ms - round((before + after) * 500)
        self.client.timestamp_offset = offset
        with self._stats:
            self._offset_ms = offset
            self._syncs += 1
        self._synced_at = self._clock()
        return offset

    @property
    def time_offset_ms(self) -> int | None:
        return self._offset_ms

    def counters(self) -> GatewayCounters:
        with self._stats:
            return GatewayCounters(
                requests=dict(self._requests),
                errors=dict(self._errors),
                time_offset_ms=self._offset_ms,
                time_syncs=self._syncs,
            )


def server_time_of(body: Any) -> int:
    """``{"serverTime": ms}`` → ms."""
    value = body.get("serverTime") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedPayload(f"time: missing or non-integer field 'serverTime' in {str(body)[:80]!r}")
    return value


def sim_clock_of(header: Any) -> int:
    """The local exchange's ``X-SIM-Clock-Ms`` header value → ms."""
    if not isinstance(header, str) or not header.isdigit():
        raise MalformedPayload(f"time: the local exchange sent no replay clock header (got {header!r})")
    return int(header)
