"""Parsing of Binance request parameters into typed values, with Binance's errors for bad ones."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import SimError, illegal, mandatory

_NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if value == "":
        raise mandatory(name)
    return value


def optional_int(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not value.lstrip("-").isdigit():
        raise SimError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )
    return int(value)


def boolean(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name, "false").lower()
    if value not in {"true", "false"}:
        raise SimError(-1100, f"Illegal characters found in parameter '{name}'; legal range is 'true|false'.")
    return value == "true"


def decimal(params: Mapping[str, str], name: str) -> Decimal:
    value = required(params, name)
    if not _NUMBER.match(value):
        raise illegal(name)
    try:
        return Decimal(value)
    except InvalidOperation:
        raise illegal(name) from None


def client_id(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not _CLIENT_ID.match(value):
        legal = "^[\\.A-Z\\:/a-z0-9_-]{1,36}$"
        raise SimError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")
    return value


def optional_decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    return decimal(params, name) if params.get(name, "") != "" else None


def enum(params: Mapping[str, str], name: str, allowed: frozenset[str], code: int, msg: str) -> str:
    """A required upper-case keyword from ``allowed``; ``code``/``msg`` otherwise."""
    value = required(params, name).upper()
    if value not in allowed:
        raise SimError(code, msg)
    return value


def json_list(params: Mapping[str, str], name: str, most: int, code: int, msg: str) -> list[Any]:
    """A JSON array parameter (``batchOrders``, ``orderIdList``) of 1..``most`` items."""
    try:
        items = json.loads(required(params, name))
    except ValueError:
        raise SimError(-1130, f"Data sent for parameter '{name}' is not valid.") from None
    if not isinstance(items, list):
        raise SimError(-1130, f"Data sent for parameter '{name}' is not valid.")
    if not 1 <= len(items) <= most:
        raise SimError(code, msg)
    return items
