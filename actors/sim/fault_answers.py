"""How the local exchange answers a request an armed HTTP fault hit (see :mod:`.faults` for the kinds).

Faults that stand for an answer instead of the real one (5xx, 429/418, a CDN's HTML page, -1021) are
rendered by :func:`refusal` before the request runs. Faults that stand for an answer lost or damaged after
the request ran (``unknown``, ``truncated``, ``empty``, ``reset``, ``slow``) are rendered by :func:`damaged`
from the real answer's bytes.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from .errors import KNOWN_MESSAGES, UNKNOWN_MSG
from .faults import HttpFault

_JSON_ERRORS: dict[str, tuple[int, int, str]] = {
    "500": (500, -1000, UNKNOWN_MSG),
    "502": (502, -1001, "Internal error; unable to process your request. Please try again."),
    "503": (503, -1001, "Service Unavailable."),
    "504": (504, -1001, "Internal error; unable to process your request. Please try again."),
    "unknown": (
        503,
        -1007,
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    ),
    "-1021": (400, -1021, KNOWN_MESSAGES[-1021]),
}
CDN_502_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>CloudFront</center>\r\n</body>\r\n</html>\r\n"
)
"""What a CDN in front of the API sends when its origin does not answer: HTML, not Binance's JSON."""


def _json(body: object, status: int, headers: dict[str, str]) -> web.Response:
    text = json.dumps(body, separators=(",", ":"))
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)


def refusal(fault: HttpFault, headers: dict[str, str]) -> web.Response:
    """The answer that replaces the real one (the request was not executed)."""
    kind = fault.kind
    if kind in {"429", "418"}:
        headers["Retry-After"] = str(max(1, fault.retry_after_s))
        msg = (
            "Too many requests; please use the websocket for live updates."
            if kind == "429"
            else (
                "Way too many requests; IP(127.0.0.1) banned until further notice. "
                "Please use the websocket for live updates to avoid bans."
            )
        )
        return _json({"code": -1003, "msg": msg}, int(kind), headers)
    if kind == "html":
        return web.Response(text=CDN_502_PAGE, status=502, content_type="text/html", headers=headers)
    status, code, msg = _JSON_ERRORS[kind]
    return _json({"code": code, "msg": msg}, status, headers)


async def damaged(
    request: web.Request, fault: HttpFault, status: int, body: object, headers: dict[str, str]
) -> web.StreamResponse:
    """The answer of a request that executed, as the fault leaves it (``status``/``body``: the real one)."""
    text = json.dumps(body, separators=(",", ":")).encode()
    if fault.kind == "unknown":
        return refusal(fault, headers)
    if fault.kind == "slow":
        await asyncio.sleep(fault.seconds)
        return web.Response(body=text, status=status, content_type="application/json", headers=headers)
    if fault.kind == "empty":
        return web.Response(body=b"", status=200, content_type="application/json", headers=headers)
    if fault.kind == "truncated":
        return web.Response(
            body=text[: max(1, len(text) // 2)], status=200, content_type="application/json", headers=headers
        )
    # reset: the headers promise the whole body, half of it leaves, then the connection dies
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = "application/json"
    response.content_length = len(text)
    await response.prepare(request)
    await response.write(text[: max(1, len(text) // 2)])
    transport = request.transport
    if transport is not None:
        transport.abort()
    return response
