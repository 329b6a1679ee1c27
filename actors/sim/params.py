"""Parsing of Binance request parameters into typed values, with Binance's errors for bad ones."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from ..domain.fills import InstrumentSpec
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


def quantity(spec: InstrumentSpec, value: Decimal) -> Decimal:
    """Check an order quantity against the symbol's precision and MARKET_LOT_SIZE."""
    exponent = value.normalize().as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if decimals > spec.quantity_precision or value % spec.market_step_size != 0:
        raise SimError(-1111, "Precision is over the maximum defined for this asset.")
    if value <= 0:
        raise SimError(-4003, "Quantity less than or equal to zero.")
    if value < spec.market_min_qty:
        raise SimError(-4003, f"Quantity less than minimum quantity {spec.market_min_qty.normalize():f}.")
    if value > spec.market_max_qty:
        raise SimError(-4005, "Quantity greater than max quantity.")
    return value


def price(spec: InstrumentSpec, value: Decimal) -> Decimal:
    """Check a trigger price against the symbol's price precision and tick."""
    exponent = value.normalize().as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if decimals > spec.price_precision:
        raise SimError(-1111, "Precision is over the maximum defined for this asset.")
    if value <= 0:
        raise SimError(-4006, "Stop price less than zero.")
    if value % spec.tick_size != 0:
        raise SimError(-4014, "Price not increased by tick size.")
    return value
