"""The JSON requests a WebSocket client may send, checked and answered as Binance does.

``{"method": "SUBSCRIBE" | "UNSUBSCRIBE", "params": [names…], "id": …}``, ``LIST_SUBSCRIPTIONS``,
``SET_PROPERTY ["combined", true|false]`` and ``GET_PROPERTY ["combined"]``. The ``id`` is echoed verbatim:
a non-negative JSON integer (python-binance, ccxt.pro) or a string (the official SDKs send UUIDs); anything
else (missing, null, a boolean, a float, a negative number) is refused with Binance's code 2 answer.
SUBSCRIBE params may name listenKeys as well as market streams (``<listenKey>`` or ``<listenKey>@<event>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
BAD_ID = "Invalid request: request ID must be an unsigned integer"


@dataclass(frozen=True, slots=True)
class Request:
    """A well-formed request frame."""

    method: str
    params: tuple[Any, ...]
    id: int | str


def _error(code: int, msg: str, rid: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": rid}


def _valid_id(rid: Any) -> bool:
    if isinstance(rid, str):
        return True
    return isinstance(rid, int) and not isinstance(rid, bool) and rid >= 0


def parse(data: str | bytes) -> Request | dict[str, Any]:
    """The request in ``data``, or the error answer Binance sends for it."""
    try:
        frame = json.loads(data)
    except json.JSONDecodeError as exc:
        return _error(3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}")
    if not isinstance(frame, dict):
        return _error(2, BAD_ID)
    rid = frame.get("id")
    if not isinstance(rid, int | str) or not _valid_id(rid):
        return _error(2, BAD_ID, rid)
    method = frame.get("method")
    if method not in METHODS:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        column = text.find(json.dumps(method)) + len(json.dumps(method)) if method is not None else 1
        msg = (
            f"Invalid request: unknown variant {json.dumps(method)}, expected one of "
            f"{', '.join(METHODS)} at line 1 column {max(column, 1)}"
        )
        return _error(2, msg, rid)
    params = frame.get("params", [])
    if not isinstance(params, list) or (
        method in {"SUBSCRIBE", "UNSUBSCRIBE"} and not all(isinstance(p, str) for p in params)
    ):
        return _error(2, "Invalid request: invalid value type for 'params'", rid)
    return Request(str(method), tuple(params), rid)


def property_answer(request: Request, combined: bool) -> tuple[dict[str, Any], bool]:
    """(answer, new ``combined`` flag) for SET_PROPERTY / GET_PROPERTY; ``combined`` is the only property."""
    if not request.params or request.params[0] != "combined":
        return _error(0, "Unknown property", request.id), combined
    if request.method == "GET_PROPERTY":
        return {"result": combined, "id": request.id}, combined
    value = request.params[1] if len(request.params) > 1 else None
    if not isinstance(value, bool):
        return _error(1, "Invalid value type: expected Boolean", request.id), combined
    return {"result": None, "id": request.id}, value
