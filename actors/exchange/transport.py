"""``Transport``: one python-binance client behind a lock, the weight budget, error translation, time sync.

Every request goes through ``Transport.call``: acquire its weight, call the library, adopt the
``X-MBX-USED-WEIGHT-1M`` and ``X-MBX-ORDER-COUNT-*`` headers (and the local exchange's ``X-SIM-Clock-Ms``),
translate failures (429/418 also hold the shared budget). A new order acquires no weight: it counts against
the account's order rate (``OrderBudget``) and waits only for an IP ban, so market-data reads can never
delay a stop (the time sync an order needs passes the weight budget like the order does).

python-binance's sync ``Client`` stamps signed requests with ``time.time() * 1000 + timestamp_offset``
and never sets the offset itself. The offset is the venue's ``ServerClock`` (``exchange/server_clock.py``),
shared by every gateway of the venue and so measured once per process, not once per gateway: a signed call
syncs it first only if nobody has yet, or — never for an order — once it is older than the resync interval;
on -1021 it resyncs and retries once.
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
from .endpoints import SIM_CLOCK_HEADER, Endpoints, TimeSource, make_client
from .errors import ORDER_RATE_EXCEEDED, ClockSkew, ExchangeError, IpBanned, RateLimited, Rejected, translate
from .order_rate import OrderBudget
from .parse import MalformedPayload
from .ratelimit import WeightBudget
from .server_clock import ServerClock

_LIBRARY_ERRORS = (BinanceAPIException, BinanceRequestException, requests.RequestException)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayCounters:
    """Counters for metrics (copies; safe to keep)."""

    requests: dict[str, int]
    """Requests sent, by endpoint (``GET /fapi/v1/klines``)."""
    errors: dict[str, int]
    """Failures by error class (``Rejected``, ``TransientError``, ...)."""
    time_offset_ms: int | None
    time_syncs: int
    """Syncs this gateway made (the venue's other gateways share their result)."""


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
        clock: ServerClock,
        orders: OrderBudget | None = None,
        bulk: bool = False,
        max_wait_s: float | None = None,
    ) -> None:
        """``bulk``: this gateway's reads (warm-up and backfill klines) stay inside the budget's bulk share,
        leaving the rest to the reads that keep positions protected. ``max_wait_s``: the longest a read waits
        for the weight budget before ``RateLimited`` (None: the budget's own), so an actor that must stay
        responsive retries later instead of blocking its mailbox for a minute."""
        self.endpoints = endpoints
        self.budget = budget
        self.clock = clock
        self.orders = orders or OrderBudget()
        self.bulk = bulk
        self.max_wait_s = max_wait_s
        self.client: Client = make_client(
            endpoints, api_key, api_secret, timeout_s, recv_window_ms=recv_window_ms
        )
        self._lock = threading.RLock()
        self._stats = threading.Lock()
        """Guards the counters alone, so metrics never wait behind a request held by the budget."""
        self._secrets = tuple(s for s in (api_key, api_secret) if s)
        self._requests: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
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
        protective: bool = False,
        expect: frozenset[int] = frozenset(),
    ) -> Any:
        """``fn()`` (a python-binance call) under the lock and the budget; raises ``ExchangeError``.

        ``placing``: a new order (no IP weight; the order rate; ``protective`` ones may use its reserve).
        ``expect``: rejection codes the caller treats as an answer (e.g. -4046): not counted as errors.
        """
        with self._lock:
            if signed:
                clock = self.clock
                if clock.never_synced() or (not placing and clock.sync_due()):
                    self._sync_locked(admit=placing)
                self.client.timestamp_offset = clock.offset_ms or 0
            try:
                return self._once(name, weight, fn, placing=placing, protective=protective, expect=expect)
            except ClockSkew:
                if not signed:
                    raise
                self._sync_locked(admit=placing)
                return self._once(name, weight, fn, placing=placing, protective=protective, expect=expect)

    def _once(
        self,
        name: str,
        weight: int,
        fn: Callable[[], Any],
        *,
        placing: bool,
        protective: bool = False,
        admit: bool = False,
        expect: frozenset[int] = frozenset(),
    ) -> Any:
        try:
            if placing:
                self.budget.admit()
                self.orders.acquire(protective=protective)
            elif admit:
                self.budget.admit(weight)
            else:
                self.budget.acquire(weight, bulk=self.bulk, max_wait_s=self.max_wait_s)
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
            if err.code == ORDER_RATE_EXCEEDED:  # the account's order rate, not the IP's weight
                self.orders.record_refused()
            else:
                self.budget.record_rate_limited(err.retry_after_s, banned=isinstance(err, IpBanned))

    def _record_headers(self, headers: Any) -> None:
        if headers is None:
            return
        replay_clock = replay_clock_in(headers)
        if replay_clock is not None:
            self.clock.observe(replay_clock)
        self.budget.record_used(_header_int(headers, "X-MBX-USED-WEIGHT-1M"))
        ten_s, minute = (
            _header_int(headers, "X-MBX-ORDER-COUNT-10S"),
            _header_int(headers, "X-MBX-ORDER-COUNT-1M"),
        )
        if ten_s is not None or minute is not None:
            self.orders.record_counts(ten_s, minute)

    def count_error(self, name: str) -> None:
        """Count a failure found after the call (e.g. a malformed payload) under ``name``."""
        with self._stats:
            self._errors[name] += 1

    # --- time ------------------------------------------------------------------------------------

    def sync_time(self) -> int:
        """Measure the venue clock's offset from ``time.time()`` for all its gateways; returns it (ms)."""
        with self._lock:
            return self._sync_locked()

    def _sync_locked(self, *, admit: bool = False) -> int:
        if self.endpoints.time_source is TimeSource.API:
            name, fn = "GET /api/v3/time", self.client.get_server_time
        else:
            name, fn = "GET /fapi/v1/time", self.client.futures_time
        # python-binance stamps with time.time(), not our injectable clock: measure against the same.
        before = time.time()
        body = self._once(name, 1, fn, placing=False, admit=admit)
        after = time.time()
        offset = self.clock.record_sync(server_time_of(body), before, after)
        self.client.timestamp_offset = offset
        with self._stats:
            self._syncs += 1
        return offset

    @property
    def time_offset_ms(self) -> int | None:
        return self.clock.offset_ms

    def counters(self) -> GatewayCounters:
        with self._stats:
            return GatewayCounters(
                requests=dict(self._requests),
                errors=dict(self._errors),
                time_offset_ms=self.clock.offset_ms,
                time_syncs=self._syncs,
            )


def _header_int(headers: Any, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def server_time_of(body: Any) -> int:
    """``{"serverTime": ms}`` → ms."""
    value = body.get("serverTime") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedPayload(f"time: missing or non-integer field 'serverTime' in {str(body)[:80]!r}")
    return value


def replay_clock_in(headers: Any) -> int | None:
    """The local exchange's replay clock in an answer's ``X-SIM-Clock-Ms`` header, ms; None without one."""
    value = headers.get(SIM_CLOCK_HEADER)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def sim_clock_of(headers: Any) -> int:
    """The replay clock of a local exchange's answer that must carry one (its ``GET /time``), ms."""
    clock = replay_clock_in(headers)
    if clock is None:
        got = headers.get(SIM_CLOCK_HEADER)
        raise MalformedPayload(f"time: the local exchange sent no replay clock header (got {got!r})")
    return clock
