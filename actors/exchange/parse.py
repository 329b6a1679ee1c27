"""Binance JSON → domain types: REST orders, algo orders, positions, balances, klines, user-data events.

Pure functions. Bad input raises ``MalformedPayload`` naming what was parsed and the field at fault;
user-data events of unknown types parse to ``None`` (Binance adds event types without notice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from ..domain.funding import FundingReading
from ..domain.model import TIMEFRAME_MS, ContractType, Kline
from .types import (
    AccountTrade,
    AccountUpdate,
    AlgoOrderResult,
    AlgoStatus,
    AlgoUpdate,
    Balance,
    ListenKeyExpired,
    OrderResult,
    OrderStatus,
    OrderUpdate,
    PositionInfo,
    ProtectiveKind,
    Side,
    SymbolSettings,
    UserEvent,
)

_STATUS_ALIASES = {"EXPIRED_IN_MATCH": "EXPIRED"}
_MISSING = object()
_E = TypeVar("_E", bound=StrEnum)


class MalformedPayload(ValueError):  # noqa: N818 - the name other modules import
    """Endpoints JSON lacks a field or holds a value of the wrong shape; the message names both."""


class _Fields:
    """Typed access to a JSON object; every failure is a ``MalformedPayload`` naming ``what`` and the key."""

    __slots__ = ("raw", "what")

    def __init__(self, raw: Any, what: str) -> None:
        if not isinstance(raw, Mapping):
            raise MalformedPayload(f"{what}: expected a JSON object, got {type(raw).__name__}")
        self.raw: Mapping[str, Any] = raw
        self.what = what

    def _get(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw.get(key, _MISSING)
        if value is _MISSING or value is None:
            if default is _MISSING:
                raise MalformedPayload(f"{self.what}: missing field {key!r}")
            return default
        return value

    def _bad(self, key: str, value: Any, expected: str) -> MalformedPayload:
        return MalformedPayload(f"{self.what}: field {key!r} is not {expected}: {value!r}"[:300])

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str | int):
            raise self._bad(key, value, "a string")
        return str(value)

    def integer(self, key: str, default: Any = _MISSING) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self._bad(key, value, "an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise self._bad(key, value, "an integer") from None

    def decimal(self, key: str, default: Any = _MISSING) -> Decimal:
        value = self._get(key, default)
        try:
            result = Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise self._bad(key, value, "a decimal number") from None
        if not result.is_finite():
            raise self._bad(key, value, "a finite decimal number")
        return result

    def number(self, key: str, default: Any = _MISSING) -> float:
        return float(self.decimal(key, default))

    def flag(self, key: str, default: Any = _MISSING) -> bool:
        value = self._get(key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise self._bad(key, value, "a boolean")

    def enum(self, key: str, kind: type[_E], aliases: Mapping[str, str] | None = None) -> _E:
        value = self.text(key)
        value = (aliases or {}).get(value, value)
        try:
            return kind(value)
        except ValueError:
            raise self._bad(key, value, f"a {kind.__name__}") from None

    def obj(self, key: str) -> _Fields:
        return _Fields(self._get(key), f"{self.what}.{key}")

    def items(self, key: str) -> list[Any]:
        value = self._get(key, [])
        if not isinstance(value, list):
            raise self._bad(key, value, "a list")
        return value


# ---- REST --------------------------------------------------------------------------------------


def parse_order(raw: Any, contract_type: ContractType) -> OrderResult:
    """An order from ``POST/GET /fapi|dapi/v1/order`` or ``openOrders``."""
    f = _Fields(raw, "order")
    return OrderResult(
        symbol=f.text("symbol"),
        contract_type=contract_type,
        order_id=f.integer("orderId"),
        client_order_id=f.text("clientOrderId"),
        side=f.enum("side", Side),
        status=f.enum("status", OrderStatus, _STATUS_ALIASES),
        orig_qty=f.decimal("origQty"),
        executed_qty=f.decimal("executedQty"),
        avg_price=f.number("avgPrice", "0"),
        reduce_only=f.flag("reduceOnly", default=False),
        update_time_ms=f.integer("updateTime", f.raw.get("time", 0)),
    )


def is_protective_type(raw: Any) -> bool:
    """True when an algo order JSON is a STOP_MARKET or TAKE_PROFIT_MARKET (the kinds we place)."""
    kind = raw.get("orderType", raw.get("type")) if isinstance(raw, Mapping) else None
    return kind in ProtectiveKind.__members__


def parse_algo_order(raw: Any, contract_type: ContractType) -> AlgoOrderResult:
    """A conditional order from ``/fapi|dapi/v1/algoOrder`` or ``openAlgoOrders``."""
    f = _Fields(raw, "algo order")
    close_position = f.flag("closePosition", default=False)
    kind_key = "orderType" if "orderType" in f.raw else "type"
    kind = f.enum(kind_key, ProtectiveKind)
    trigger_key = "triggerPrice"
    if kind is ProtectiveKind.TRAILING_STOP_MARKET:  # no trigger price: its activation instead (0: none)
        trigger_key = "activatePrice" if f.raw.get("activatePrice") else "triggerPrice"
    return AlgoOrderResult(
        symbol=f.text("symbol"),
        contract_type=contract_type,
        algo_id=f.integer("algoId"),
        client_algo_id=f.text("clientAlgoId"),
        kind=kind,
        side=f.enum("side", Side),
        status=f.enum("algoStatus", AlgoStatus),
        trigger_price=f.decimal(trigger_key, "0"),
        quantity=None if close_position else f.decimal("quantity"),
        close_position=close_position,
        reduce_only=f.flag("reduceOnly", default=False),
        update_time_ms=f.integer("updateTime", f.raw.get("createTime", 0)),
    )


def parse_funding(raw: Any) -> FundingReading:
    """``/fapi|dapi/v1/premiumIndex`` of one symbol (COIN-M answers a one-row list) → its funding reading."""
    row = raw[0] if isinstance(raw, list) and raw else raw
    f = _Fields(row, "premiumIndex")
    return FundingReading(rate=f.number("lastFundingRate"), next_funding_ms=f.integer("nextFundingTime"))


def _margin_type(f: _Fields) -> str:
    # positionRisk v3 dropped marginType; an isolated position has an isolated wallet.
    if "marginType" in f.raw:
        return f.text("marginType").lower()
    return "isolated" if f.decimal("isolatedWallet", "0") != 0 else "cross"


def parse_position(raw: Any, contract_type: ContractType) -> PositionInfo:
    """A ``positionRisk`` row (v1/v2/v3; v3 lacks leverage, reported as 0)."""
    f = _Fields(raw, "position")
    return PositionInfo(
        symbol=f.text("symbol"),
        contract_type=contract_type,
        amount=f.decimal("positionAmt"),
        entry_price=f.number("entryPrice"),
        mark_price=f.number("markPrice", "0"),
        unrealized_pnl=f.number("unRealizedProfit", "0"),
        leverage=f.integer("leverage", 0),
        margin_type=_margin_type(f),
    )


def parse_account_trade(raw: Any) -> AccountTrade:
    """A ``userTrades`` row (USDⓈ-M and COIN-M alike); prices and money kept as the venue wrote them."""
    f = _Fields(raw, "account trade")
    return AccountTrade(
        symbol=f.text("symbol"),
        order_id=f.integer("orderId"),
        side=f.enum("side", Side),
        price=f.decimal("price"),
        qty=f.decimal("qty"),
        realized_pnl=f.decimal("realizedPnl"),
        commission=f.decimal("commission"),
        commission_asset=f.text("commissionAsset"),
        time_ms=f.integer("time"),
    )


def rows_of(body: Any, what: str) -> list[Any]:
    """A list answer's rows (also the ``{"orders": [...]}`` shape some list endpoints answer with)."""
    if isinstance(body, dict) and isinstance(body.get("orders"), list):
        return list(body["orders"])
    if not isinstance(body, list):
        raise MalformedPayload(f"{what}: expected a JSON list, got {type(body).__name__}")
    return body


