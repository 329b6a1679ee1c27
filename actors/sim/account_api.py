"""Signed account endpoints: settings (leverage, marginType, positionSide/dual), views (positionRisk,
account, balance, leverageBracket, symbolConfig, commissionRate, adlQuantile), history (userTrades,
income) and the listenKeys.

Fees: ``commissionRate`` reports the configured taker (``fee_pct``) and maker (``maker_fee_pct``) rates.
Brackets: ``brackets``. ADL quantiles are 0: no other traders exist. History windows follow Binance: without
``startTime``/``endTime`` the last 7 days of replay time; ``fromId`` pages user trades by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..domain.model import ContractType
from . import accounts, brackets, params, wire
from .errors import SimError, known
from .exchange import Request, SimExchange
from .guard import KEY, SIGNED

WEEK_MS = 7 * 86_400_000


def _required(v: SimExchange, r: Request) -> str:
    symbol = params.required(r.params, "symbol").upper()
    v.symbol(symbol, r.contract_type)
    return symbol


def _symbol(v: SimExchange, r: Request) -> str | None:
    return _required(v, r) if r.params.get("symbol") else None


def _listed(v: SimExchange, r: Request) -> list[str]:
    return sorted(s for s, spec in v.book.specs.items() if spec.contract_type is r.contract_type)


async def leverage(v: SimExchange, r: Request) -> Any:
    symbol = _required(v, r)
    value = params.optional_int(r.params, "leverage")
    if value is None:
        raise SimError(-1102, "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.")
    if value > brackets.max_leverage(symbol, r.contract_type):
        raise SimError(-4028, f"Leverage {value} is not valid")
    v.book.set_leverage(symbol, value)
    cap = brackets.cap_at(symbol, r.contract_type, value)
    key = "maxQty" if r.contract_type is ContractType.COIN_M else "maxNotionalValue"
    return {"leverage": value, key: cap, "symbol": symbol}


async def margin_type(v: SimExchange, r: Request) -> Any:
    symbol = _required(v, r)
    kind = params.required(r.params, "marginType").upper()
    if kind not in {"ISOLATED", "CROSSED", "CROSS"}:
        raise SimError(
            -1100, "Illegal characters found in parameter 'marginType'; legal range is 'ISOLATED, CROSSED'."
        )
    v.book.set_margin_type(symbol, kind == "ISOLATED")
    return {"code": 200, "msg": "success"}


async def get_dual(_v: SimExchange, _r: Request) -> Any:
    return {"dualSidePosition": False}


async def set_dual(_v: SimExchange, r: Request) -> Any:
    if params.boolean(r.params, "dualSidePosition"):
        raise SimError(
            -4068, "Hedge mode is not supported by the local exchange; it trades one-way positions only."
        )
    raise SimError(-4059, "No need to change position side.")


async def position_risk(v: SimExchange, r: Request) -> Any:
    """v1/v2: every listed symbol; v3: only those with a position or open orders (as Binance)."""
    symbol = _symbol(v, r)
    rows = accounts.position_risk(v.book, r.contract_type, symbol)
    if "/v3/" in r.path:
        busy = {o.symbol for o in v.book.open_orders()} | {a.symbol for a in v.book.open_algos()}
        rows = [row for row in rows if row["positionAmt"].strip("0.-") or row["symbol"] in busy]
    return rows


async def account(v: SimExchange, r: Request) -> Any:
    version = 3 if "/v3/" in r.path else 2
    return accounts.account(v.book, r.contract_type, v.now_ms, version=version)


async def balance(v: SimExchange, r: Request) -> Any:
    return accounts.balances(v.book, r.contract_type, v.now_ms)


async def leverage_bracket(v: SimExchange, r: Request) -> Any:
    """USDⓈ-M v1: an object for ``symbol``, else an array; COIN-M v2 by symbol, v1 by pair: arrays."""
    coin = r.contract_type is ContractType.COIN_M
    pair = r.params.get("pair", "").upper() if coin and "/v1/" in r.path else ""
    symbol = _symbol(v, r)
    symbols = [symbol] if symbol else _listed(v, r)
    if pair:
        rows = [{"pair": pair, "brackets": brackets.brackets(f"{pair}_PERP", r.contract_type)}]
        return rows if f"{pair}_PERP" in symbols else []
    rows = [{"symbol": s, "brackets": brackets.brackets(s, r.contract_type)} for s in symbols]
    return rows[0] if symbol and not coin else rows


async def symbol_config(v: SimExchange, r: Request) -> Any:
    symbol = _symbol(v, r)
    rows = []
    for s in [symbol] if symbol else _listed(v, r):
        pos = v.book.position(s)
        rows.append(
            {
                "symbol": s,
                "marginType": "ISOLATED" if pos.isolated else "CROSSED",
                "isAutoAddMargin": False,
                "leverage": pos.leverage,
                "maxNotionalValue": brackets.cap_at(s, r.contract_type, pos.leverage),
            }
        )
    return rows


async def commission_rate(v: SimExchange, r: Request) -> Any:
    symbol = _required(v, r)
    maker, taker = f"{v.config.maker_fee_pct / 100:.6f}", f"{v.config.fee_pct / 100:.6f}"
    body = {"symbol": symbol, "makerCommissionRate": maker, "takerCommissionRate": taker}
    return body if r.contract_type is ContractType.COIN_M else body | {"rpiCommissionRate": maker}


async def adl_quantile(v: SimExchange, r: Request) -> Any:
    symbol = _symbol(v, r)
    held = sorted(
        s
        for s, pos in v.book.positions.items()
        if pos.amount and pos.contract_type is r.contract_type and symbol in {None, s}
    )
    return [{"symbol": s, "adlQuantile": {"LONG": 0, "SHORT": 0, "BOTH": 0}} for s in held]


def _window(v: SimExchange, r: Request) -> tuple[int, int]:
    start, end = params.optional_int(r.params, "startTime"), params.optional_int(r.params, "endTime")
    if start is None and end is None:
        return v.now_ms - WEEK_MS, v.now_ms
    if start is not None and end is not None and end - start > WEEK_MS:
        raise SimError(-4166, "Search window is restricted to recent 7 days only.")
    return (start if start is not None else (end or v.now_ms) - WEEK_MS), (
        end if end is not None else v.now_ms
    )


async def user_trades(v: SimExchange, r: Request) -> Any:
    p = r.params
    coin = r.contract_type is ContractType.COIN_M
    pair = p.get("pair", "").upper() if coin else ""
    symbol = _symbol(v, r) if pair else _required(v, r)
    if symbol and pair:
        raise known(-1128)
    limit = params.optional_int(p, "limit") or 500
    if not 1 <= limit <= 1000:
        raise SimError(-1130, "Data sent for parameter 'limit' is not valid.")
    from_id, order_id = params.optional_int(p, "fromId"), params.optional_int(p, "orderId")
    if from_id is not None and ("startTime" in p or "endTime" in p):
        raise known(-1128)
    start, end = (0, 1 << 62) if from_id is not None or order_id is not None else _window(v, r)
    found = [
        f
        for f in v.book.history.fills
        if f.contract_type is r.contract_type
        and (f.symbol == symbol if symbol else f.symbol.removesuffix("_PERP") == pair)
        and (order_id is None or f.order_id == order_id)
        and f.trade_id >= (from_id or 0)
        and start <= f.time <= end
    ]
    chosen = found[:limit] if from_id is not None else found[-limit:]
    return [wire.trade_json(v.book.specs[f.symbol], f) for f in chosen]


def coin_trades_weight(p: Mapping[str, str]) -> int:
    """COIN-M ``userTrades``: 20 by symbol, 40 by pair (USDⓈ-M: 5)."""
    return 40 if "pair" in p and "symbol" not in p else 20


async def income(v: SimExchange, r: Request) -> Any:
    p = r.params
    symbol = _symbol(v, r)
    kind = p.get("incomeType", "").upper() or None
    limit = params.optional_int(p, "limit") or 100
    if not 1 <= limit <= 1000:
        raise SimError(-1130, "Data sent for parameter 'limit' is not valid.")
    page = params.optional_int(p, "page") or 1
    start, end = _window(v, r)
    assets = {s.margin_asset for s in v.book.specs.values() if s.contract_type is r.contract_type}
    found = [
        row
        for row in v.book.history.income
        if (row.contract_type is r.contract_type or (row.contract_type is None and row.asset in assets))
        and symbol in {None, row.symbol}
        and kind in {None, row.kind}
        and start <= row.time <= end
    ]
    return [wire.income_json(row, r.contract_type) for row in found[(page - 1) * limit : page * limit]]


async def new_listen_key(v: SimExchange, r: Request) -> Any:
    return {"listenKey": v.hub.create_key(r.contract_type)}


async def keepalive_listen_key(v: SimExchange, r: Request) -> Any:
    return {"listenKey": v.hub.keepalive(r.params.get("listenKey") or None, r.contract_type)}


async def close_listen_key(v: SimExchange, r: Request) -> Any:
    v.hub.delete_key(r.params.get("listenKey") or None, r.contract_type)
    return {}


ENDPOINTS: list[tuple[str, str, Any, str, Any, bool]] = [
    ("POST", "/v1/leverage", leverage, SIGNED, 1, False),
    ("POST", "/v1/marginType", margin_type, SIGNED, 1, False),
    ("GET", "/v1/positionSide/dual", get_dual, SIGNED, 30, False),
    ("POST", "/v1/positionSide/dual", set_dual, SIGNED, 1, False),
    ("GET", "/v1/leverageBracket", leverage_bracket, SIGNED, 1, False),
    ("GET", "/v1/commissionRate", commission_rate, SIGNED, 20, False),
    ("GET", "/v1/adlQuantile", adl_quantile, SIGNED, 5, False),
    ("GET", "/v1/income", income, SIGNED, 30, False),
    ("POST", "/v1/listenKey", new_listen_key, KEY, 1, False),
    ("PUT", "/v1/listenKey", keepalive_listen_key, KEY, 1, False),
    ("DELETE", "/v1/listenKey", close_listen_key, KEY, 1, False),
] + [
    ("GET", f"/v{n}/{name}", handler, SIGNED, 5, False)
    for n in (1, 2, 3)
    for name, handler in (("positionRisk", position_risk), ("account", account), ("balance", balance))
]
"""(method, path under /fapi or /dapi, handler, security, weight, counts as an order); ``symbolConfig``
(USDⓈ-M) and ``/v2/leverageBracket`` (COIN-M) are added per market by ``rest.routes``."""
