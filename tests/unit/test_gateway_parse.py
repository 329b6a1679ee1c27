"""parse.py against recorded Binance JSON (tests/resources/binance_api_samples) and malformed variants."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.parse import (
    MalformedPayload,
    is_protective_type,
    parse_algo_order,
    parse_balance,
    parse_kline_row,
    parse_order,
    parse_position,
    parse_user_event,
)
from nancemakina.actors.exchange.types import (
    AccountUpdate,
    AlgoStatus,
    AlgoUpdate,
    ListenKeyExpired,
    OrderStatus,
    OrderUpdate,
    ProtectiveKind,
    Side,
)
from tests.samples import sample

USD = ContractType.USDT_M


def test_order_response():
    order = parse_order(sample("nautilus__order_response.json"), USD)
    assert order.symbol == "BTCUSDT"
    assert order.order_id == 12345678
    assert order.client_order_id == "testOrder123"
    assert order.side is Side.BUY
    assert order.status is OrderStatus.NEW
    assert order.orig_qty == Decimal("0.001")
    assert order.executed_qty == Decimal("0.000")
    assert order.avg_price == 0.0
    assert order.reduce_only is False
    assert order.update_time_ms == 1625474304765


def test_algo_order_with_quantity():
    algo = parse_algo_order(sample("algo_order_response.json"), USD)
    assert algo.kind is ProtectiveKind.TAKE_PROFIT_MARKET
    assert algo.status is AlgoStatus.NEW
    assert algo.trigger_price == Decimal("110000.00")
    assert algo.quantity == Decimal("0.010")
    assert algo.close_position is False
    assert algo.reduce_only is True
    assert algo.client_algo_id == "nm-BTCUSDT-1750515600000-T"


def test_algo_order_close_position_has_no_quantity():
    raw = sample("algo_order_response.json") | {"closePosition": True, "quantity": "0.000"}
    assert parse_algo_order(raw, USD).quantity is None


def test_foreign_algo_type_is_not_protective_and_does_not_parse():
    raw = sample("algo_order_response.json") | {"orderType": "STOP"}  # a stop-limit: not one we place
    assert not is_protective_type(raw)
    with pytest.raises(MalformedPayload, match="orderType"):
        parse_algo_order(raw, USD)


def test_trailing_stop_is_ours_and_reads_its_activation():
    raw = {k: v for k, v in sample("algo_order_response.json").items() if k != "triggerPrice"}
    raw |= {"orderType": "TRAILING_STOP_MARKET", "activatePrice": "105000.0", "callbackRate": "0.5"}
    assert is_protective_type(raw)
    algo = parse_algo_order(raw, USD)
    assert algo.kind is ProtectiveKind.TRAILING_STOP_MARKET
    assert algo.trigger_price == Decimal("105000.0")
    without = parse_algo_order({k: v for k, v in raw.items() if k != "activatePrice"}, USD)
    assert without.trigger_price == 0


def test_position_risk_v2_and_v3_shapes():
    row = sample("nautilus__position_risk.json")[0]
    pos = parse_position(row, USD)
    assert pos.amount == Decimal("0.001")
    assert (pos.entry_price, pos.mark_price, pos.unrealized_pnl) == (50000.0, 51000.0, 1.0)
    assert (pos.leverage, pos.margin_type) == (20, "cross")
    v3 = {k: v for k, v in row.items() if k not in {"leverage", "marginType"}} | {"isolatedWallet": "12.5"}
    pos3 = parse_position(v3, USD)
    assert (pos3.leverage, pos3.margin_type) == (0, "isolated")


def test_balances_rest_and_account_shapes():
    bal = parse_balance(sample("balance_v3.json")[0])
    assert (bal.asset, bal.wallet, bal.available) == ("USDT", 122607.35137903, 23.72469206)
    asset = sample("nautilus__account_info_v2.json")["assets"][0]
    assert parse_balance(asset).wallet == 23.72469206


def test_kline_row():
    k = parse_kline_row(sample("nautilus__http_futures_market_klines.json")[0], "BTCUSDT", "1m")
    assert k.open_time_ms == 1499040000000
    assert (k.open, k.high, k.low, k.close) == (0.0163479, 0.8, 0.015758, 0.015771)
    assert k.volume == 148976.11427815
    assert k.closed


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ([1499040000000, "1"], "at least 6"),
        ("not a row", "at least 6"),
        ([1499040000000, "x", "1", "1", "1", "1"], "'o'"),
        (["soon", "1", "1", "1", "1", "1"], "'t'"),
        ([1499040000000, "NaN", "1", "1", "1", "1"], "finite"),
    ],
)
def test_malformed_kline_rows(row, match):
    with pytest.raises(MalformedPayload, match=match):
        parse_kline_row(row, "BTCUSDT", "1m")


def test_order_trade_update():
    event = parse_user_event(sample("nautilus__order_update_trade.json"), USD)
    assert isinstance(event, OrderUpdate)
    assert event.status is OrderStatus.PARTIALLY_FILLED
    assert event.execution_type == "TRADE"
    assert event.last_filled_qty == Decimal("0.001")
    assert event.last_filled_price == 7100.5
    assert event.realized_pnl == 12.34
    assert (event.commission, event.commission_asset) == (Decimal("0.01000000"), "USDT")
    assert event.event_time_ms == 1568879465651


def test_order_update_in_combined_envelope_with_nulls():
    event = parse_user_event(sample("nautilus__ws_futures_order_update_liquidation.json"), USD)
    assert isinstance(event, OrderUpdate)
    assert event.client_order_id.startswith("autoclose-")
    assert event.status is OrderStatus.FILLED
    assert event.avg_price == 50000.0
    new = parse_user_event(sample("nautilus__order_update_new.json"), USD)
    assert isinstance(new, OrderUpdate)
    assert new.order_type == "TRAILING_STOP_MARKET"


def test_account_update_keeps_one_way_positions_only():
    event = parse_user_event(sample("nautilus__account_update.json"), ContractType.COIN_M)
    assert isinstance(event, AccountUpdate)
    assert event.contract_type is ContractType.COIN_M
    assert event.reason == "ORDER"
    assert [(b.asset, b.wallet, b.available) for b in event.balances] == [
        ("USDT", 122624.12345678, 100.12345678)
    ]
    assert len(event.positions) == 1
    assert event.positions[0].amount == 0
    assert event.positions[0].margin_type == "isolated"


def test_algo_update():
    event = parse_user_event(sample("algo_update.json"), USD)
    assert isinstance(event, AlgoUpdate)
    assert event.status is AlgoStatus.TRIGGERED
    assert event.kind is ProtectiveKind.STOP_MARKET
    assert event.algo_id == 2148719
    assert event.client_algo_id == "nm-BTCUSDT-1750515600000-S"
    assert event.triggered_order_client_id is None


def test_algo_update_of_other_type_has_no_kind():
    raw = sample("algo_update.json")
    raw["o"]["o"] = "STOP"
    event = parse_user_event(raw, USD)
    assert isinstance(event, AlgoUpdate)
    assert event.kind is None


def test_listen_key_expired():
    event = parse_user_event({"e": "listenKeyExpired", "E": 1576653824250, "listenKey": "k"}, USD)
    assert event == ListenKeyExpired(contract_type=USD, event_time_ms=1576653824250)


@pytest.mark.parametrize(
    "payload",
    [
        {"e": "TRADE_LITE"},
        {"e": "MARGIN_CALL", "E": 1},
        {"e": "SOMETHING_NEW_2027"},
        {"result": None, "id": 1},
        {},
    ],
)
def test_unknown_events_are_none(payload):
    assert parse_user_event(payload, USD) is None
    assert parse_user_event(sample("nautilus__trade_lite.json"), USD) is None


def _without(payload: dict[str, Any], *path: str) -> dict[str, Any]:
    clone = copy.deepcopy(payload)
    node = clone
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return clone


@pytest.mark.parametrize(
    ("name", "path", "match"),
    [
        ("nautilus__order_update_trade.json", ("o", "X"), r"ORDER_TRADE_UPDATE\.o: missing field 'X'"),
        ("nautilus__order_update_trade.json", ("o",), r"ORDER_TRADE_UPDATE: missing field 'o'"),
        ("nautilus__order_update_trade.json", ("E",), r"ORDER_TRADE_UPDATE: missing field 'E'"),
        ("nautilus__account_update.json", ("a",), r"ACCOUNT_UPDATE: missing field 'a'"),
        ("algo_update.json", ("o", "caid"), r"ALGO_UPDATE\.o: missing field 'caid'"),
    ],
)
def test_malformed_events_name_event_and_field(name, path, match):
    with pytest.raises(MalformedPayload, match=match):
        parse_user_event(_without(sample(name), *path), USD)


def test_malformed_values_are_named():
    raw = sample("nautilus__order_update_trade.json")
    raw["o"]["X"] = "HALF_DONE"
    with pytest.raises(MalformedPayload, match="'X' is not a OrderStatus"):
        parse_user_event(raw, USD)
    order = sample("nautilus__order_response.json") | {"origQty": "lots"}
    with pytest.raises(MalformedPayload, match="order: field 'origQty' is not a decimal"):
        parse_order(order, USD)
    with pytest.raises(MalformedPayload, match="expected a JSON object"):
        parse_order(["not", "an", "object"], USD)
    with pytest.raises(MalformedPayload, match="expected a JSON object"):
        parse_user_event({"stream": "x", "data": [1, 2]}, USD)
    assert issubclass(MalformedPayload, ValueError)


def test_expired_in_match_is_expired():
    order = sample("nautilus__order_response.json") | {"status": "EXPIRED_IN_MATCH"}
    assert parse_order(order, USD).status is OrderStatus.EXPIRED