def parse_symbol_settings(raw: Any) -> SymbolSettings:
    """A ``symbolConfig`` row (``CROSSED``/``ISOLATED``) or a COIN-M ``positionRisk`` row (``cross``/...)."""
    f = _Fields(raw, "symbol settings")
    kind = f.text("marginType").upper()
    return SymbolSettings(
        symbol=f.text("symbol"),
        margin_type="CROSSED" if kind in {"CROSS", "CROSSED"} else kind,
        leverage=f.integer("leverage"),
    )


def parse_balance(raw: Any) -> Balance:
    """A ``balance`` row (``balance``/``availableBalance``) or an ``account`` asset (``walletBalance``)."""
    f = _Fields(raw, "balance")
    wallet_key = "balance" if "balance" in f.raw else "walletBalance"
    return Balance(asset=f.text("asset"), wallet=f.number(wallet_key), available=f.number("availableBalance"))


def parse_kline_row(row: Any, symbol: str, interval: str) -> Kline:
    """A REST kline row ``[openTime, o, h, l, c, v, closeTime, ...]``; ``closed`` is the caller's call."""
    what = f"kline row of {symbol} {interval}"
    if not isinstance(row, Sequence) or isinstance(row, str) or len(row) < 6:
        raise MalformedPayload(f"{what}: expected a list of at least 6 values, got {str(row)[:80]!r}")
    f = _Fields(dict(zip(("t", "o", "h", "l", "c", "v"), row, strict=False)), what)
    return Kline(
        symbol=symbol,
        timeframe=interval,
        open_time_ms=f.integer("t"),
        open=f.number("o"),
        high=f.number("h"),
        low=f.number("l"),
        close=f.number("c"),
        volume=f.number("v"),
    )


