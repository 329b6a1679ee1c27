"""Non-Binance admin API under ``/sim/v1`` (JSON): status, clock control, pacers, fault injection.

==========================================  ==================================================================
``GET  /sim/v1/status``                     clock, done flag, clients, stats
``GET  /sim/v1/clock``                      replay clock only: ``clockMs``, ``speed``, ``paused``, ``done``
``GET  /sim/v1/state``                      balances, positions, open algo orders
``POST /sim/v1/pause`` / ``resume``         stop / restart the clock
``POST /sim/v1/step?count=N``               let a paused clock take N 1m steps; answers when they are done
``POST /sim/v1/pacer?interval=1m``          register a lock-step client → ``{"pacerId": "p1"}``
``POST /sim/v1/pacer/{id}/ack?openTime=T``  the pacer has processed the closed candle opened at T
``DELETE /sim/v1/pacer/{id}``               unregister
``POST /sim/v1/faults/drop-connections``    close every WebSocket now
``POST /sim/v1/faults/stall``               ``seconds``, ``stream`` ('' = all): send nothing on it meanwhile
``POST /sim/v1/faults/http``                ``kind``: 500/502/503/504/429/418/html/-1021 answer instead;
                                            unknown/truncated/empty/reset/slow run it, damage the answer;
                                            ``count``, ``path``, ``method``, ``retryAfter``, ``seconds``,
                                            ``skip`` (let that many matching requests through first),
                                            ``for`` (s: every matching request that long, not ``count``)
``POST /sim/v1/faults/ws-frame``            ``kind`` (malformed/truncated/unknown-stream), ``count``,
                                            ``target`` (market/user): damage the next frames sent
``POST /sim/v1/faults/expire-stop``         ``count``, ``after`` (s), ``status`` (EXPIRED/CANCELED),
                                            ``symbol``: accept the next stops, then end them
``POST /sim/v1/faults/clock-skew``          ``ms``: the exchange's clock runs this far ahead (0 = in step)
``POST /sim/v1/faults/clear``               disarm every fault (latency, stalls and skew back to none)
``GET  /sim/v1/faults?since=S``             armed faults, and each fault fired since wall time S (s)
``GET  /sim/v1/exposure?since=S``           wall-clock episodes of positions without a stop (``exposure``)
``GET  /sim/v1/orders?after=ID``            every regular order after order id ``ID``: entries, closes, fills
``POST /sim/v1/faults/reject-order``        ``code``, ``msg``: the next order (or algo order) is rejected
``POST /sim/v1/faults/latency``             ``seconds``, ``path``: delay every matching REST answer
``POST /sim/v1/faults/expire-listen-key``   ``listenKey`` (default: all): push listenKeyExpired, close
==========================================  ==================================================================

Parameters may come in the query string or a JSON object body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .errors import KNOWN_MESSAGES
from .exchange import SimExchange
from .faults import HttpFault, StopExpiry, WsFrameFault

AdminHandler = Callable[[SimExchange, dict[str, Any], web.Request], Awaitable[Any]]


def status(v: SimExchange) -> dict[str, Any]:
    r = v.replay
    return {
        "clockMs": r.now_ms,
        "done": r.done.is_set(),
        "paused": r.paused,
        "processed": r.processed,
        "remaining": len(r.timeline) - r.cursor,
        "speed": "max" if r.config.speed == float("inf") else r.config.speed,
        "symbols": sorted(v.feeds),
        "syntheticSymbols": sorted(s for s, f in v.feeds.items() if f.source == "synthetic"),
        "pacers": v.pacers.snapshot(),
        "clients": v.hub.status(),
        "stats": {
            **v.stats,
            "pacer_timeouts": v.pacers.timeouts,
            "kline_events": r.streams.events_sent,
            "weight_used_1m": v.weights.used,
            "faults_fired": dict(v.faults.fired),
            "requests": dict(v.requests),
        },
    }


def clock(v: SimExchange) -> dict[str, Any]:
    """The replay clock: the time the klines have reached (``/fapi/v1/time`` is the wall clock)."""
    r = v.replay
    return {
        "clockMs": r.now_ms,
        "speed": "max" if r.config.speed == float("inf") else r.config.speed,
        "paused": r.paused,
        "done": r.done.is_set(),
    }


def state(v: SimExchange) -> dict[str, Any]:
    b = v.book
    return {
        "balances": dict(b.wallet),
        "positions": {
            s: {"amount": str(p.amount), "entry": p.entry, "leverage": p.leverage, "isolated": p.isolated}
            for s, p in b.positions.items()
            if p.amount
        },
        "openAlgoOrders": [
            {
                "algoId": a.algo_id,
                "clientAlgoId": a.client_algo_id,
                "symbol": a.symbol,
                "type": a.order_type,
                "triggerPrice": str(a.trigger),
            }
            for a in b.open_algos()
        ],
        "marks": dict(b.marks),
    }


async def _status(v: SimExchange, _p: dict[str, Any], _r: web.Request) -> Any:
    return status(v)


async def _clock(v: SimExchange, _p: dict[str, Any], _r: web.Request) -> Any:
    return clock(v)


async def _state(v: SimExchange, _p: dict[str, Any], _r: web.Request) -> Any:
    return state(v)


async def _pause(v: SimExchange, _p: dict[str, Any], _r: web.Request) -> Any:
    v.replay.pause()
    return status(v)


async def _resume(v: SimExchange, _p: dict[str, Any], _r: web.Request) -> Any:
    v.replay.resume()
    return status(v)


async def step(v: SimExchange, count: int) -> None:
    target = v.replay.add_steps(count)
    while v.replay.processed < target:
        v.replay.progress.clear()
        await v.replay.progress.wait()


async def _step(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    await step(v, int(p.get("count", 1)))
    return status(v)


async def _pacer(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    pacer_id = v.pacers.register(str(p.get("interval", "1m")))
    v.replay.client_arrived.set()
    return {"pacerId": pacer_id}


async def _ack(v: SimExchange, p: dict[str, Any], r: web.Request) -> Any:
    v.pacers.ack(r.match_info["pacer"], int(p["openTime"]))
    return {}


async def _unpace(v: SimExchange, _p: dict[str, Any], r: web.Request) -> Any:
    v.pacers.unregister(r.match_info["pacer"])
    return {}


async def _drop(v: SimExchange, _p: dict[str, Any], _r: web.Request) -> Any:
    return {"dropped": await v.hub.drop_all()}


async def _stall(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    stall(v, float(p["seconds"]), str(p.get("stream", "")))
    return {}


def stall(v: SimExchange, seconds: float, stream: str = "") -> None:
    v.faults.stalls[stream] = asyncio.get_running_loop().time() + seconds


async def _http(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    fault = HttpFault(
        kind=str(p["kind"]),
        count=int(p.get("count", 1)),
        path=str(p.get("path", "")),
        method=str(p.get("method", "")).upper(),
        retry_after_s=int(p.get("retryAfter", 1)),
        seconds=float(p.get("seconds", 0.0)),
        skip=int(p.get("skip", 0)),
        until=time.monotonic() + float(p["for"]) if p.get("for") else 0.0,
    )
    v.faults.add_http(fault)
    return {}


async def _ws_frame(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    kind, target = str(p["kind"]), str(p.get("target", "market"))
    v.faults.add_ws_frame(WsFrameFault(kind=kind, count=int(p.get("count", 1)), target=target))
    return {}


async def _expire_stop(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    fault = StopExpiry(
        count=int(p.get("count", 1)),
        after_s=float(p.get("after", 0.5)),
        status=str(p.get("status", "EXPIRED")).upper(),
        symbol=str(p.get("symbol", "")).upper(),
    )
    v.faults.add_stop_expiry(fault)
    return {}


async def _clock_skew(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    v.faults.clock_skew_ms = int(p["ms"])
    return {"clockSkewMs": v.faults.clock_skew_ms}


async def _clear(v: SimExchange, _p: dict[str, Any], _r: web.Request) -> Any:
    clear(v)
    return {}


def clear(v: SimExchange) -> None:
    """Disarm every fault (counts of those fired are kept)."""
    f = v.faults
    f.http.clear()
    f.reject_codes.clear()
    f.ws_frames.clear()
    f.stop_expiries.clear()
    f.stalls.clear()
    f.latency_s, f.latency_path, f.clock_skew_ms = 0.0, "", 0


async def _faults(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    since = float(p.get("since", 0.0))
    f = v.faults
    return {
        "armed": {
            "http": [{"kind": h.kind, "count": h.count, "path": h.path, "method": h.method} for h in f.http],
            "ws": [{"kind": w.kind, "count": w.count, "target": w.target} for w in f.ws_frames],
            "stopExpiries": len(f.stop_expiries),
            "rejects": len(f.reject_codes),
            "latencyS": f.latency_s,
            "clockSkewMs": f.clock_skew_ms,
        },
        "fired": [list(entry) for entry in f.log if entry[0] >= since],
    }


async def _exposure(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    return v.exposure.report(float(p.get("since", 0.0)))


async def _orders(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    return orders(v, int(p.get("after", 0)))


def orders(v: SimExchange, after: int = 0) -> list[dict[str, Any]]:
    """Regular orders (entries, closes, triggered stops) with an id above ``after``, oldest first."""
    return [
        {
            "orderId": o.order_id,
            "clientOrderId": o.client_id,
            "symbol": o.symbol,
            "side": o.side.value,
            "type": o.orig_type,
            "status": o.status,
            "reduceOnly": o.reduce_only,
            "executedQty": str(o.executed),
            "avgPrice": o.avg_price,
            "realizedPnl": o.realized,
            "updateTime": o.update_time,
        }
        for order_id, o in v.book.orders.items()  # ids ascend in insertion order
        if order_id > after
    ]


async def _reject(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    code = int(p["code"])
    v.faults.reject_codes.append((code, str(p.get("msg") or KNOWN_MESSAGES.get(code, "NEW_ORDER_REJECTED"))))
    return {}


async def _latency(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    v.faults.latency_s = float(p["seconds"])
    v.faults.latency_path = str(p.get("path", ""))
    return {}


async def _expire(v: SimExchange, p: dict[str, Any], _r: web.Request) -> Any:
    keys = [p["listenKey"]] if p.get("listenKey") else list(v.hub.keys)
    expired = [k for key in keys for k in await v.hub.expire_keys(key)]
    return {"expired": expired}


ADMIN: list[tuple[str, str, AdminHandler]] = [
    ("GET", "/status", _status),
    ("GET", "/clock", _clock),
    ("GET", "/state", _state),
    ("POST", "/pause", _pause),
    ("POST", "/resume", _resume),
    ("POST", "/step", _step),
    ("POST", "/pacer", _pacer),
    ("POST", "/pacer/{pacer}/ack", _ack),
    ("DELETE", "/pacer/{pacer}", _unpace),
    ("POST", "/faults/drop-connections", _drop),
    ("POST", "/faults/stall", _stall),
    ("POST", "/faults/http", _http),
    ("POST", "/faults/reject-order", _reject),
    ("POST", "/faults/latency", _latency),
    ("POST", "/faults/expire-listen-key", _expire),
    ("POST", "/faults/ws-frame", _ws_frame),
    ("POST", "/faults/expire-stop", _expire_stop),
    ("POST", "/faults/clock-skew", _clock_skew),
    ("POST", "/faults/clear", _clear),
    ("GET", "/faults", _faults),
    ("GET", "/exposure", _exposure),
    ("GET", "/orders", _orders),
]


def install(app: web.Application, exchange: SimExchange) -> None:
    for method, path, handler in ADMIN:
        app.router.add_route(method, "/sim/v1" + path, _bind(exchange, handler))


def _bind(exchange: SimExchange, handler: AdminHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        p: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                p.update(body)
        try:
            result = await handler(exchange, p, request)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"code": -1102, "msg": f"bad admin request: {exc!r}"}, status=400)
        return web.json_response(result)

    return handle
