"""Binance's official USDⓈ-M and COIN-M SDKs against the local exchange's REST API.

Every call goes through the SDK (which must not complain: ``sdk_complaints``), and the same endpoint's raw
JSON is held against the SDK's response model: strict types as declared, and every field present
(``clients.check_model``) — the SDK alone checks neither presence nor, after a mismatch, types.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.contract.clients import COINM, PAIR, RAW, USDM, check_model, sdk_client
from tests.contract.conftest import signed

UM = "binance_sdk_derivatives_trading_usds_futures.rest_api.models"
CM = "binance_sdk_derivatives_trading_coin_futures.rest_api.models"
_WHEN_FILLED = frozenset({"actualType", "actualQty"})
"""Algo order fields Binance sends once the order triggered / filled."""
_UNION = frozenset({"baseQty", "quoteQty", "marginAsset", "pair", "cumBase", "cumQuote"})
"""Fields the models list for both markets (USDⓈ-M orders have cumQuote, COIN-M ones cumBase and pair)."""


def model(market: str, name: str) -> Any:
    module = __import__(UM if market == USDM else CM, fromlist=[name])
    return getattr(module, name)


@pytest.fixture(scope="module")
def clients(exchange):
    return {market: sdk_client(market, exchange).rest_api for market in (USDM, COINM)}


def raw(exchange, market: str, method: str, path: str, **params) -> Any:
    root = "/fapi" if market == USDM else "/dapi"
    return signed(exchange, method, root + path, **params)


def expect(market: str, name: str, answer: Any, *, allow: frozenset[str] = frozenset()) -> None:
    check_model(model(market, name), answer, allow=allow | _UNION)


@pytest.mark.parametrize("market", [USDM, COINM])
def test_market_data(exchange, clients, market, sdk_complaints):
    api, symbol, pair = clients[market], RAW[market], PAIR[market]
    assert api.check_server_time().data().server_time > 0
    assert symbol in {s.symbol for s in api.exchange_information().data().symbols}
    assert api.kline_candlestick_data(symbol=symbol, interval="1m", limit=2).data()
    assert api.continuous_contract_kline_candlestick_data(
        pair=pair, contract_type="PERPETUAL", interval="1m", limit=2
    ).data()
    assert api.mark_price_kline_candlestick_data(symbol=symbol, interval="1m", limit=2).data()
    assert api.order_book(symbol=symbol, limit=5).data().bids
    assert api.compressed_aggregate_trades_list(symbol=symbol, limit=3).data()
    api.ticker24hr_price_change_statistics(symbol=symbol).data()
    api.symbol_price_ticker(symbol=symbol).data()
    api.symbol_order_book_ticker(symbol=symbol).data()
    public = {
        "ExchangeInformationResponse": ("/v1/exchangeInfo", {}),
        "CheckServerTimeResponse": ("/v1/time", {}),
        "OrderBookResponse": ("/v1/depth", {"symbol": symbol, "limit": 5}),
        "CompressedAggregateTradesListResponse": ("/v1/aggTrades", {"symbol": symbol, "limit": 3}),
        "Ticker24hrPriceChangeStatisticsResponse": ("/v1/ticker/24hr", {"symbol": symbol}),
        "SymbolPriceTickerResponse": ("/v1/ticker/price", {"symbol": symbol}),
        "SymbolOrderBookTickerResponse": ("/v1/ticker/bookTicker", {"symbol": symbol}),
    }
    if market == USDM:
        api.symbol_price_ticker_v2(symbol=symbol).data()
        api.mark_price(symbol=symbol).data()
        api.get_funding_rate_history(symbol=symbol, limit=2).data()
        public |= {
            "SymbolPriceTickerV2Response": ("/v2/ticker/price", {"symbol": symbol}),
            "MarkPriceResponse": ("/v1/premiumIndex", {"symbol": symbol}),
            "GetFundingRateHistoryResponse": ("/v1/fundingRate", {"symbol": symbol}),
        }
    else:
        api.index_price_and_mark_price(symbol=symbol).data()
        api.get_funding_rate_history_of_perpetual_futures(symbol=symbol, limit=2).data()
        public |= {
            "IndexPriceAndMarkPriceResponse": ("/v1/premiumIndex", {"symbol": symbol}),
            "GetFundingRateHistoryOfPerpetualFuturesResponse": ("/v1/fundingRate", {"symbol": symbol}),
        }
    for name, (path, params) in public.items():
        expect(market, name, raw(exchange, market, "GET", path, **params), allow=frozenset({"filters"}))


@pytest.mark.parametrize("market", [USDM, COINM])
def test_account_endpoints(exchange, clients, market, sdk_complaints):
    api, symbol = clients[market], RAW[market]
    qty = Decimal("0.002") if market == USDM else Decimal(1)
    api.new_order(symbol=symbol, side="BUY", type="MARKET", quantity=qty).data()  # a position to report
    api.get_current_position_mode().data()
    api.change_initial_leverage(symbol=symbol, leverage=10).data()
    api.user_commission_rate(symbol=symbol).data()
    api.position_adl_quantile_estimation(symbol=symbol).data()
    api.account_trade_list(symbol=symbol, limit=5).data()
    api.get_income_history(limit=5).data()
    checks: dict[str, tuple[str, str, dict[str, Any]]] = {
        "GetCurrentPositionModeResponse": ("GET", "/v1/positionSide/dual", {}),
        "ChangeInitialLeverageResponse": ("POST", "/v1/leverage", {"symbol": symbol, "leverage": 10}),
        "UserCommissionRateResponse": ("GET", "/v1/commissionRate", {"symbol": symbol}),
        "PositionAdlQuantileEstimationResponse": ("GET", "/v1/adlQuantile", {}),
        "AccountTradeListResponse": ("GET", "/v1/userTrades", {"symbol": symbol}),
        "GetIncomeHistoryResponse": ("GET", "/v1/income", {}),
    }
    if market == USDM:
        for call in (
            api.account_information_v2,
            api.account_information_v3,
            api.futures_account_balance_v2,
            api.futures_account_balance_v3,
        ):
            call().data()
        api.position_information_v2(symbol=symbol).data()
        api.position_information_v3(symbol=symbol).data()
        api.notional_and_leverage_brackets(symbol=symbol).data()
        api.symbol_configuration(symbol=symbol).data()
        checks |= {
            "AccountInformationV2Response": ("GET", "/v2/account", {}),
            "AccountInformationV3Response": ("GET", "/v3/account", {}),
            "FuturesAccountBalanceV2Response": ("GET", "/v2/balance", {}),
            "FuturesAccountBalanceV3Response": ("GET", "/v3/balance", {}),
            "PositionInformationV2Response": ("GET", "/v2/positionRisk", {"symbol": symbol}),
            "PositionInformationV3Response": ("GET", "/v3/positionRisk", {"symbol": symbol}),
            "NotionalAndLeverageBracketsResponse": ("GET", "/v1/leverageBracket", {"symbol": symbol}),
            "SymbolConfigurationResponse": ("GET", "/v1/symbolConfig", {"symbol": symbol}),
        }
    else:
        api.account_information().data()
        api.futures_account_balance().data()
        api.position_information(pair=PAIR[market]).data()
        api.notional_bracket_for_pair(pair=PAIR[market]).data()
        api.notional_bracket_for_symbol(symbol=symbol).data()
        checks |= {
            "AccountInformationResponse": ("GET", "/v1/account", {}),
            "FuturesAccountBalanceResponse": ("GET", "/v1/balance", {}),
            "PositionInformationResponse": ("GET", "/v1/positionRisk", {"pair": PAIR[market]}),
            "NotionalBracketForPairResponse": ("GET", "/v1/leverageBracket", {"pair": PAIR[market]}),
            "NotionalBracketForSymbolResponse": ("GET", "/v2/leverageBracket", {"symbol": symbol}),
        }
    for name, (method, path, params) in checks.items():
        expect(market, name, raw(exchange, market, method, path, **params))


@pytest.mark.parametrize("market", [USDM, COINM])
def test_orders_and_algo_orders(exchange, clients, market, sdk_complaints):
    api, symbol = clients[market], RAW[market]
    qty = Decimal("0.002") if market == USDM else Decimal(1)
    answer = raw(exchange, market, "GET", "/v1/ticker/price", symbol=symbol)
    price = Decimal((answer[0] if isinstance(answer, list) else answer)["price"])
    far = (price * Decimal("0.9")).quantize(Decimal("0.1"))
    placed = api.new_order(
        symbol=symbol, side="BUY", type="LIMIT", time_in_force="GTC", quantity=qty, price=far
    ).data()
    api.query_order(symbol=symbol, order_id=placed.order_id).data()
    api.current_all_open_orders(symbol=symbol).data()
    api.all_orders(symbol=symbol, limit=5).data()
    api.cancel_order(symbol=symbol, order_id=placed.order_id).data()
    batch = [
        {
            "symbol": symbol,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": str(qty),
            "price": str(far),
        }
    ]
    api.place_multiple_orders(batch_orders=batch).data()
    api.cancel_all_open_orders(symbol=symbol).data()
    order = {
        "symbol": symbol,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": str(qty),
        "price": str(far),
    }
    posted = raw(exchange, market, "POST", "/v1/order", **order)
    expect(market, "NewOrderResponse", posted)
    expect(
        market,
        "QueryOrderResponse",
        raw(exchange, market, "GET", "/v1/order", symbol=symbol, orderId=posted["orderId"]),
    )
    expect(
        market, "CurrentAllOpenOrdersResponse", raw(exchange, market, "GET", "/v1/openOrders", symbol=symbol)
    )
    expect(market, "AllOrdersResponse", raw(exchange, market, "GET", "/v1/allOrders", symbol=symbol))
    expect(
        market,
        "CancelOrderResponse",
        raw(exchange, market, "DELETE", "/v1/order", symbol=symbol, orderId=posted["orderId"]),
    )
    expect(
        market,
        "PlaceMultipleOrdersResponse",
        raw(exchange, market, "POST", "/v1/batchOrders", batchOrders=json.dumps([order])),
        allow=frozenset({"code", "msg"}),  # an item is an order or an error
    )
    expect(
        market,
        "CancelAllOpenOrdersResponse",
        raw(exchange, market, "DELETE", "/v1/allOpenOrders", symbol=symbol),
    )
    if market == COINM:
        return  # the COIN-M SDK has no algo-order methods or models (ccxt uses /dapi/v1/algoOrder: see ccxt tests)
    trigger = (price * Decimal("0.95")).quantize(Decimal("0.1"))
    api.new_order(symbol=symbol, side="BUY", type="MARKET", quantity=qty).data()
    algo = api.new_algo_order(
        algo_type="CONDITIONAL",
        symbol=symbol,
        side="SELL",
        type="STOP_MARKET",
        trigger_price=trigger,
        close_position="true",
    ).data()
    api.query_algo_order(algo_id=algo.algo_id).data()
    api.current_all_algo_open_orders(symbol=symbol).data()
    api.query_all_algo_orders(symbol=symbol).data()
    api.cancel_algo_order(algo_id=algo.algo_id).data()
    api.cancel_all_algo_open_orders(symbol=symbol).data()
    posted = raw(
        exchange,
        market,
        "POST",
        "/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol=symbol,
        side="SELL",
        type="TRAILING_STOP_MARKET",
        quantity=str(qty),
        callbackRate="1",
        reduceOnly="true",
    )
    expect(market, "NewAlgoOrderResponse", posted)
    expect(
        market,
        "QueryAlgoOrderResponse",
        raw(exchange, market, "GET", "/v1/algoOrder", algoId=posted["algoId"]),
        allow=_WHEN_FILLED,
    )
    expect(
        market,
        "CurrentAllAlgoOpenOrdersResponse",
        raw(exchange, market, "GET", "/v1/openAlgoOrders", symbol=symbol),
    )
    expect(
        market, "QueryAllAlgoOrdersResponse", raw(exchange, market, "GET", "/v1/allAlgoOrders", symbol=symbol)
    )
    expect(
        market,
        "CancelAlgoOrderResponse",
        raw(exchange, market, "DELETE", "/v1/algoOrder", algoId=posted["algoId"]),
    )
    expect(
        market,
        "CancelAllAlgoOpenOrdersResponse",
        raw(exchange, market, "DELETE", "/v1/algoOpenOrders", symbol=symbol),
    )
    key = api.start_user_data_stream().data().listen_key
    assert api.keepalive_user_data_stream().data().listen_key == key
    api.close_user_data_stream()
