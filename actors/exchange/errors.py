"""Exchange errors named for their recovery, and the translation of python-binance/requests errors into them.

Recovery by class:

* ``TransientError``: retry with backoff (timeouts, connection errors, 5xx other than "status unknown").
* ``RateLimited``: wait ``retry_after_s`` (HTTP 429) before any request; ``IpBanned`` (418) is a longer one.
* ``UnknownStatus``: an order-placing call may or may not have executed: query it by its client id before
  any retry, never resend blind.
* ``Rejected``: the venue refused the request on business grounds (margin, min notional, precision, ...);
  report it as an event, do not retry unchanged.
* ``AuthError``: key, signature or permissions are wrong: fatal, stop trading and tell an operator.
* ``ClockSkew``: the signed timestamp fell outside recvWindow: resync the time offset, then retry once.

Messages never carry the API key, the secret, a signature or a signed query string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import requests
from binance.exceptions import BinanceAPIException, BinanceRequestException
from urllib3.exceptions import NewConnectionError

# Business rejections the bot reacts to (all others are still ``Rejected``; these only get a reason slug).
MARGIN_INSUFFICIENT = -2019
MIN_NOTIONAL = -4164
WOULD_TRIGGER = -2021
WOULD_TRIGGER_ALGO = -4142
PRECISION = -1111
UNKNOWN_ORDER = -2011
NO_SUCH_ORDER = -2013
DUPLICATE_CLIENT_ID = -4116
INVALID_SYMBOL = -1121
REDUCE_ONLY_REJECTED = -2022
WRONG_ENDPOINT = -4120
NO_NEED_MARGIN_TYPE = -4046
NO_NEED_POSITION_SIDE = -4059
TIMESTAMP = -1021
STATUS_UNKNOWN = -1007
ORDER_RATE_EXCEEDED = -1015
"""429 "Too many new orders": the account's order rate (10 s / 1 min), not the IP's request weight."""

_AUTH_CODES = frozenset({-1002, -1022, -2014, -2015, -2008})
_RATE_CODES = frozenset({-1003, ORDER_RATE_EXCEEDED})
_TRANSIENT_CODES = frozenset({-1000, -1001, -1006, -1008, STATUS_UNKNOWN})
_REASONS = {
    MARGIN_INSUFFICIENT: "margin_insufficient",
    MIN_NOTIONAL: "below_min_notional",
    WOULD_TRIGGER: "would_immediately_trigger",
    WOULD_TRIGGER_ALGO: "would_immediately_trigger",
    PRECISION: "precision",
    UNKNOWN_ORDER: "unknown_order",
    NO_SUCH_ORDER: "unknown_order",
    DUPLICATE_CLIENT_ID: "duplicate_client_id",
    INVALID_SYMBOL: "invalid_symbol",
    REDUCE_ONLY_REJECTED: "reduce_only_rejected",
    WRONG_ENDPOINT: "wrong_endpoint",
}
DEFAULT_RETRY_AFTER_429_S = 60.0
"""Used when a 429 lacks Retry-After: the weight window is one minute."""
DEFAULT_RETRY_AFTER_418_S = 120.0
"""Used when a 418 lacks Retry-After: Binance's shortest ban is two minutes."""
_UNKNOWN_TEXT = re.compile(r"status unknown|unknown error, please check", re.IGNORECASE)
_SECRETS_IN_TEXT = re.compile(r"(signature|timestamp|apiKey|listenKey)=[^&\s'\"]*", re.IGNORECASE)
_MAX_TEXT = 200


class ExchangeError(Exception):
    """Base of every venue error; ``endpoint`` is e.g. ``POST /fapi/v1/order``."""

    recovery = "see the subclass"

    def __init__(
        self, endpoint: str, detail: str, *, code: int | None = None, http_status: int | None = None
    ) -> None:
        self.endpoint = endpoint
        self.detail = detail
        self.code = code
        self.http_status = http_status
        super().__init__(f"{endpoint}: {detail} → {self.recovery}")


class TransientError(ExchangeError):
    recovery = "transient: retry with backoff"


