"""``BinanceGateway``: the bot's only door to Binance Futures REST (USDⓈ-M ``/fapi`` and COIN-M ``/dapi``).

Every method returns domain types (``actors.exchange.types``) or raises an ``ExchangeError`` subclass
that names the recovery (``actors.exchange.errors``). Thread-safe: one python-binance client per
gateway behind a lock; the ``WeightBudget`` is shared by every gateway of the process on one venue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..domain.fills import InstrumentSpec
from ..domain.funding import FundingReading
from ..domain.model import ContractType, Kline
from .endpoints import Endpoints
from .errors import (
    NO_NEED_MARGIN_TYPE,
    NO_NEED_POSITION_SIDE,
    NO_SUCH_ORDER,
    UNKNOWN_ORDER,
    Rejected,
)
from .instruments import ExchangeInfoError, parse_symbol
from .kline_pages import KlineReader, klines_weight
from .parse import (
    MalformedPayload,
    is_protective_type,
    parse_algo_order,
    parse_balance,
    parse_funding,
    parse_order,
    parse_position,
    request_weight_limit,
)
from .ratelimit import WeightBudget
from .transport import GatewayCounters, Transport, endpoint, server_time_of
from .types import AlgoOrderResult, Balance, OrderResult, PositionInfo, ProtectiveKind, Side

_GONE = frozenset({NO_SUCH_ORDER, UNKNOWN_ORDER})
_MARGIN_TYPES = frozenset({"ISOLATED", "CROSSED"})
_W_ACCOUNT = 5
"""balance / positionRisk / account weight (USDⓈ-M; COIN-M charges less, we budget the larger)."""
_W_OPEN_ALL = 40
"""openOrders / openAlgoOrders without a symbol."""


def _qty(value: Decimal, what: str = "quantity") -> str:
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{what} must be a positive finite Decimal, got {value}")
    return f"{value:f}"


def _pick(contract: ContractType, usd: Callable[..., Any], coin: Callable[..., Any]) -> Callable[..., Any]:
    return usd if contract is ContractType.USDT_M else coin


def _rows(body: Any, what: str) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get("orders"), list):
        return list(body["orders"])
    if not isinstance(body, list):
        raise MalformedPayload(f"{what}: expected a JSON list, got {type(body).__name__}")
    return body


class BinanceGateway:
    """REST gateway for one venue and one account (see the module docstring).

    ``clock`` (wall seconds) paces time resyncs; signed timestamps follow python-binance's ``time.time()``
    plus the measured offset.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        api_key: str | None,
        api_secret: str | None,
        budget: WeightBudget,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoints = endpoints
        self.budget = budget
        self._t = Transport(
            endpoints,
            api_key=api_key,
            api_secret=api_secret,
            budget=budget,
            recv_window_ms=recv_window_ms,
            timeout_s=timeout_s,
            clock=clock,
        )
        self._c = self._t.client
        self._klines = KlineReader(self._fetch_klines, self.server_time_ms)

    # --- time, metrics -----------------------------------------------------------------------------

    def sync_time(self) -> int:
        """Measure the venue's clock offset and sign with it from now on; returns the offset in ms."""
        return self._t.sync_time()

    @property
    def time_offset_ms(self) -> int | None:
        return self._t.time_offset_ms

    def counters(self) -> GatewayCounters:
        return self._t.counters()

    def server_time_ms(self, contract: ContractType) -> int:
        """The market's server time (``/fapi|dapi/v1/time``), which decides whether a candle is closed."""
        fn = _pick(contract, self._c.futures_time, self._c.futures_coin_time)
        return server_time_of(self._t.call(endpoint("GET", contract, "time"), 1, fn))

    # --- market data -------------------------------------------------------------------------------

    def exchange_info(self, contract: ContractType) -> dict[str, InstrumentSpec]:
        """Specs of every tradable symbol; adopts the REQUEST_WEIGHT limit into the budget.

        Symbols whose filters cannot be parsed are left out (counted as ``ExchangeInfoError``).
        """
        fn = _pick(contract, self._c.futures_exchange_info, self._c.futures_coin_exchange_info)
        body = self._t.call(endpoint("GET", contract, "exchangeInfo"), 1, fn)
        if not isinstance(body, dict):
            raise MalformedPayload(f"exchangeInfo: expected a JSON object, got {type(body).__name__}")
        limit = request_weight_limit(body)
        if limit is not None:
            self.budget.set_limit(limit)
        specs: dict[str, InstrumentSpec] = {}
        for raw in body.get("symbols", ()):
            try:
                spec = parse_symbol(raw, contract)
            except ExchangeInfoError:
                self._t.count_error("ExchangeInfoError")
                continue
            specs[spec.symbol] = spec
        return specs

    def _fetch_klines(
        self,
        symbol: str,
        contract: ContractType,
        interval: str,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> Any:
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        fn = self._c.futures_klines if contract is ContractType.USDT_M else self._c.futures_coin_klines
        weight = klines_weight(limit)
        return self._t.call(endpoint("GET", contract, "klines"), weight, lambda: fn(**params))

    def klines(
        self,
        symbol: str,
        contract: ContractType,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        """One klines request (``limit`` 1..1500); only the closed candles (close time < server time)."""
        return self._klines.klines(symbol, contract, interval, start_ms=start_ms, end_ms=end_ms, limit=limit)

    def closed_klines_range(
        self, symbol: str, contract: ContractType, interval: str, start_open_ms: int, end_open_ms: int
    ) -> list[Kline]:
        """Exactly the closed candles with open time in [start, end], ascending, deduped (gap backfill)."""
        return self._klines.closed_range(symbol, contract, interval, start_open_ms, end_open_ms)

    def recent_closed_klines(
        self, symbol: str, contract: ContractType, interval: str, count: int
    ) -> list[Kline]:
        """The last ``count`` closed candles, ascending (warm-up)."""
        return self._klines.recent_closed(symbol, contract, interval, count)

    # --- account settings ----------------------------------------------------------------------------

    def set_leverage(self, symbol: str, contract: ContractType, leverage: int) -> int:
        """Set the symbol's leverage; returns the leverage the venue reports."""
        fn = _pick(contract, self._c.futures_change_leverage, self._c.futures_coin_change_leverage)
        name = endpoint("POST", contract, "leverage")
        body = self._t.call(name, 1, lambda: fn(symbol=symbol, leverage=leverage), signed=True)
        value = body.get("leverage") if isinstance(body, dict) else None
        return int(value) if isinstance(value, int | str) else leverage

    def set_margin_type(self, symbol: str, contract: ContractType, margin_type: str) -> None:
        """``ISOLATED`` or ``CROSSED``; already set (-4046) counts as success."""
        if margin_type not in _MARGIN_TYPES:
            raise ValueError(f"margin_type must be ISOLATED or CROSSED, got {margin_type!r}")
        fn = _pick(contract, self._c.futures_change_margin_type, self._c.futures_coin_change_margin_type)
        name = endpoint("POST", contract, "marginType")
        try:
            self._t.call(
                name,
                1,
                lambda: fn(symbol=symbol, marginType=margin_type),
                signed=True,
                expect=frozenset({NO_NEED_MARGIN_TYPE}),
            )
        except Rejected as exc:
            if exc.code != NO_NEED_MARGIN_TYPE:
                raise

    def ensure_one_way(self, contract: ContractType) -> None:
        """Turn hedge mode off (dualSidePosition=false); already one-way (-4059) counts as success."""
        fn = _pick(contract, self._c.futures_change_position_mode, self._c.futures_coin_change_position_mode)
        name = endpoint("POST", contract, "positionSide/dual")
        try:
            self._t.call(
                name,
                1,
                lambda: fn(dualSidePosition="false"),
                signed=True,
                expect=frozenset({NO_NEED_POSITION_SIDE}),
            )
        except Rejected as exc:
            if exc.code != NO_NEED_POSITION_SIDE:
                raise

    # --- orders ------------------------------------------------------------------------------------

    def market_order(
        self,
        symbol: str,
        contract: ContractType,
        side: Side,
        qty: Decimal,
        client_order_id: str,
        *,
        reduce_only: bool = False,
    ) -> OrderResult:
        """A MARKET order with RESULT response (the fill comes back). ``UnknownStatus`` → ``get_order``."""
        params: dict[str, Any] = {
            "symbol": symbol,
            "side": Side(side).value,
            "type": "MARKET",
            "quantity": _qty(qty),
            "newClientOrderId": client_order_id,
            "newOrderRespType": "RESULT",
        }
        if reduce_only:
            params["reduceOnly"] = "true"
        fn = _pick(contract, self._c.futures_create_order, self._c.futures_coin_create_order)
        name = endpoint("POST", contract, "order")
        body = self._t.call(name, 1, lambda: fn(**params), signed=True, placing=True)
        return parse_order(body, contract)

    def get_order(self, symbol: str, contract: ContractType, *, client_order_id: str) -> OrderResult | None:
        """The order with this client id, or None when the venue does not know it."""
        fn = _pick(contract, self._c.futures_get_order, self._c.futures_coin_get_order)
        name = endpoint("GET", contract, "order")
        try:
            body = self._t.call(
                name,
                1,
                lambda: fn(symbol=symbol, origClientOrderId=client_order_id),
                signed=True,
                expect=_GONE,
            )
        except Rejected as exc:
            if exc.code in _GONE:
                return None
            raise
        return parse_order(body, contract)

    def open_orders(self, contract: ContractType, symbol: str | None = None) -> list[OrderResult]:
        params = {"symbol": symbol} if symbol else {}
        fn = _pick(contract, self._c.futures_get_open_orders, self._c.futures_coin_get_open_orders)
        name = endpoint("GET", contract, "openOrders")
        body = self._t.call(name, 1 if symbol else _W_OPEN_ALL, lambda: fn(**params), signed=True)
        return [parse_order(row, contract) for row in _rows(body, "openOrders")]

    # --- algo (conditional) orders -------------------------------------------------------------------

    def _algo(self, contract: ContractType, method: str, path: str) -> Callable[..., Any]:
        if contract is ContractType.USDT_M:
            method_fn: Callable[..., Any] = {
                ("post", "algoOrder"): self._c.futures_create_algo_order,
                ("get", "algoOrder"): self._c.futures_get_algo_order,
                ("delete", "algoOrder"): self._c.futures_cancel_algo_order,
                ("get", "openAlgoOrders"): self._c.futures_get_open_algo_orders,
            }[method, path]
            return method_fn
        # python-binance 1.0.37 has no COIN-M algo methods; its generic COIN-M request builds the same URL.
        request = self._c._request_futures_coin_api  # noqa: SLF001

        def call(**params: Any) -> Any:
            return request(method, path, signed=True, data=params)

        return call

    def place_protective(  # noqa: PLR0917 - the positional order is the agreed API
        self,
        symbol: str,
        contract: ContractType,
        kind: ProtectiveKind,
        side: Side,
        trigger_price: Decimal,
        client_algo_id: str,
        *,
        close_position: bool = True,
        quantity: Decimal | None = None,
    ) -> AlgoOrderResult:
        """A STOP_MARKET / TAKE_PROFIT_MARKET on the algo-order API (``POST .../algoOrder``).

        ``close_position=True`` closes the whole position (no quantity); otherwise ``quantity`` is
        required and the order is reduce-only. ``UnknownStatus`` → ``get_algo_order``.
        """
        if close_position == (quantity is not None):
            raise ValueError("place_protective: give quantity exactly when close_position is False")
        params: dict[str, Any] = {
            "algoType": "CONDITIONAL",
            "symbol": symbol,
            "side": Side(side).value,
            "type": ProtectiveKind(kind).value,
            "triggerPrice": _qty(trigger_price, "trigger price"),
            "clientAlgoId": client_algo_id,
            "workingType": "CONTRACT_PRICE",
        }
        if quantity is not None:
            params |= {"quantity": _qty(quantity), "reduceOnly": "true"}
        else:
            params["closePosition"] = "true"
        fn = self._algo(contract, "post", "algoOrder")
        name = endpoint("POST", contract, "algoOrder")
        body = self._t.call(name, 1, lambda: fn(**params), signed=True, placing=True)
        return parse_algo_order(body, contract)

    def place_trailing_stop(  # noqa: PLR0917 - the positional order of place_protective
        self,
        symbol: str,
        contract: ContractType,
        side: Side,
        quantity: Decimal,
        callback_rate: Decimal,
        client_algo_id: str,
        *,
        activate_price: Decimal | None = None,
    ) -> AlgoOrderResult:
        """A reduce-only TRAILING_STOP_MARKET on the algo API: ``callbackRate`` in percent, armed at
        ``activatePrice`` (not the legacy ``activationPrice``, ignored there) or at once; no ``triggerPrice``.
        An activation already passed is refused with -2021."""
        params: dict[str, Any] = {
            "algoType": "CONDITIONAL",
            "symbol": symbol,
            "side": Side(side).value,
            "type": ProtectiveKind.TRAILING_STOP_MARKET.value,
            "quantity": _qty(quantity),
            "reduceOnly": "true",
            "callbackRate": _qty(callback_rate, "callback rate"),
            "clientAlgoId": client_algo_id,
            "workingType": "CONTRACT_PRICE",
        }
        if activate_price is not None:
            params["activatePrice"] = _qty(activate_price, "activation price")
        fn = self._algo(contract, "post", "algoOrder")
        name = endpoint("POST", contract, "algoOrder")
        body = self._t.call(name, 1, lambda: fn(**params), signed=True, placing=True)
        return parse_algo_order(body, contract)

    def funding_reading(self, symbol: str, contract: ContractType) -> FundingReading:
        """``premiumIndex``: the symbol's latest funding rate (``lastFundingRate``) and next settlement."""
        fn = _pick(contract, self._c.futures_mark_price, self._c.futures_coin_mark_price)
        name = endpoint("GET", contract, "premiumIndex")
        return parse_funding(self._t.call(name, 1, lambda: fn(symbol=symbol)))

    def get_algo_order(
        self, symbol: str, contract: ContractType, *, client_algo_id: str
    ) -> AlgoOrderResult | None:
        """The algo order with this client id on ``symbol``, or None when the venue does not know it."""
        fn = self._algo(contract, "get", "algoOrder")
        name = endpoint("GET", contract, "algoOrder")
        try:
            body = self._t.call(name, 1, lambda: fn(clientAlgoId=client_algo_id), signed=True, expect=_GONE)
        except Rejected as exc:
            if exc.code in _GONE:
                return None
            raise
        result = parse_algo_order(body, contract)
        return result if result.symbol == symbol else None

    def open_algo_orders(self, contract: ContractType, symbol: str | None = None) -> list[AlgoOrderResult]:
        """Open stop, take-profit and trailing-stop algo orders (other algo types are not the bot's)."""
        params = {"symbol": symbol} if symbol else {}
        fn = self._algo(contract, "get", "openAlgoOrders")
        name = endpoint("GET", contract, "openAlgoOrders")
        body = self._t.call(name, 1 if symbol else _W_OPEN_ALL, lambda: fn(**params), signed=True)
        return [parse_algo_order(r, contract) for r in _rows(body, "openAlgoOrders") if is_protective_type(r)]

    def cancel_algo_order(self, symbol: str, contract: ContractType, *, client_algo_id: str) -> bool:
        """Cancel it; False when it is already gone (triggered, cancelled or unknown)."""
        del symbol  # the algo API identifies the order by its client id alone
        fn = self._algo(contract, "delete", "algoOrder")
        name = endpoint("DELETE", contract, "algoOrder")
        try:
            self._t.call(name, 1, lambda: fn(clientAlgoId=client_algo_id), signed=True, expect=_GONE)
        except Rejected as exc:
            if exc.code in _GONE:
                return False
            raise
        return True

    # --- account -----------------------------------------------------------------------------------

    def positions(self, contract: ContractType) -> list[PositionInfo]:
        """Non-zero one-way positions."""
        fn = _pick(contract, self._c.futures_position_information, self._c.futures_coin_position_information)
        name = endpoint("GET", contract, "positionRisk", 3 if contract is ContractType.USDT_M else 1)
        rows = _rows(self._t.call(name, _W_ACCOUNT, fn, signed=True), "positionRisk")
        found = [parse_position(r, contract) for r in rows]
        return [p for p in found if p.amount != 0]

    def balances(self, contract: ContractType) -> dict[str, Balance]:
        """Wallet balance and available balance per asset."""
        fn = _pick(contract, self._c.futures_account_balance, self._c.futures_coin_account_balance)
        name = endpoint("GET", contract, "balance", 3 if contract is ContractType.USDT_M else 1)
        rows = _rows(self._t.call(name, _W_ACCOUNT, fn, signed=True), "balance")
        return {b.asset: b for b in (parse_balance(r) for r in rows)}

    # --- user-data stream keys -------------------------------------------------------------------------

    def create_listen_key(self, contract: ContractType) -> str:
        fn = _pick(
            contract, self._c.futures_stream_get_listen_key, self._c.futures_coin_stream_get_listen_key
        )
        key = self._t.call(endpoint("POST", contract, "listenKey"), 1, fn)
        if not isinstance(key, str) or not key:
            raise MalformedPayload("listenKey: missing field 'listenKey'")
        return key

    def keepalive_listen_key(self, contract: ContractType, key: str) -> None:
        fn = _pick(contract, self._c.futures_stream_keepalive, self._c.futures_coin_stream_keepalive)
        self._t.call(endpoint("PUT", contract, "listenKey"), 1, lambda: fn(listenKey=key))

    def close_listen_key(self, contract: ContractType, key: str) -> None:
        fn = _pick(contract, self._c.futures_stream_close, self._c.futures_coin_stream_close)
        self._t.call(endpoint("DELETE", contract, "listenKey"), 1, lambda: fn(listenKey=key))
