"""Gateway market data through python-binance against the local exchange."""

from __future__ import annotations

from decimal import Decimal

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.kline_pages import page_plan
from nancemakina.actors.exchange.ratelimit import WeightBudget
from tests.integration.gateway_support import (
    HISTORY,
    NOW_MS,
    T0,
    M,
    make_gateway,
    start_exchange,
)

USD, COIN = ContractType.USDT_M, ContractType.COIN_M


def test_exchange_info_specs_and_weight_limit():
    ex = start_exchange(weight_limit=1200)
    try:
        budget = WeightBudget()
        gw = make_gateway(ex, budget=budget)
        specs = gw.exchange_info(USD)
        assert specs["BTCUSDT"].tick_size == Decimal("0.1")
        assert specs["BTCUSDT"].contract_type is USD
        assert budget.limit == 1200
        coin = gw.exchange_info(COIN)
        assert coin["BTCUSD_PERP"].contract_size == 100
        assert "BTCUSDT" not in coin
    finally:
        ex.stop()


def test_server_time_is_the_market_clock(gateway):
    assert gateway.server_time_ms(USD) == NOW_MS
    assert gateway.server_time_ms(COIN) == NOW_MS


def test_klines_are_closed_only(gateway):
    klines = gateway.klines("BTCUSDT", USD, "1m", limit=10)
    assert [k.open_time_ms for k in klines] == [T0 + i * M for i in range(HISTORY - 10, HISTORY)]
    assert all(k.closed and k.open_time_ms + M - 1 < NOW_MS for k in klines)
    five = gateway.klines("BTCUSDT", USD, "5m", start_ms=T0, end_ms=T0 + 20 * M, limit=100)
    assert [k.open_time_ms for k in five] == [T0 + i * 5 * M for i in range(5)]
    assert five[0].close == 100_005.0  # close of the 5th 1m candle


def test_closed_range_is_exact_across_pages(gateway):
    start, end = T0 + 100 * M, T0 + 1900 * M
    klines = gateway.closed_klines_range("BTCUSDT", USD, "1m", start, end)
    assert [k.open_time_ms for k in klines] == list(range(start, end + 1, M))
    # the cheapest pages: four of ≤ 499 (weight 8), not 1,500 + 301 (weight 12); no time request
    assert page_plan(1801) == (499, 499, 499, 304)
    assert gateway.counters().requests == {"GET /fapi/v1/klines": 4}


def test_closed_range_into_the_future_stops_at_the_clock(gateway):
    klines = gateway.closed_klines_range("BTCUSD_PERP", COIN, "1m", NOW_MS - 5 * M, NOW_MS + 50 * M)
    assert [k.open_time_ms for k in klines] == [NOW_MS - i * M for i in range(5, 0, -1)]


def test_closed_range_follows_the_clock(exchange, gateway):
    exchange.step(3)
    klines = gateway.closed_klines_range("BTCUSDT", USD, "1m", NOW_MS - M, NOW_MS + 10 * M)
    assert [k.open_time_ms for k in klines] == [NOW_MS + i * M for i in range(-1, 3)]


def test_recent_closed_warm_up(gateway):
    klines = gateway.recent_closed_klines("BTCUSDT", USD, "1m", 1600)
    assert len(klines) == 1600
    assert klines[-1].open_time_ms == NOW_MS - M
    assert klines[0].open_time_ms == NOW_MS - 1600 * M
    assert gateway.recent_closed_klines("BTCUSDT", USD, "1m", 5000)[0].open_time_ms == T0


def test_weight_budget_tracks_the_venue_header(gateway):
    gateway.klines("BTCUSDT", USD, "1m", limit=1500)
    # klines 10, as reported by X-MBX-USED-WEIGHT-1M; no time request (closedness is in the answer)
    assert gateway.budget.used_weight >= 10
    assert gateway.counters().requests == {"GET /fapi/v1/klines": 1}
