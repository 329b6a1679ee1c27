"""Error translation at the venue boundary: each failure maps to the class that names its recovery."""

from __future__ import annotations

import json

import pytest
import requests
from binance.exceptions import BinanceAPIException, BinanceRequestException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from nancemakina.actors.exchange.errors import (
    AuthError,
    ClockSkew,
    IpBanned,
    RateLimited,
    Rejected,
    TransientError,
    UnknownStatus,
    redact,
    translate,
)

KEY = "K3y-abcdef0123456789"
SECRET = "S3cr3t-0123456789abcdef"
EP = "POST /fapi/v1/order"


class FakeResponse:
    def __init__(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.text = body if isinstance(body, str) else json.dumps(body)
        self.headers = headers or {}
        self.request = None


def api(status: int, code: int | None, msg: str = "m", headers: dict[str, str] | None = None):
    body = {"code": code, "msg": msg} if code is not None else "<html>oops</html>"
    response = FakeResponse(status, body, headers)
    return BinanceAPIException(response, status, response.text)


@pytest.mark.parametrize(
    ("status", "code", "msg", "placing", "kind"),
    [
        (400, -2019, "Margin is insufficient.", True, Rejected),
        (400, -4164, "Order's notional must be no smaller than 5", True, Rejected),
        (400, -2021, "Order would immediately trigger.", True, Rejected),
        (400, -4142, "would immediately trigger", True, Rejected),
        (400, -1111, "Precision is over the maximum defined for this asset.", True, Rejected),
        (400, -2013, "Order does not exist.", False, Rejected),
        (400, -4116, "ClientOrderId is duplicated.", True, Rejected),
        (400, -1121, "Invalid symbol.", False, Rejected),
        (401, -2015, "Invalid API-key, IP, or permissions for action.", False, AuthError),
        (401, -2014, "API-key format invalid.", False, AuthError),
        (400, -1022, "Signature for this request is not valid.", True, AuthError),
        (400, -1021, "Timestamp for this request is outside of the recvWindow.", True, ClockSkew),
        (500, -1000, "An unknown error occurred", True, TransientError),
        (502, -1001, "Internal error", True, TransientError),
        (503, -1001, "Service Unavailable.", True, TransientError),
        (503, -1007, "Timeout waiting for response from backend server.", True, UnknownStatus),
        (503, -1007, "Timeout waiting for response from backend server.", False, TransientError),
        (503, -1000, "Unknown error, please check your request or try again later.", True, UnknownStatus),
        (504, -1001, "Gateway timeout", True, UnknownStatus),
        (504, -1001, "Gateway timeout", False, TransientError),
        (400, -1008, "Server is currently overloaded", False, TransientError),
        (502, None, "", False, TransientError),
    ],
)
def test_api_errors(status, code, msg, placing, kind):
    err = translate(api(status, code, msg), endpoint=EP, placing=placing)
    assert type(err) is kind
    assert err.endpoint == EP
    assert err.http_status == status
    assert EP in str(err)


def test_rejected_carries_code_msg_and_reason():
    err = translate(api(400, -4164, "notional too small"), endpoint=EP)
    assert isinstance(err, Rejected)
    assert (err.code, err.msg, err.reason) == (-4164, "notional too small", "below_min_notional")
    assert translate(api(400, -9999, "new"), endpoint=EP).reason == "binance_-9999"  # type: ignore[attr-defined]


def test_429_and_418_carry_retry_after():
    limited = translate(api(429, -1003, "Too many requests", {"Retry-After": "7"}), endpoint=EP)
    assert type(limited) is RateLimited
    assert limited.retry_after_s == 7.0
    banned = translate(api(418, -1003, "banned", {"Retry-After": "300"}), endpoint=EP)
    assert type(banned) is IpBanned
    assert isinstance(banned, RateLimited)
    assert banned.retry_after_s == 300.0
    assert "300" in str(banned)


def test_missing_retry_after_uses_defaults():
    assert translate(api(429, -1003), endpoint=EP).retry_after_s == 60.0  # type: ignore[attr-defined]
    assert translate(api(418, -1003), endpoint=EP).retry_after_s == 120.0  # type: ignore[attr-defined]


def _conn_error(reason: Exception) -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, "/fapi/v1/order?signature=abc", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "placing", "kind"),
    [
        (requests.ReadTimeout("read timed out"), True, UnknownStatus),
        (requests.ReadTimeout("read timed out"), False, TransientError),
        (requests.ConnectTimeout("connect timed out"), True, TransientError),
        (_conn_error(NewConnectionError(None, "refused")), True, TransientError),  # type: ignore[arg-type]
        (_conn_error(OSError("reset by peer")), True, UnknownStatus),
        (_conn_error(OSError("reset by peer")), False, TransientError),
        (BinanceRequestException("Invalid Response: <html>"), True, UnknownStatus),
        (BinanceRequestException("Invalid Response: <html>"), False, TransientError),
    ],
)
def test_transport_errors(exc, placing, kind):
    assert type(translate(exc, endpoint=EP, placing=placing)) is kind


def test_messages_never_carry_secrets_or_signed_queries():
    leaky = f"bad key {KEY} secret {SECRET} in /fapi/v1/order?symbol=X&timestamp=1&signature=deadbeef"
    errors = [
        translate(api(400, -2019, leaky), endpoint=EP, secrets=(KEY, SECRET)),
        translate(api(401, -2015, leaky), endpoint=EP, secrets=(KEY, SECRET)),
        translate(api(503, -1007, leaky), endpoint=EP, placing=True, secrets=(KEY, SECRET)),
        translate(_conn_error(OSError(leaky)), endpoint=EP, placing=True, secrets=(KEY, SECRET)),
        translate(requests.ReadTimeout(leaky), endpoint=EP, secrets=(KEY, SECRET)),
    ]
    for err in errors:
        text = str(err) + repr(err.args)
        assert KEY not in text
        assert SECRET not in text
        assert "deadbeef" not in text
        assert "signature=" not in text or "signature=<redacted>" in text


def test_redact():
    assert redact("a signature=abc&timestamp=12 b", ()) == "a signature=<redacted>&timestamp=<redacted> b"
    assert redact("x" * 1000) == "x" * 200
    assert redact("my key KEY1", ("KEY1", "")) == "my key <redacted>"


def test_messages_name_the_recovery():
    assert "query the order by its client id" in str(translate(api(503, -1007), endpoint=EP, placing=True))
    assert "fatal" in str(translate(api(401, -2015), endpoint=EP))
    assert "resync" in str(translate(api(400, -1021), endpoint=EP))
    assert "retry with backoff" in str(translate(api(500, -1000), endpoint=EP))
