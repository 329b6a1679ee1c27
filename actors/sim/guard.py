"""Request admission as Binance does it: API key, HMAC-SHA256 signature, timestamp window, IP weight.

Signed requests are checked against the wall clock, as Binance does: a ``timestamp`` is admitted when it is
less than 1 s ahead and at most ``recvWindow`` ms (default 5000, at most 60000) behind; -1021 otherwise.
``/fapi/v1/time`` reports that wall clock too, so a client syncing to it (ccxt ``adjustForTimeDifference``)
signs correctly. The weight window is the wall-clock minute, as Binance's is.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from .config import SimConfig
from .errors import SimError, known, mandatory

NONE, KEY, SIGNED = "NONE", "USER_STREAM", "SIGNED"


@dataclass(slots=True)
class WeightWindow:
    """IP request weight of the current wall-clock minute, and the account's new orders per 10 s and 1 min.

    As on Binance, a new order (``POST order`` / ``POST algoOrder``) costs no IP weight: it counts against
    ``ORDERS`` limits instead (``X-MBX-ORDER-COUNT-10S`` / ``-1M``), answered 429 -1015 when exceeded.
    """

    limit: int
    minute: int = 0
    used: int = 0
    orders: int = 0
    """New orders in the current minute."""
    order_limit_10s: int = 300
    order_limit_1m: int = 1200
    ten: int = 0
    orders_10s: int = 0

    def charge(self, weight: int, *, order: bool = False, now: float | None = None) -> int | None:
        """Add ``weight``; returns seconds to wait (Retry-After) when the minute's limit is exceeded."""
        now = time.time() if now is None else now
        self._roll(now)
        self.used += weight
        if order:
            self.orders += 1
            self.orders_10s += 1
        if self.used > self.limit:
            return max(1, int(60 - now % 60) + 1)
        return None

    def order_refused(self, now: float | None = None) -> tuple[int, str] | None:
        """After charging a new order: (Retry-After seconds, message) when an order limit is exceeded."""
        now = time.time() if now is None else now
        self._roll(now)
        if self.orders_10s > self.order_limit_10s:
            limit = f"{self.order_limit_10s} orders per TEN_SECONDS"
            return max(1, int(10 - now % 10) + 1), f"Too many new orders; current limit is {limit}."
        if self.orders > self.order_limit_1m:
            limit = f"{self.order_limit_1m} orders per MINUTE"
            return max(1, int(60 - now % 60) + 1), f"Too many new orders; current limit is {limit}."
        return None

    def _roll(self, now: float) -> None:
        minute, ten = int(now // 60), int(now // 10)
        if minute != self.minute:
            self.minute, self.used, self.orders = minute, 0, 0
        if ten != self.ten:
            self.ten, self.orders_10s = ten, 0


def _strip_signature(text: str) -> str:
    return "&".join(p for p in text.split("&") if p and not p.startswith("signature="))


def check(
    security: str,
    *,
    headers: Mapping[str, str],
    params: Mapping[str, str],
    raw_query: str,
    raw_body: str,
    config: SimConfig,
    skew_ms: int = 0,
) -> None:
    """Raise the Binance error a request deserves, or return when it is admitted."""
    if security == NONE:
        return
    key = headers.get("X-MBX-APIKEY")
    if not key:
        raise known(-2014, 401)
    if key != config.api_key:
        raise known(-2015, 401)
    if security != SIGNED:
        return
    if "timestamp" not in params:
        raise mandatory("timestamp")
    signature = params.get("signature")
    if not signature:
        raise mandatory("signature")
    try:
        stamp = int(params["timestamp"])
        window = int(params.get("recvWindow", "5000"))
    except ValueError:
        raise SimError(
            -1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'."
        ) from None
    if window > config.recv_window_max_ms or window <= 0:
        raise SimError(-1131, "recvWindow must be less than 60000")
    total = _strip_signature(raw_query) + _strip_signature(raw_body)
    secret = config.api_secret.encode()
    candidates = {total, unquote_plus(total)}
    if not any(
        hmac.compare_digest(hmac.new(secret, c.encode(), hashlib.sha256).hexdigest(), signature)
        for c in candidates
    ):
        raise known(-1022)
    wall = int(time.time() * 1000) + skew_ms
    if not (stamp < wall + 1000 and wall - stamp <= window):
        raise known(-1021)


Weight = Callable[[dict[str, str]], int]
"""A route's request weight from its parameters."""


def klines_param_weight(p: dict[str, str]) -> int:
    """klines' weight by its ``limit`` parameter (default 500)."""
    try:
        return klines_weight(int(p.get("limit") or 500))
    except ValueError:
        return 1


def klines_weight(limit: int) -> int:
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10
