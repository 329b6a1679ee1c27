"""The control socket's wire protocol: line-JSON requests and responses, and what a response may carry.

UTF-8, one JSON object per ``\\n``-terminated line, at most ``MAX_LINE_BYTES``::

    on accept, server → client   {"id": null, "ok": true, "result": {"server": "nancemakina", "protocol": 1,
                                  "pid": 1234}}
                             or  {"id": null, "ok": false, "error": "..."}   (refused or busy), then close
    client → server              {"id": 1, "cmd": "inspect", "args": ["BTC_USDT", "1m"]}
    server → client              {"id": 1, "ok": true, "result": ...}
                             or  {"id": 1, "ok": false, "error": "..."}

Results become strict JSON (``jsonable``), and every response passes a redaction step after serialisation
(``encode_response``): fields named like credentials are masked and known secret values replaced, so
secrets do not leave the process even if a target leaks one.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date
from enum import Enum
from typing import Any

from loguru import logger

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 64 * 1024

_SECRET_FIELD = re.compile(
    r'("[^"\\]*(?:secret|api_?key|password|passphrase|token|signature|listen_?key|private_?key)[^"\\]*"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One well-formed request line."""

    rid: int | str | None
    """The client's ``id``, echoed in the response (None when it sent none, or one that is not a string
    or a whole number)."""
    cmd: str
    args: tuple[str, ...]


class BadRequestError(ValueError):
    """A line that is not a request; answered with its text and ``rid`` (None when it could not be read)."""

    def __init__(self, rid: int | str | None, message: str) -> None:
        super().__init__(message)
        self.rid = rid


def parse_request(line: bytes) -> Request:
    """``{"id", "cmd": str, "args": [str, ...]}`` → ``Request``; anything else raises ``BadRequestError``."""
    try:
        request = json.loads(line)
    except ValueError:
        raise BadRequestError(None, "bad request: not a JSON object line") from None
    if not isinstance(request, dict):
        raise BadRequestError(None, "bad request: not a JSON object line")
    rid = request.get("id")
    if isinstance(rid, bool) or not isinstance(rid, int | str | None):
        rid = None
    cmd, args = request.get("cmd"), request.get("args", [])
    if not isinstance(cmd, str) or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise BadRequestError(rid, 'bad request: need {"cmd": str, "args": [str, ...]}')
    return Request(rid=rid, cmd=cmd, args=tuple(args))


def hello_response() -> dict[str, Any]:
    """The greeting a client reads first: who answers, in which protocol version, from which process."""
    hello = {"server": "nancemakina", "protocol": PROTOCOL_VERSION, "pid": os.getpid()}
    return {"id": None, "ok": True, "result": hello}


def result_response(rid: object, result: Any) -> dict[str, Any]:
    return {"id": rid, "ok": True, "result": jsonable(result)}


def error_response(rid: object, message: str) -> dict[str, Any]:
    return {"id": rid, "ok": False, "error": message}


def jsonable(value: Any) -> Any:
    """Strict-JSON data: NaN/inf become null, Decimal text, enums their value, dataclasses dicts."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    return str(value)  # Decimal keeps its digits as text; anything else shows as its str()


def mask_secret_fields(text: str) -> str:
    """Blank the string value of any JSON field whose name looks like a credential."""
    return _SECRET_FIELD.sub(r'\1"***"', text)


def secret_redactor(secrets: Iterable[str | None]) -> Callable[[str], str]:
    """A ``redact`` hook replacing each known secret value (raw and JSON-escaped) with ``***``."""
    values = {s for s in secrets if s and len(s) >= 4}
    forms = sorted(values | {json.dumps(s, ensure_ascii=False)[1:-1] for s in values}, key=len, reverse=True)

    def redact(text: str) -> str:
        for form in forms:
            text = text.replace(form, "***")
        return text

    return redact


def encode_response(response: dict[str, Any], redact: Callable[[str], str]) -> bytes:
    """One response line, secrets masked and ``redact``ed; withheld (an error) if it does not survive that."""
    rid = response.get("id")
    try:
        text = redact(mask_secret_fields(json.dumps(response, ensure_ascii=False, allow_nan=False)))
        json.loads(text)
    except (TypeError, ValueError) as exc:
        logger.error(f"control socket: response withheld: {type(exc).__name__}")
        text = json.dumps(
            error_response(rid, "response withheld: it did not survive JSON encoding and redaction")
        )
    return text.encode() + b"\n"


def encode_plain(response: dict[str, Any]) -> bytes:
    """One response line as is: for the server's own refusals, sent before a connection is admitted."""
    return json.dumps(response).encode() + b"\n"