class RateLimited(ExchangeError):  # noqa: N818 - names say the recovery
    recovery = "rate limited: send nothing before Retry-After has passed"

    def __init__(
        self,
        endpoint: str,
        detail: str,
        *,
        retry_after_s: float,
        code: int | None = None,
        http_status: int | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(
            endpoint, f"{detail} (retry after {retry_after_s:g} s)", code=code, http_status=http_status
        )


class BudgetSpent(RateLimited):
    """Our own weight budget held a request back: the minute's weight is spent. Nothing was sent."""

    recovery = "deferred: this minute's request weight is spent, nothing was sent"


class IpBanned(RateLimited):
    recovery = "IP banned: stop every request to this venue until Retry-After has passed"


class UnknownStatus(ExchangeError):  # noqa: N818 - names say the recovery
    recovery = "execution status unknown: query the order by its client id before any retry"


class Rejected(ExchangeError):  # noqa: N818 - names say the recovery
    recovery = "rejected by the venue: report it, do not resend unchanged"

    def __init__(self, endpoint: str, code: int, msg: str, *, http_status: int | None = None) -> None:
        self.msg = msg
        super().__init__(endpoint, f"Binance {code} {msg}", code=code, http_status=http_status)

    @property
    def reason(self) -> str:
        """A short slug for events and metrics: ``below_min_notional``, ..., else ``binance_<code>``."""
        return _REASONS.get(self.code or 0, f"binance_{self.code}")


class AuthError(ExchangeError):
    recovery = "fatal: check the API key, secret and its permissions/IP whitelist; stop trading"


class ClockSkew(ExchangeError):  # noqa: N818 - names say the recovery
    recovery = "clock skew: resync the server time offset, then retry once"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without signed-query parameters or any of ``secrets``, shortened for a message."""
    clean = _SECRETS_IN_TEXT.sub(lambda m: f"{m.group(1)}=<redacted>", text)
    for secret in secrets:
        if secret:
            clean = clean.replace(secret, "<redacted>")
    return clean[:_MAX_TEXT]


def retry_after_s(headers: Any, default: float) -> float:
    """Seconds from a ``Retry-After`` header (absent or unparsable → ``default``)."""
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else default
    except (TypeError, ValueError):
        return default


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request provably never reached the venue (connect failed / timed out)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _from_api(
    exc: BinanceAPIException, endpoint: str, *, placing: bool, secrets: Iterable[str]
) -> ExchangeError:
    status = int(exc.status_code)
    code = int(exc.code) if isinstance(exc.code, int) else None
    msg = redact(str(exc.message or ""), secrets)
    headers = getattr(exc.response, "headers", None)
    what = f"HTTP {status} Binance {code} {msg}"
    if status == 418:
        return IpBanned(
            endpoint,
            what,
            retry_after_s=retry_after_s(headers, DEFAULT_RETRY_AFTER_418_S),
            code=code,
            http_status=status,
        )
    if status == 429 or code in _RATE_CODES:
        return RateLimited(
            endpoint,
            what,
            retry_after_s=retry_after_s(headers, DEFAULT_RETRY_AFTER_429_S),
            code=code,
            http_status=status,
        )
    if status >= 500:
        unknown = code == STATUS_UNKNOWN or bool(_UNKNOWN_TEXT.search(msg)) or status == 504
        if placing and unknown:
            return UnknownStatus(endpoint, what, code=code, http_status=status)
        return TransientError(endpoint, what, code=code, http_status=status)
    if code == TIMESTAMP:
        return ClockSkew(endpoint, what, code=code, http_status=status)
    if code in _AUTH_CODES or status in {401, 403}:
        return AuthError(endpoint, what, code=code, http_status=status)
    if code in _TRANSIENT_CODES:
        return TransientError(endpoint, what, code=code, http_status=status)
    if code is None:
        return TransientError(endpoint, what, http_status=status)
    return Rejected(endpoint, code, msg, http_status=status)


def translate(
    exc: BaseException, *, endpoint: str, placing: bool = False, secrets: Iterable[str] = ()
) -> ExchangeError:
    """The ``ExchangeError`` for a python-binance or requests exception (raise it ``from exc``).

    ``placing`` marks calls that create orders: for them a timeout, a dropped connection after sending,
    an unparsable answer or a 503/504 "status unknown" become ``UnknownStatus`` instead of transient.
    """
    if isinstance(exc, ExchangeError):
        return exc
    if isinstance(exc, BinanceAPIException):
        return _from_api(exc, endpoint, placing=placing, secrets=secrets)
    if isinstance(exc, BinanceRequestException):
        what = "unparsable response from the venue"
        return UnknownStatus(endpoint, what) if placing else TransientError(endpoint, what)
    if isinstance(exc, requests.RequestException):
        what = f"{type(exc).__name__} talking to the venue"
        if placing and not _never_sent(exc):
            return UnknownStatus(endpoint, what)
        return TransientError(endpoint, what)
    return TransientError(endpoint, f"unexpected {type(exc).__name__} at the venue boundary")
