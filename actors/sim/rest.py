"""REST front door: routing, admission (weight, key, signature), faults, and Binance's error answers.

Every answer is JSON; an unexpected exception is logged with its traceback and answered
``500 {"code": -1000, "msg": "An unknown error occurred while processing the request."}``.

Two clocks, as on Binance: ``/fapi/v1/time``, ``/dapi/v1/time``, ``/api/v3/time`` and exchangeInfo's
``serverTime`` report the wall clock (what signed timestamps are checked against). The replay clock — the
time the klines say, which decides which candles are closed and stamps every event, order and trade — is
reported off-protocol in the ``X-SIM-Clock-Ms`` header of every REST answer and at ``GET /sim/v1/clock``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from ..domain.model import ContractType
from ..exchange.endpoints import SIM_CLOCK_HEADER
from . import account_api, algo_api, fault_answers, guard, market_api, trading
from .errors import UNKNOWN_MSG, SimError, known
from .exchange import Request, SimExchange
from .faults import EXECUTED_KINDS
from .guard import NONE, SIGNED, Weight

log = logging.getLogger(__name__)
Handler = Callable[[SimExchange, Request], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    security: str
    weight: Weight
    order: bool = False


def _w(n: int) -> Weight:
    return lambda _p: n


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def _ping(_v: SimExchange, _r: Request) -> Any:
    return {}


async def _time(v: SimExchange, _r: Request) -> Any:
    return {"serverTime": int(time.time() * 1000) + v.faults.clock_skew_ms}


async def _exchange_info(v: SimExchange, r: Request) -> Any:
    return v.exchange_info(r.contract_type)


def routes() -> list[tuple[ContractType | None, Route]]:
    """Every endpoint, per market (None = the spot paths python-binance pings)."""
    table: list[tuple[ContractType | None, Route]] = [
        (None, Route("GET", "/api/v3/ping", _ping, NONE, _w(1))),
        (None, Route("GET", "/api/v3/time", _time, NONE, _w(1))),
    ]
    for ctype, prefix in ((ContractType.USDT_M, "/fapi"), (ContractType.COIN_M, "/dapi")):

        def add(  # noqa: PLR0917 - mirrors Route's fields
            method: str, path: str, handler: Handler, security: str, weight: Weight, order: bool = False
        ) -> None:
            table.append((ctype, Route(method, prefix + path, handler, security, weight, order)))  # noqa: B023

        add("GET", "/v1/ping", _ping, NONE, _w(1))
        add("GET", "/v1/time", _time, NONE, _w(1))
        add("GET", "/v1/exchangeInfo", _exchange_info, NONE, _w(1))
        for path, handler, weight in market_api.ENDPOINTS:
            add("GET", path, handler, NONE, weight)
        if ctype is ContractType.USDT_M:
            add("GET", "/v2/ticker/price", market_api.ticker_price, NONE, market_api.ENDPOINTS[5][2])
        signed = [*trading.ENDPOINTS, *algo_api.ENDPOINTS, *account_api.ENDPOINTS]
        if ctype is ContractType.USDT_M:
            signed.append(("GET", "/v1/symbolConfig", account_api.symbol_config, SIGNED, 5, False))
            signed.append(("GET", "/v1/userTrades", account_api.user_trades, SIGNED, 5, False))
        else:
            signed.append(("GET", "/v2/leverageBracket", account_api.leverage_bracket, SIGNED, 1, False))
            trades_weight = account_api.coin_trades_weight
            signed.append(("GET", "/v1/userTrades", account_api.user_trades, SIGNED, trades_weight, False))
        for method, path, handler, security, weight, order in signed:
            add(method, path, handler, security, _w(weight) if isinstance(weight, int) else weight, order)
    return table


class RestApi:
    """Binds the route table to an exchange and renders every outcome in Binance's shape."""

    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange

    def install(self, app: web.Application) -> None:
        for ctype, route in routes():
            app.router.add_route(route.method, route.path, self._bind(route, ctype or ContractType.USDT_M))

    def _bind(
        self, route: Route, ctype: ContractType
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, route, ctype)

        return handle

    async def serve(self, request: web.Request, route: Route, ctype: ContractType) -> web.StreamResponse:
        v = self.exchange
        v.stats["rest_requests"] = v.stats.get("rest_requests", 0) + 1
        v.requests[f"{request.method} {route.path}"] += 1
        try:
            delay = v.faults.latency_for(request.method, request.path)
            if delay:
                await asyncio.sleep(delay)
            body = await request.text()
            merged = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
            merged.update(parse_qsl(body, keep_blank_values=True))
            retry = v.weights.charge(route.weight(merged), order=route.order)
            headers = self._headers(route)
            if retry is not None:
                headers["Retry-After"] = str(retry)
                msg = (
                    f"Too many requests; current limit of IP(127.0.0.1) is {v.config.weight_limit} requests "
                    "per minute. Please use the websocket for live updates to avoid polling the API."
                )
                return _json({"code": -1003, "msg": msg}, 429, headers)
            refused = v.weights.order_refused() if route.order else None
            if refused is not None:
                headers["Retry-After"] = str(refused[0])
                return _json({"code": -1015, "msg": refused[1]}, 429, headers)
            fault = v.faults.take_http(request.method, request.path)
            if fault is not None and fault.kind not in EXECUTED_KINDS:
                return fault_answers.refusal(fault, headers)
            status, answer = 200, None
            try:
                guard.check(
                    route.security,
                    headers=request.headers,
                    params=merged,
                    raw_query=request.rel_url.raw_query_string,
                    raw_body=body,
                    config=v.config,
                    skew_ms=v.faults.clock_skew_ms,
                )
                answer = await route.handler(
                    v, Request(method=request.method, path=request.path, contract_type=ctype, params=merged)
                )
            except SimError as exc:
                status, answer = exc.status, exc.body()
            finally:
                await v.replay.flush_user_events()
            if fault is not None:
                return await fault_answers.damaged(request, fault, status, answer, headers)
            return _json(answer, status, headers)
        except Exception:
            log.exception("local exchange: %s %s failed", request.method, request.path)
            return _json({"code": -1000, "msg": UNKNOWN_MSG}, 500)

    def _headers(self, route: Route) -> dict[str, str]:
        w = self.exchange.weights
        headers = {
            "X-MBX-USED-WEIGHT-1M": str(w.used),
            "X-MBX-USED-WEIGHT": str(w.used),
            SIM_CLOCK_HEADER: str(self.exchange.now_ms),
        }
        if route.order:
            headers["X-MBX-ORDER-COUNT-10S"] = str(w.orders_10s)
            headers["X-MBX-ORDER-COUNT-1M"] = str(w.orders)
        return headers


@web.middleware
async def binance_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown paths and methods answer in Binance's JSON error shape, never aiohttp's HTML."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return _json({"code": -5000, "msg": f"Path {request.path}, Method {request.method} is invalid"}, 404)
    except web.HTTPMethodNotAllowed:
        return _json({"code": -5000, "msg": f"Path {request.path}, Method {request.method} is invalid"}, 405)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json({"code": -1000, "msg": exc.reason}, exc.status)
    except Exception:
        log.exception("local exchange: %s %s failed", request.method, request.path)
        return _json(known(-1000).body(), 500)
