"""The algo-order (conditional) endpoints of ``BinanceGateway``: stop-loss, take-profit and trailing stop.

Binance takes conditional orders only on ``POST /fapi|dapi/v1/algoOrder`` (on ``/order`` they are refused
with -4120), with ``triggerPrice`` and ``clientAlgoId``; a TRAILING_STOP_MARKET takes ``callbackRate`` and
``activatePrice`` instead of a trigger. ``AlgoOrders`` is a part of ``BinanceGateway`` (its client ``_c``
and transport ``_t`` are the gateway's); the small helpers here write quantities and read lists for both.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..domain.funding import FundingReading
from ..domain.model import ContractType
from .errors import NO_SUCH_ORDER, UNKNOWN_ORDER, Rejected
from .parse import is_protective_type, parse_algo_order, parse_funding, rows_of
from .transport import Transport, endpoint
from .types import AlgoOrderResult, ProtectiveKind, Side

GONE = frozenset({NO_SUCH_ORDER, UNKNOWN_ORDER})
"""Codes of an order the venue does not know (any more)."""
W_OPEN_ALL = 40
"""openOrders / openAlgoOrders without a symbol."""


def qty_text(value: Decimal, what: str = "quantity") -> str:
    """A positive Decimal as Binance takes it (no exponent)."""
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{what} must be a positive finite Decimal, got {value}")
    return f"{value:f}"


def pick(contract: ContractType, usd: Callable[..., Any], coin: Callable[..., Any]) -> Callable[..., Any]:
    """The USDⓈ-M or the COIN-M method of the client."""
    return usd if contract is ContractType.USDT_M else coin


class AlgoOrders:
    """The gateway's conditional orders, and the funding rate a V2 pair reads from ``premiumIndex``."""

    _c: Any
    """python-binance's client (the gateway's)."""
    _t: Transport

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
            "triggerPrice": qty_text(trigger_price, "trigger price"),
            "clientAlgoId": client_algo_id,
            "workingType": "CONTRACT_PRICE",
        }
        if quantity is not None:
            params |= {"quantity": qty_text(quantity), "reduceOnly": "true"}
        else:
            params["closePosition"] = "true"
        fn = self._algo(contract, "post", "algoOrder")
        name = endpoint("POST", contract, "algoOrder")
        body = self._t.call(name, 0, lambda: fn(**params), signed=True, placing=True, protective=True)
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
            "quantity": qty_text(quantity),
            "reduceOnly": "true",
            "callbackRate": qty_text(callback_rate, "callback rate"),
            "clientAlgoId": client_algo_id,
            "workingType": "CONTRACT_PRICE",
        }
        if activate_price is not None:
            params["activatePrice"] = qty_text(activate_price, "activation price")
        fn = self._algo(contract, "post", "algoOrder")
        name = endpoint("POST", contract, "algoOrder")
        body = self._t.call(name, 0, lambda: fn(**params), signed=True, placing=True, protective=True)
        return parse_algo_order(body, contract)

    def funding_reading(self, symbol: str, contract: ContractType) -> FundingReading:
        """``premiumIndex``: the symbol's latest funding rate (``lastFundingRate``) and next settlement."""
        fn = pick(contract, self._c.futures_mark_price, self._c.futures_coin_mark_price)
        name = endpoint("GET", contract, "premiumIndex")
        return parse_funding(self._t.call(name, 1, lambda: fn(symbol=symbol)))

    def get_algo_order(
        self, symbol: str, contract: ContractType, *, client_algo_id: str
    ) -> AlgoOrderResult | None:
        """The algo order with this client id on ``symbol``, or None when the venue does not know it."""
        fn = self._algo(contract, "get", "algoOrder")
        name = endpoint("GET", contract, "algoOrder")
        try:
            body = self._t.call(name, 1, lambda: fn(clientAlgoId=client_algo_id), signed=True, expect=GONE)
        except Rejected as exc:
            if exc.code in GONE:
                return None
            raise
        result = parse_algo_order(body, contract)
        return result if result.symbol == symbol else None

    def open_algo_orders(self, contract: ContractType, symbol: str | None = None) -> list[AlgoOrderResult]:
        """Open stop, take-profit and trailing-stop algo orders (other algo types are not the bot's)."""
        params = {"symbol": symbol} if symbol else {}
        fn = self._algo(contract, "get", "openAlgoOrders")
        name = endpoint("GET", contract, "openAlgoOrders")
        body = self._t.call(name, 1 if symbol else W_OPEN_ALL, lambda: fn(**params), signed=True)
        return [
            parse_algo_order(r, contract) for r in rows_of(body, "openAlgoOrders") if is_protective_type(r)
        ]

    def cancel_algo_order(self, symbol: str, contract: ContractType, *, client_algo_id: str) -> bool:
        """Cancel it; False when it is already gone (triggered, cancelled or unknown)."""
        del symbol  # the algo API identifies the order by its client id alone
        fn = self._algo(contract, "delete", "algoOrder")
        name = endpoint("DELETE", contract, "algoOrder")
        try:
            self._t.call(name, 1, lambda: fn(clientAlgoId=client_algo_id), signed=True, expect=GONE)
        except Rejected as exc:
            if exc.code in GONE:
                return False
            raise
        return True
