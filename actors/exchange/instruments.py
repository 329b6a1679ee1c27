"""Exchange-info filters → ``InstrumentSpec``; the bundled exchangeInfo documents used offline."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from ..domain.fills import InstrumentSpec
from ..domain.model import ContractType

_BUNDLED = {
    ContractType.USDT_M: "exchange_info_usdm.json",
    ContractType.COIN_M: "exchange_info_coinm.json",
}


class ExchangeInfoError(ValueError):
    """exchangeInfo lacks a filter the bot needs; the message names the symbol and filter."""


def _filters(raw: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {f["filterType"]: f for f in raw.get("filters", ())}


def parse_symbol(raw: Mapping[str, Any], contract_type: ContractType) -> InstrumentSpec:
    """One ``symbols[]`` entry of exchangeInfo → spec. Raises ExchangeInfoError naming what is missing."""
    symbol = str(raw.get("symbol", "?"))
    filters = _filters(raw)
    try:
        price = filters["PRICE_FILTER"]
        lot = filters["LOT_SIZE"]
        market = filters.get("MARKET_LOT_SIZE", lot)
        notional = filters.get("MIN_NOTIONAL", {}).get("notional", "0")
        return InstrumentSpec(
            symbol=symbol,
            contract_type=contract_type,
            tick_size=Decimal(price["tickSize"]).normalize(),
            step_size=Decimal(lot["stepSize"]).normalize(),
            min_qty=Decimal(lot["minQty"]),
            market_step_size=Decimal(market["stepSize"]).normalize(),
            market_min_qty=Decimal(market["minQty"]),
            market_max_qty=Decimal(market["maxQty"]),
            min_notional=Decimal(notional),
            contract_size=int(raw.get("contractSize", 1)) if contract_type is ContractType.COIN_M else 1,
            base_asset=str(raw["baseAsset"]),
            quote_asset=str(raw["quoteAsset"]),
            margin_asset=str(raw["marginAsset"]),
            price_precision=int(raw["pricePrecision"]),
            quantity_precision=int(raw["quantityPrecision"]),
        )
    except (KeyError, ArithmeticError, TypeError, ValueError) as exc:
        raise ExchangeInfoError(f"exchangeInfo {symbol}: missing or malformed field {exc}") from exc


def parse_exchange_info(payload: Mapping[str, Any], contract_type: ContractType) -> dict[str, InstrumentSpec]:
    """Whole exchangeInfo response → specs by symbol (perpetuals and delivery contracts alike)."""
    return {str(s["symbol"]): parse_symbol(s, contract_type) for s in payload.get("symbols", ())}


@cache
def bundled_exchange_info(contract_type: ContractType) -> Mapping[str, Any]:
    """The exchangeInfo document shipped with the package (real Binance shapes and filters)."""
    text = resources.files(__package__ or "").joinpath(_BUNDLED[contract_type]).read_text(encoding="utf-8")
    data: Mapping[str, Any] = json.loads(text)
    return data


def _decimals(values: Iterable[float]) -> int:
    most = 0
    for value in values:
        text = repr(float(value))
        if "e" in text:
            return 8
        most = max(most, len(text.partition(".")[2].rstrip("0")))
    return most


def synthetic_symbol(
    symbol: str, contract_type: ContractType, sample_prices: Iterable[float]
) -> dict[str, Any]:
    """An exchangeInfo entry for a symbol the bundled document lacks, modelled on its nearest sibling.

    The tick is the finest price increment seen in the data, so replayed prices are always on the tick.
    """
    template_symbol = "BTCUSD_PERP" if contract_type is ContractType.COIN_M else "ETHUSDT"
    template = next(
        s for s in bundled_exchange_info(contract_type)["symbols"] if s["symbol"] == template_symbol
    )
    decimals = _decimals(sample_prices)
    tick = format(Decimal(1).scaleb(-decimals), "f")
    entry = json.loads(json.dumps(template))
    base = symbol.removesuffix("_PERP").removesuffix("USDT").removesuffix("USD") or symbol
    entry.update(symbol=symbol, pair=symbol.removesuffix("_PERP"), baseAsset=base, pricePrecision=decimals)
    if contract_type is ContractType.COIN_M:
        entry.update(marginAsset=base, contractSize=100 if symbol.startswith("BTCUSD") else 10)
    for f in entry["filters"]:
        if f["filterType"] == "PRICE_FILTER":
            f.update(tickSize=tick, minPrice=tick)
    return dict(entry)


def spec_for(symbol: str, contract_type: ContractType, sample_prices: Iterable[float] = ()) -> InstrumentSpec:
    """Bundled spec of ``symbol`` or, when not bundled, a synthetic one (see ``synthetic_symbol``)."""
    for raw in bundled_exchange_info(contract_type)["symbols"]:
        if raw["symbol"] == symbol:
            return parse_symbol(raw, contract_type)
    return parse_symbol(synthetic_symbol(symbol, contract_type, sample_prices), contract_type)


def spec_to_entry(spec: InstrumentSpec) -> dict[str, Any]:
    """An exchangeInfo ``symbols[]`` entry carrying ``spec``'s filters (to list it on another venue)."""
    coin = spec.contract_type is ContractType.COIN_M
    filters: list[dict[str, Any]] = [
        {
            "filterType": "PRICE_FILTER",
            "tickSize": str(spec.tick_size),
            "minPrice": str(spec.tick_size),
            "maxPrice": "10000000",
        },
        {
            "filterType": "LOT_SIZE",
            "stepSize": str(spec.step_size),
            "minQty": str(spec.min_qty),
            "maxQty": str(spec.market_max_qty),
        },
        {
            "filterType": "MARKET_LOT_SIZE",
            "stepSize": str(spec.market_step_size),
            "minQty": str(spec.market_min_qty),
            "maxQty": str(spec.market_max_qty),
        },
    ]
    if not coin:
        filters.append({"filterType": "MIN_NOTIONAL", "notional": str(spec.min_notional)})
    entry: dict[str, Any] = {
        "symbol": spec.symbol,
        "pair": spec.symbol.removesuffix("_PERP"),
        "contractType": "PERPETUAL",
        "status": "TRADING",
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.margin_asset,
        "pricePrecision": spec.price_precision,
        "quantityPrecision": spec.quantity_precision,
        "filters": filters,
    }
    if coin:
        entry["contractSize"] = spec.contract_size
        entry["contractStatus"] = "TRADING"
    return entry
