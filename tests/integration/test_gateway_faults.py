"""Error translation and recovery on the local exchange: rejections, auth, 429/418, status unknown, skew."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.errors import (
    AuthError,
    IpBanned,
    RateLimited,
    Rejected,
    TransientError,
    UnknownStatus,
)
from nancemakina.actors.exchange.ratelimit import WeightBudget
from nancemakina.actors.exchange.types import OrderStatus, ProtectiveKind, Side
from tests.integration.gateway_support import (
    make_gateway,
    start_exchange,
)

USD = ContractType.USDT_M
QTY = Decimal("0.010")


def test_min_notional_and_margin_rejections(exchange, gateway):
    exchange.reject_next_order(-4164)
    with pytest.raises(Rejected) as info:
        gateway.market_order("BTCUSDT", USD, Side.BUY, QTY, "r-1")
    assert (info.value.code, info.value.reason) == (-4164, "below_min_notional")
    with pytest.raises(Rejected) as info:
        gateway.market_order("BTCUSDT", USD, Side.BUY, Decimal(900), "r-2")  # ~92M notional on 10k USDT
    assert (info.value.code, info.value.reason) == (-2019, "margin_insufficient")
    assert gateway.counters().errors == {"Rejected": 2}


def test_stop_that_would_trigger_immediately(gateway):
    gateway.market_order("BTCUSDT", USD, Side.BUY, QTY, "w-E")
    with pytest.raises(Rejected) as info:
        gateway.place_protective(
            "BTCUSDT", USD, ProtectiveKind.STOP_MARKET, Side.SELL, Decimal(150000), "w-S"
        )
    assert info.value.code == -2021


def test_invalid_symbol(gateway):
    with pytest.raises(Rejected) as info:
        gateway.klines("NOPEUSDT", USD, "1m", limit=5)
    assert info.value.code == -1121
    with pytest.raises(Rejected):
        gateway.market_order("NOPEUSDT", USD, Side.BUY, QTY, "n-1")


def test_bad_api_key_is_fatal_and_never_echoed(exchange):
    gw = make_gateway(exchange, api_key="WRONG-KEY-123", api_secret="WRONG-SECRET-456")
    with pytest.raises(AuthError) as info:
        gw.positions(USD)
    assert info.value.code == -2015
    for text in (str(info.value), repr(info.value.args)):
        assert "WRONG-KEY-123" not in text
        assert "WRONG-SECRET-456" not in text
        assert "signature" not in text
    bad_sig = make_gateway(exchange, api_secret="not-the-secret")
    with pytest.raises(AuthError) as info:
        bad_sig.balances(USD)
    assert info.value.code == -1022


def test_429_retry_after_is_honoured_by_the_budget(exchange):
    budget = WeightBudget()
    gw = make_gateway(exchange, budget=budget)
    exchange.fail_next("429", path="/fapi/v1/time", retry_after_s=1)
    with pytest.raises(RateLimited) as info:
        gw.server_time_ms(USD)
    assert info.value.retry_after_s == 1.0
    assert budget.responses_429 == 1
    started = time.monotonic()
    assert gw.server_time_ms(USD) > 0  # waits out Retry-After, then succeeds
    assert time.monotonic() - started >= 0.9
    assert budget.snapshot().waits == 1


def test_429_wait_beyond_the_deadline_raises_without_sending(exchange):
    budget = WeightBudget(max_wait_s=0.5)
    gw = make_gateway(exchange, budget=budget)
    exchange.fail_next("429", retry_after_s=30)
    with pytest.raises(RateLimited):
        gw.server_time_ms(USD)
    with pytest.raises(RateLimited, match="weight budget"):
        gw.server_time_ms(USD)
    assert gw.counters().requests["GET /fapi/v1/time"] == 1  # the second call was never sent


def test_venue_weight_limit_429():
    ex = start_exchange(weight_limit=3)  # the venue's minute allows 3; our budget believes 2400
    try:
        gw = make_gateway(ex, budget=WeightBudget(max_wait_s=0.0))

        def spend() -> None:
            for _ in range(5):
                gw.server_time_ms(USD)

        with pytest.raises(RateLimited) as info:
            spend()
        assert info.value.http_status == 429
        assert gw.budget.responses_429 == 1
        assert gw.budget.snapshot().blocked_until > 0
    finally:
        ex.stop()


def test_418_is_an_ip_ban(exchange, gateway):
    exchange.fail_next("418", retry_after_s=120)
    with pytest.raises(IpBanned) as info:
        gateway.server_time_ms(USD)
    assert info.value.retry_after_s == 120
    assert gateway.budget.responses_418 == 1
    with pytest.raises(RateLimited):  # the ban holds every request (the default deadline is 65 s)
        gateway.server_time_ms(USD)


def test_503_status_unknown_then_query_by_client_id(exchange, gateway):
    exchange.fail_next("unknown", path="/fapi/v1/order", method="POST")
    with pytest.raises(UnknownStatus):
        gateway.market_order("BTCUSDT", USD, Side.BUY, QTY, "u-E")
    found = gateway.get_order("BTCUSDT", USD, client_order_id="u-E")
    assert found is not None
    assert found.status is OrderStatus.FILLED
    with pytest.raises(Rejected) as info:  # a blind resend would be a duplicate
        gateway.market_order("BTCUSDT", USD, Side.BUY, QTY, "u-E")
    assert info.value.code == -4116


def test_5xx_is_transient(exchange, gateway):
    exchange.fail_next("502", path="/fapi/v1/order", method="POST")
    with pytest.raises(TransientError):
        gateway.market_order("BTCUSDT", USD, Side.BUY, QTY, "t-E")
    assert gateway.get_order("BTCUSDT", USD, client_order_id="t-E") is None
    exchange.fail_next("500", path="/fapi/v1/klines")
    with pytest.raises(TransientError):
        gateway.klines("BTCUSDT", USD, "1m", limit=5)


def test_timeout_on_order_placement_is_status_unknown(exchange):
    gw = make_gateway(exchange, timeout_s=0.3)
    gw.sync_time()
    exchange.set_latency(1.0, path="/fapi/v1/order")
    with pytest.raises(UnknownStatus):
        gw.market_order("BTCUSDT", USD, Side.BUY, QTY, "slow-E")
    exchange.set_latency(0.0)
    # The caller's next step is a lookup, which gives a definitive answer either way. (The local
    # exchange sleeps before reading the body, so a client timeout cancels the order there.)
    found = gw.get_order("BTCUSDT", USD, client_order_id="slow-E")
    assert found is None or found.client_order_id == "slow-E"
    assert gw.counters().errors == {"UnknownStatus": 1}


def test_clock_skew_resyncs_and_retries_once(gateway):
    gateway.sync_time()
    now = time.time()
    gateway.clock.record_sync(
        round(now * 1000) - 3_600_000, now, now
    )  # the venue's clock tracked an hour off
    assert gateway.positions(USD) == []
    counters = gateway.counters()
    assert counters.errors == {"ClockSkew": 1}
    assert counters.time_syncs == 2
    assert abs(counters.time_offset_ms or 0) < 5_000


def test_first_signed_call_syncs_time(gateway):
    assert gateway.time_offset_ms is None
    gateway.balances(USD)
    assert gateway.time_offset_ms is not None
    assert gateway.counters().requests["GET /api/v3/time"] == 1
