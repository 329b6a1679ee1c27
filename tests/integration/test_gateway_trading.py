"""Gateway account settings, orders, algo orders, positions, balances and listenKeys on the local exchange."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.errors import Rejected
from nancemakina.actors.exchange.types import AlgoStatus, OrderStatus, ProtectiveKind, Side
from tests.integration.gateway_support import HISTORY, PRICE0

USD, COIN = ContractType.USDT_M, ContractType.COIN_M
LAST_CLOSE = PRICE0 + HISTORY


def test_settings_are_idempotent(gateway):
    assert gateway.set_leverage("BTCUSDT", USD, 7) == 7
    gateway.set_margin_type("BTCUSDT", USD, "ISOLATED")
    gateway.set_margin_type("BTCUSDT", USD, "ISOLATED")  # -4046: already so
    gateway.ensure_one_way(USD)  # -4059: already one-way
    gateway.ensure_one_way(COIN)
    assert gateway.counters().errors == {}
    with pytest.raises(ValueError, match="ISOLATED or CROSSED"):
        gateway.set_margin_type("BTCUSDT", USD, "isolated")


def test_market_order_and_lookup_by_client_id(gateway):
    order = gateway.market_order("BTCUSDT", USD, Side.BUY, Decimal("0.010"), "nm-BTCUSDT-1-E")
    assert order.status is OrderStatus.FILLED
    assert order.executed_qty == Decimal("0.010")
    assert order.avg_price == LAST_CLOSE
    again = gateway.get_order("BTCUSDT", USD, client_order_id="nm-BTCUSDT-1-E")
    assert again == order
    assert gateway.get_order("BTCUSDT", USD, client_order_id="nm-BTCUSDT-2-E") is None
    assert gateway.open_orders(USD) == []
    assert gateway.open_orders(USD, "BTCUSDT") == []


def test_positions_and_balances_after_fills(gateway):
    assert gateway.positions(USD) == []
    before = gateway.balances(USD)["USDT"]
    gateway.set_leverage("BTCUSDT", USD, 10)
    gateway.market_order("BTCUSDT", USD, Side.SELL, Decimal("0.020"), "short-1")
    [pos] = gateway.positions(USD)
    assert (pos.symbol, pos.amount, pos.entry_price, pos.leverage) == (
        "BTCUSDT",
        Decimal("-0.020"),
        LAST_CLOSE,
        10,
    )
    after = gateway.balances(USD)["USDT"]
    assert after.wallet < before.wallet  # the fee
    assert after.available < after.wallet  # the margin
    gateway.market_order("BTCUSDT", USD, Side.BUY, Decimal("0.020"), "close-1", reduce_only=True)
    assert gateway.positions(USD) == []


def test_protective_orders_via_algo_api(gateway):
    gateway.market_order("BTCUSDT", USD, Side.BUY, Decimal("0.010"), "entry")
    stop = gateway.place_protective(
        "BTCUSDT", USD, ProtectiveKind.STOP_MARKET, Side.SELL, Decimal("99000.0"), "entry-S"
    )
    assert (stop.kind, stop.status, stop.close_position, stop.quantity) == (
        ProtectiveKind.STOP_MARKET,
        AlgoStatus.NEW,
        True,
        None,
    )
    assert stop.trigger_price == Decimal("99000.0")
    take = gateway.place_protective(
        "BTCUSDT",
        USD,
        ProtectiveKind.TAKE_PROFIT_MARKET,
        Side.SELL,
        Decimal(105000),
        "entry-T",
        close_position=False,
        quantity=Decimal("0.010"),
    )
    assert (take.quantity, take.reduce_only) == (Decimal("0.010"), True)
    assert {a.client_algo_id for a in gateway.open_algo_orders(USD)} == {"entry-S", "entry-T"}
    assert len(gateway.open_algo_orders(USD, "BTCUSDT")) == 2
    assert gateway.get_algo_order("BTCUSDT", USD, client_algo_id="entry-S") == stop
    assert gateway.get_algo_order("BTCUSDT", USD, client_algo_id="nope") is None
    assert gateway.cancel_algo_order("BTCUSDT", USD, client_algo_id="entry-S") is True
    assert gateway.cancel_algo_order("BTCUSDT", USD, client_algo_id="entry-S") is False
    assert [a.client_algo_id for a in gateway.open_algo_orders(USD)] == ["entry-T"]
    assert gateway.get_algo_order("BTCUSDT", USD, client_algo_id="entry-S").status is AlgoStatus.CANCELED
    assert gateway.counters().requests["POST /fapi/v1/algoOrder"] == 2
    assert "POST /fapi/v1/order" in gateway.counters().requests


def test_protective_argument_checks(gateway):
    with pytest.raises(ValueError, match="quantity"):
        gateway.place_protective(
            "BTCUSDT", USD, ProtectiveKind.STOP_MARKET, Side.SELL, Decimal(1), "x", quantity=Decimal(1)
        )
    with pytest.raises(ValueError, match="positive"):
        gateway.market_order("BTCUSDT", USD, Side.BUY, Decimal(0), "x")


def test_coin_m_order_protective_position(gateway):
    order = gateway.market_order("BTCUSD_PERP", COIN, Side.BUY, Decimal(2), "coin-E")
    assert order.contract_type is COIN
    assert order.executed_qty == 2
    stop = gateway.place_protective(
        "BTCUSD_PERP", COIN, ProtectiveKind.STOP_MARKET, Side.SELL, Decimal(95000), "coin-S"
    )
    assert gateway.open_algo_orders(COIN) == [stop]
    assert gateway.open_algo_orders(USD) == []
    [pos] = gateway.positions(COIN)
    assert pos.amount == 2
    assert "BTC" in gateway.balances(COIN)
    assert gateway.cancel_algo_order("BTCUSD_PERP", COIN, client_algo_id="coin-S")
    assert gateway.counters().requests["POST /dapi/v1/algoOrder"] == 1


def test_protective_trigger_finishes_and_closes(exchange, gateway):
    gateway.market_order("BTCUSDT", USD, Side.SELL, Decimal("0.010"), "s-E")
    gateway.place_protective("BTCUSDT", USD, ProtectiveKind.STOP_MARKET, Side.BUY, Decimal("102003.0"), "s-S")
    exchange.step(5)  # prices rise one per candle: the stop triggers
    algo = gateway.get_algo_order("BTCUSDT", USD, client_algo_id="s-S")
    assert algo.status in {AlgoStatus.FINISHED, AlgoStatus.TRIGGERED}
    assert gateway.positions(USD) == []


def test_listen_key_lifecycle(gateway):
    key = gateway.create_listen_key(USD)
    assert key
    gateway.keepalive_listen_key(USD, key)
    gateway.close_listen_key(USD, key)
    with pytest.raises(Rejected) as info:
        gateway.keepalive_listen_key(USD, key)
    assert info.value.code == -1125
    coin = gateway.create_listen_key(COIN)
    gateway.keepalive_listen_key(COIN, coin)
    gateway.close_listen_key(COIN, coin)
