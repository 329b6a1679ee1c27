"""Leverage brackets (``/fapi/v1/leverageBracket``, ``/dapi/v1`` and ``/dapi/v2/leverageBracket``).

USDⓈ-M: ``leverage_brackets_usdm_2024-10-24.json.gz`` holds the real brackets of 349 symbols as Binance
served them in October 2024 (saved by a public repository in ccxt's form, converted back to Binance's
fields; see the README). A symbol it lacks gets ETHUSDT's brackets. COIN-M: no public snapshot exists, so
every symbol gets Binance's documented example table (quantity brackets in contracts, 125× up to 50).
The first bracket's ``initialLeverage`` is the highest leverage a symbol accepts; ``maxNotionalValue``
(USDⓈ-M) / ``maxQty`` (COIN-M) of a leverage is the cap of the largest bracket that still allows it.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources
from typing import Any

from ..domain.model import ContractType

SNAPSHOT = "leverage_brackets_usdm_2024-10-24.json.gz"
FALLBACK = "ETHUSDT"
_COIN_TABLE = (
    (125, 50, 0, 0.004),
    (100, 100, 50, 0.005),
    (50, 500, 100, 0.01),
    (20, 1000, 500, 0.025),
    (10, 2000, 1000, 0.05),
    (5, 5000, 2000, 0.1),
    (4, 10000, 5000, 0.125),
    (3, 20000, 10000, 0.15),
    (2, 50000, 20000, 0.25),
    (1, 100000, 50000, 0.5),
)
"""COIN-M brackets: (initial leverage, quantity cap, quantity floor, maintenance margin ratio)."""


@cache
def _usdm() -> dict[str, list[dict[str, Any]]]:
    data = resources.files(__package__ or "").joinpath(SNAPSHOT).read_bytes()
    return {row["symbol"]: row["brackets"] for row in json.loads(gzip.decompress(data))}


def _coin_brackets() -> list[dict[str, Any]]:
    rows, cum, previous = [], 0.0, 0.0
    for i, (leverage, cap, floor, ratio) in enumerate(_COIN_TABLE, start=1):
        cum += floor * (ratio - previous)
        previous = ratio
        row = {"bracket": i, "initialLeverage": leverage, "qtyCap": cap, "qtyFloor": floor}
        rows.append(row | {"maintMarginRatio": ratio, "cum": round(cum, 8)})
    return rows


def brackets(symbol: str, contract_type: ContractType) -> list[dict[str, Any]]:
    """The symbol's brackets in Binance's JSON (notional ones for USDⓈ-M, quantity ones for COIN-M)."""
    if contract_type is ContractType.COIN_M:
        return _coin_brackets()
    table = _usdm()
    # The SDK declares a single symbol's ``cum`` an integer: send whole amounts as JSON integers.
    return [b | {"cum": _whole(b["cum"])} for b in table.get(symbol, table[FALLBACK])]


def _whole(value: float) -> float | int:
    return int(value) if value == int(value) else value


def max_leverage(symbol: str, contract_type: ContractType) -> int:
    return int(brackets(symbol, contract_type)[0]["initialLeverage"])


def cap_at(symbol: str, contract_type: ContractType, leverage: int) -> str:
    """``maxNotionalValue`` (USDⓈ-M) or ``maxQty`` (COIN-M) at ``leverage``."""
    key = "qtyCap" if contract_type is ContractType.COIN_M else "notionalCap"
    allowed = [b[key] for b in brackets(symbol, contract_type) if b["initialLeverage"] >= leverage]
    return str(max(allowed, default=0))