def request_weight_limit(exchange_info: Any) -> int | None:
    """REQUEST_WEIGHT per minute from exchangeInfo ``rateLimits`` (None when absent)."""
    limits = exchange_info.get("rateLimits", ()) if isinstance(exchange_info, Mapping) else ()
    for raw in limits if isinstance(limits, list) else ():
        if isinstance(raw, Mapping) and raw.get("rateLimitType") == "REQUEST_WEIGHT":
            f = _Fields(raw, "exchangeInfo.rateLimits[]")
            if f.text("interval", "") == "MINUTE" and f.integer("intervalNum", 1) == 1:
                return f.integer("limit")
    return None


def order_rate_limits(exchange_info: Any) -> tuple[int | None, int | None]:
    """``ORDERS`` per 10 seconds and per minute from exchangeInfo ``rateLimits`` (None when absent)."""
    ten_s = minute = None
    limits = exchange_info.get("rateLimits", ()) if isinstance(exchange_info, Mapping) else ()
    for raw in limits if isinstance(limits, list) else ():
        if isinstance(raw, Mapping) and raw.get("rateLimitType") == "ORDERS":
            f = _Fields(raw, "exchangeInfo.rateLimits[]")
            span = (f.text("interval", ""), f.integer("intervalNum", 1))
            if span == ("SECOND", 10):
                ten_s = f.integer("limit")
            elif span == ("MINUTE", 1):
                minute = f.integer("limit")
    return ten_s, minute


def kline_close_time_ms(open_time_ms: int, interval: str) -> int:
    """Last millisecond of the candle opened at ``open_time_ms``."""
    return open_time_ms + TIMEFRAME_MS[interval] - 1


# ---- user-data stream --------------------------------------------------------------------------


