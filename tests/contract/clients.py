"""Strangers' clients pointed at the local exchange, unchanged but for their base URLs, and the SDK model checks.

Nothing here may reach the internet: every REST and WebSocket root of a ccxt instance is replaced (the ones
the local exchange does not serve with a loopback dead end), and ``conftest`` refuses to resolve any name
but loopback for the whole session.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

USDM, COINM = "usdm", "coinm"
MARKETS = (USDM, COINM)
SYMBOL = {USDM: "BTC/USDT:USDT", COINM: "BTC/USD:BTC"}
AMOUNT = {USDM: 0.002, COINM: 1}
RAW = {USDM: "BTCUSDT", COINM: "BTCUSD_PERP"}
PAIR = {USDM: "BTCUSDT", COINM: "BTCUSD"}
_ROOTS = {
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "dapiPublic": "/dapi/v1",
    "dapiPrivate": "/dapi/v1",
    "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/futures/data",
}


def point_ccxt(client: Any, rest_url: str) -> Any:
    """Every REST and WebSocket root of a ccxt binance* client on the local exchange (loopback only)."""
    ws_url = rest_url.replace("http://", "ws://", 1)
    api = dict(client.urls["api"])
    for key, value in list(api.items()):
        if isinstance(value, str):  # sapi, eapi, papi, ...: a dead end on loopback, never the internet
            api[key] = f"{rest_url}/unsupported/{key}"
    api |= {key: rest_url + path for key, path in _ROOTS.items()}
    ws = {
        key: f"{ws_url}/unsupported/{key}"
        for key, value in api.get("ws", {}).items()
        if isinstance(value, str)
    }
    ws |= {"linear": f"{ws_url}/ws", "inverse": f"{ws_url}/ws"}
    ws["ws-api"] = {
        "linear": f"{ws_url}/unsupported",
        "inverse": f"{ws_url}/unsupported",
        "spot": f"{ws_url}/unsupported",
    }
    api["ws"] = ws
    client.urls["api"] = api
    return client


def ccxt_client(module: Any, market: str, exchange: Any, **options: Any) -> Any:
    """``ccxt.binanceusdm`` / ``binancecoinm`` (sync or pro ``module``) on the local exchange."""
    cls = module.binanceusdm if market == USDM else module.binancecoinm
    client = cls(
        {
            "apiKey": exchange.api_key,
            "secret": exchange.api_secret,
            "enableRateLimit": False,  # ccxt's client-side throttle only slows the suite; the exchange counts
            "options": {"fetchCurrencies": False, **options},  # else load_markets asks the spot sapi first
        }
    )
    return point_ccxt(client, exchange.rest_url)


def sdk_client(market: str, exchange: Any) -> Any:
    """Binance's official USDⓈ-M or COIN-M SDK client on the local exchange."""
    from binance_common.configuration import ConfigurationRestAPI, ConfigurationWebSocketStreams

    rest = ConfigurationRestAPI(
        api_key=exchange.api_key, api_secret=exchange.api_secret, base_path=exchange.rest_url, retries=0
    )
    streams = ConfigurationWebSocketStreams(stream_url=exchange.rest_url.replace("http://", "ws://", 1))
    if market == USDM:
        from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
            DerivativesTradingUsdsFutures as Client,
        )
    else:
        from binance_sdk_derivatives_trading_coin_futures.derivatives_trading_coin_futures import (
            DerivativesTradingCoinFutures as Client,
        )
    return Client(config_rest_api=rest, config_ws_streams=streams)


# --- SDK models as the schema ---------------------------------------------------------------------------

ALWAYS_ABSENT = frozenset(
    {
        "activatePrice",  # orders: only TRAILING_STOP_MARKET ones carry these two
        "priceRate",
        "M",  # ORDER_TRADE_UPDATE: only on AMENDMENT
        "S",  # ACCOUNT_UPDATE a.S: only with FUNDING_FEE
        "ia",  # ALGO_UPDATE: undocumented
        "qtylFloor",  # the COIN-M model's typo of qtyFloor (ccxt reads qtyFloor)
        "notionalCoef",  # only when it differs from 1
        "HEDGE",  # adlQuantile: hedge mode only
        "rateType",  # fundingRate: undocumented
        "st",  # stream events: only after a market's trading-session change
        "rpiCommissionRate",
    }
)
"""Model fields Binance itself leaves out of these answers (documented as conditional, or undocumented)."""


def _fields(cls: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or n): f.annotation for n, f in cls.model_fields.items() if n != "additional_properties"}


def _nested(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested(arg)
        if found is not None:
            return found
    return None


def missing_fields(cls: type[BaseModel], obj: Any, where: str = "") -> set[str]:
    """Model fields ``obj`` lacks, recursively (every SDK field is optional: strictness never checks this)."""
    if "one_of_schemas" in cls.model_fields:
        for name, field in cls.model_fields.items():
            option = _nested(field.annotation) if name.startswith("oneof_schema") else None
            if option is not None and bool(getattr(option, "is_array", lambda: False)()) == isinstance(
                obj, list
            ):
                return missing_fields(option, obj, where)
        return {f"{where}: no oneOf variant of {cls.__name__}"}
    if isinstance(obj, list):
        return set().union(*(missing_fields(cls, item, f"{where}[]") for item in obj[:5])) if obj else set()
    if not isinstance(obj, dict):
        return set()
    found = set()
    for key, annotation in _fields(cls).items():
        if key not in obj:
            if key not in ALWAYS_ABSENT:
                found.add(f"{where}.{key}".lstrip("."))
            continue
        nested = _nested(annotation)
        if nested is not None and obj[key] is not None:
            found |= missing_fields(nested, obj[key], f"{where}.{key}")
    return found


KLINE_ROW = (int, str, str, str, str, str, int, str, int, str, str, str)
"""open time, open, high, low, close, volume, close time, quote volume, trades, taker buy base, taker buy
quote, ignore — Binance's kline row (the SDKs declare kline answers as untyped rows)."""


def check_kline_rows(name: str, rows: list[list[Any]]) -> None:
    for row in rows:
        types = tuple(type(x) for x in row)
        assert types == KLINE_ROW, f"{name}: a kline row {row} is not {[t.__name__ for t in KLINE_ROW]}"


def check_model(cls: type[BaseModel], obj: Any, *, allow: frozenset[str] = frozenset()) -> None:
    """Raw JSON ``obj`` against an SDK model: strict types (as declared) and every field present.

    ``allow``: field names that may be absent (also everything under them, e.g. the union-typed filters).
    """
    if isinstance(obj, dict) and isinstance(obj.get("code"), int) and obj["code"] < 0:
        raise AssertionError(f"{cls.__name__}: an error answer {obj}")
    if not _fields(cls) and isinstance(obj, list) and all(isinstance(row, list) for row in obj):
        check_kline_rows(cls.__name__, obj)  # the SDKs leave kline rows untyped: Binance's documented row
        return
    if "one_of_schemas" in cls.model_fields or getattr(cls, "is_array", lambda: False)():
        cls.from_dict(obj)  # type: ignore[attr-defined]
    else:
        cls.model_validate(obj)
    missing = {m for m in missing_fields(cls, obj) if not {seg.strip("[]") for seg in m.split(".")} & allow}
    assert not missing, f"{cls.__name__}: fields missing from the answer: {sorted(missing)}"
