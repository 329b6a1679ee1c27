"""Every answer and event the bot itself parses, as the local exchange sends it, against the official SDKs' models.

The bot's own gateway (python-binance underneath) makes each call; the raw JSON it received is then held
against the SDK model of that endpoint: strict types as declared and every field present. The bot's user
streams are read on the paths python-binance uses (``/private/ws?listenKey=`` for USDⓈ-M, ``/ws/<key>`` for
COIN-M). The COIN-M SDK has no Algo Service models; COIN-M algo answers and ALGO_UPDATE are held against
USDⓈ-M's (one Algo Service, the same fields).
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.endpoints import Endpoints
from nancemakina.actors.exchange.gateway import BinanceGateway
from nancemakina.actors.exchange.ratelimit import WeightBudget
from nancemakina.actors.exchange.types import ProtectiveKind, Side
from tests.contract.clients import COINM, RAW, USDM, check_model

REST = {
    USDM: "binance_sdk_derivatives_trading_usds_futures.rest_api.models",
    COINM: "binance_sdk_derivatives_trading_coin_futures.rest_api.models",
}
WS = {
    USDM: "binance_sdk_derivatives_trading_usds_futures.websocket_streams.models",
    COINM: "binance_sdk_derivatives_trading_coin_futures.websocket_streams.models",
}
CONTRACT = {USDM: ContractType.USDT_M, COINM: ContractType.COIN_M}
_CONDITIONAL = frozenset({"actualType", "actualQty", "pair", "cumBase", "cumQuote", "filters"})


def model(modules: dict[str, str], market: str, name: str) -> Any:
    for module in (modules[market], modules[USDM]):  # COIN-M algo answers: USDⓈ-M's models
        found = getattr(__import__(module, fromlist=[name]), name, None)
        if found is not None:
            return found
    raise LookupError(name)


@pytest.fixture(scope="module")
def gateway(exchange):
    return BinanceGateway(
        Endpoints.local(exchange.rest_url, exchange.ws_url),
        api_key=exchange.api_key,
        api_secret=exchange.api_secret,
        budget=WeightBudget(),
    )


def answered(gateway: BinanceGateway) -> Any:
    """The raw JSON of the gateway's last answer."""
    return gateway._t.client.response.json()


@pytest.mark.parametrize("market", [USDM, COINM])
def test_rest_answers_the_bot_parses(exchange, gateway, market):
    contract, symbol = CONTRACT[market], RAW[market]
    qty = Decimal("0.010") if market == USDM else Decimal(1)

    def expect(name: str) -> None:
        check_model(model(REST, market, name), answered(gateway), allow=_CONDITIONAL)

    gateway.exchange_info(contract)
    expect("ExchangeInformationResponse")
    gateway.server_time_ms(contract)
    expect("CheckServerTimeResponse")
    gateway.klines(symbol, contract, "1m", limit=3)
    expect("KlineCandlestickDataResponse")
    gateway.set_leverage(symbol, contract, 10)
    expect("ChangeInitialLeverageResponse")
    gateway.set_margin_type(symbol, contract, "ISOLATED")
    expect("ChangeMarginTypeResponse")
    gateway.set_margin_type(symbol, contract, "CROSSED")
    gateway.market_order(symbol, contract, Side.BUY, qty, f"bot-entry-{market}")
    expect("NewOrderResponse")
    gateway.get_order(symbol, contract, client_order_id=f"bot-entry-{market}")
    expect("QueryOrderResponse")
    gateway.open_orders(contract, symbol)
    expect("CurrentAllOpenOrdersResponse")
    mark = Decimal(str(gateway.positions(contract)[0].mark_price))
    expect("PositionInformationV3Response" if market == USDM else "PositionInformationResponse")
    gateway.balances(contract)
    expect("FuturesAccountBalanceV3Response" if market == USDM else "FuturesAccountBalanceResponse")
    trigger = (mark * Decimal("0.95")).quantize(Decimal("0.1"))
    gateway.place_protective(
        symbol, contract, ProtectiveKind.STOP_MARKET, Side.SELL, trigger, f"bot-sl-{market}"
    )
    expect("NewAlgoOrderResponse")
    gateway.get_algo_order(symbol, contract, client_algo_id=f"bot-sl-{market}")
    expect("QueryAlgoOrderResponse")
    gateway.open_algo_orders(contract, symbol)
    expect("CurrentAllAlgoOpenOrdersResponse")
    gateway.cancel_algo_order(symbol, contract, client_algo_id=f"bot-sl-{market}")
    expect("CancelAlgoOrderResponse")
    key = gateway.create_listen_key(contract)
    expect("StartUserDataStreamResponse")
    gateway.keepalive_listen_key(contract, key)
    expect("KeepaliveUserDataStreamResponse")


@pytest.mark.parametrize("market", [USDM, COINM])
def test_user_events_the_bot_parses(exchange, gateway, market):
    contract, symbol = CONTRACT[market], RAW[market]
    qty = Decimal("0.010") if market == USDM else Decimal(1)
    key = gateway.create_listen_key(contract)
    path = f"private/ws?listenKey={key}" if market == USDM else f"ws/{key}"

    def trade() -> None:
        gateway.market_order(symbol, contract, Side.BUY, qty, f"ev-{market}")
        mark = Decimal(str(gateway.positions(contract)[0].mark_price))
        trigger = (mark * Decimal("0.95")).quantize(Decimal("0.1"))
        gateway.place_protective(
            symbol, contract, ProtectiveKind.STOP_MARKET, Side.SELL, trigger, f"ev-sl-{market}"
        )
        gateway.cancel_algo_order(symbol, contract, client_algo_id=f"ev-sl-{market}")
        exchange.expire_listen_key(key)

    async def main() -> dict[str, Any]:
        events: dict[str, Any] = {}
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{exchange.ws_url}{path}") as ws:
            await asyncio.to_thread(trade)
            while "listenKeyExpired" not in events:
                data = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
                events.setdefault(data["e"], data)
        return events

    events = asyncio.run(main())
    names = {
        "ORDER_TRADE_UPDATE": "OrderTradeUpdate",
        "ACCOUNT_UPDATE": "AccountUpdate",
        "ALGO_UPDATE": "AlgoUpdate",
        "listenKeyExpired": "ListenKeyExpired",
    }
    if market == USDM:
        names["TRADE_LITE"] = "TradeLite"
    else:
        assert "TRADE_LITE" not in events  # USDⓈ-M only
    for event, name in names.items():
        check_model(model(WS, market, name), events[event], allow=frozenset({"e"}))