def _order_update(f: _Fields, contract_type: ContractType) -> OrderUpdate:
    o = f.obj("o")
    return OrderUpdate(
        contract_type=contract_type,
        symbol=o.text("s"),
        client_order_id=o.text("c"),
        order_id=o.integer("i"),
        side=o.enum("S", Side),
        order_type=o.text("o"),
        execution_type=o.text("x"),
        status=o.enum("X", OrderStatus, _STATUS_ALIASES),
        last_filled_qty=o.decimal("l", "0"),
        cumulative_qty=o.decimal("z", "0"),
        last_filled_price=o.number("L", "0"),
        avg_price=o.number("ap", "0"),
        realized_pnl=o.number("rp", "0"),
        commission=o.decimal("n", "0"),
        commission_asset=o.text("N", ""),
        reduce_only=o.flag("R", default=False),
        event_time_ms=f.integer("E"),
    )


def _algo_update(f: _Fields, contract_type: ContractType) -> AlgoUpdate:
    o = f.obj("o")
    kind = o.text("o", "")
    return AlgoUpdate(
        contract_type=contract_type,
        symbol=o.text("s"),
        client_algo_id=o.text("caid"),
        algo_id=o.integer("aid"),
        status=o.enum("X", AlgoStatus),
        kind=ProtectiveKind(kind) if kind in ProtectiveKind.__members__ else None,
        # ALGO_UPDATE reports the triggered order's id ("ai"), not its client id.
        triggered_order_client_id=None,
        event_time_ms=f.integer("E"),
    )


def _account_position(p: _Fields, contract_type: ContractType) -> PositionInfo:
    return PositionInfo(
        symbol=p.text("s"),
        contract_type=contract_type,
        amount=p.decimal("pa"),
        entry_price=p.number("ep", "0"),
        mark_price=0.0,  # ACCOUNT_UPDATE carries no mark price
        unrealized_pnl=p.number("up", "0"),
        leverage=0,  # nor leverage
        margin_type=p.text("mt", "cross").lower(),
    )


def _account_update(f: _Fields, contract_type: ContractType) -> AccountUpdate:
    a = f.obj("a")
    balances = tuple(
        Balance(asset=b.text("a"), wallet=b.number("wb"), available=b.number("cw", b.raw.get("wb")))
        for b in (_Fields(x, "ACCOUNT_UPDATE.a.B[]") for x in a.items("B"))
    )
    rows = (_Fields(x, "ACCOUNT_UPDATE.a.P[]") for x in a.items("P"))
    positions = tuple(_account_position(p, contract_type) for p in rows if p.text("ps", "BOTH") == "BOTH")
    return AccountUpdate(
        contract_type=contract_type,
        reason=a.text("m", ""),
        balances=balances,
        positions=positions,
        event_time_ms=f.integer("E"),
    )


def parse_user_event(payload: Mapping[str, Any], contract_type: ContractType) -> UserEvent | None:
    """One user-data stream message → its event; ``None`` for event types the bot does not use.

    Accepts the raw event or the combined-stream envelope ``{"stream": ..., "data": {...}}``.
    """
    if isinstance(payload, Mapping) and "data" in payload and "e" not in payload:
        payload = payload["data"]
    if not isinstance(payload, Mapping):
        raise MalformedPayload(f"user event: expected a JSON object, got {type(payload).__name__}")
    event = payload.get("e")
    if event == "ORDER_TRADE_UPDATE":
        return _order_update(_Fields(payload, "ORDER_TRADE_UPDATE"), contract_type)
    if event == "ALGO_UPDATE":
        return _algo_update(_Fields(payload, "ALGO_UPDATE"), contract_type)
    if event == "ACCOUNT_UPDATE":
        return _account_update(_Fields(payload, "ACCOUNT_UPDATE"), contract_type)
    if event == "listenKeyExpired":
        f = _Fields(payload, "listenKeyExpired")
        return ListenKeyExpired(contract_type=contract_type, event_time_ms=f.integer("E"))
    return None
