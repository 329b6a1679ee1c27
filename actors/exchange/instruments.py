"""Exchange-info filters → ``InstrumentSpec``, and where a symbol's filters come from offline.

``parse_symbol`` / ``parse_exchange_info`` read what a venue serves. Offline (backtest, replay, the local
exchange, ``report``) ``SymbolCatalog`` looks a symbol's exchangeInfo entry up in this order, first hit wins:

1. the exchangeInfo documents given (``--exchange-info FILE``, ``backtesting.exchange_info``): a saved
   ``GET /fapi/v1/exchangeInfo`` or ``GET /dapi/v1/exchangeInfo`` answer, JSON or gzipped JSON; the market
   is told by its symbols (COIN-M entries carry ``contractSize``);
2. the pinned bundled entries: ``exchange_info_usdm.json`` (BTCUSDT, ETHUSDT as Binance served them on
   2022-02-19) and ``exchange_info_coinm.json`` (BTCUSD_PERP, ETHUSD_PERP, 2025-06-26). They stay first so
   the bundled data's replays and backtests keep the results they were baselined with;
3. the bundled full USDⓈ-M snapshot ``exchange_info_usdm_2025-11-26.json.gz`` (647 symbols, every filter,
   as ``GET /fapi/v1/exchangeInfo`` answered on 2025-11-26; saved by a public repository, see the README);
4. synthesis (``synthetic_symbol``): the listing says so, and callers announce it — the filters
   are ETHUSDT's (COIN-M: BTCUSD_PERP's) with the tick taken from the data, so order sizes may differ from
   Binance's.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
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


SNAPSHOT = "exchange_info_usdm_2025-11-26.json.gz"
SNAPSHOT_SOURCE = "Binance snapshot 2025-11-26"
SYNTHETIC = "synthetic"


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    """One symbol's exchangeInfo entry and where it came from."""

    symbol: str
    contract_type: ContractType
    entry: Mapping[str, Any]
    source: str
    """The file it was read from, ``bundled``, ``Binance snapshot 2025-11-26`` or ``synthetic``."""

    @property
    def synthetic(self) -> bool:
        return self.source == SYNTHETIC

    @property
    def spec(self) -> InstrumentSpec:
        return parse_symbol(self.entry, self.contract_type)

    def warning(self) -> str:
        """The announcement of a synthesised filter set (empty for a real one)."""
        if not self.synthetic:
            return ""
        spec = self.spec
        template = "BTCUSD_PERP" if self.contract_type is ContractType.COIN_M else "ETHUSDT"
        floor = "" if self.contract_type is ContractType.COIN_M else f", min notional {spec.min_notional}"
        return (
            f"{self.symbol} is in no exchange info (bundled or --exchange-info): its filters are "
            f"synthesised from {template}'s — tick {spec.tick_size} (the data's finest price step), "
            f"step {spec.market_step_size}, min qty {spec.market_min_qty}, max qty {spec.market_max_qty}"
            f"{floor}; sizes may differ from Binance's. Pass a saved exchangeInfo with --exchange-info FILE "
            "(backtesting.exchange_info in the config) to use the real ones."
        )


def read_exchange_info(path: str | Path) -> tuple[ContractType, dict[str, Mapping[str, Any]]]:
    """A saved exchangeInfo answer (JSON, optionally gzipped) → (its market, entries by symbol)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        doc = json.loads(data)
    except (OSError, ValueError, EOFError) as exc:
        raise ExchangeInfoError(f"{path}: not a readable exchangeInfo JSON file ({exc})") from exc
    symbols = doc.get("symbols") if isinstance(doc, dict) else None
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, dict) for s in symbols):
        raise ExchangeInfoError(
            f"{path}: no 'symbols' list; expected a GET /fapi|dapi/v1/exchangeInfo answer"
        )
    market = ContractType.COIN_M if any("contractSize" in s for s in symbols) else ContractType.USDT_M
    entries = {str(s.get("symbol")): s for s in symbols}
    for entry in entries.values():
        parse_symbol(entry, market)  # fail now, naming the symbol, rather than at the first order
    return market, entries


@cache
def _snapshot() -> dict[str, Mapping[str, Any]]:
    data = resources.files(__package__ or "").joinpath(SNAPSHOT).read_bytes()
    return {str(s["symbol"]): s for s in json.loads(gzip.decompress(data))["symbols"]}


def _pinned(contract_type: ContractType) -> dict[str, Mapping[str, Any]]:
    return {str(s["symbol"]): s for s in bundled_exchange_info(contract_type)["symbols"]}


class SymbolCatalog:
    """Looks symbols up in the order of the module docstring."""

    def __init__(self, files: Sequence[str | Path] = ()) -> None:
        """``files``: saved exchangeInfo answers, first one first. Raises ExchangeInfoError for a bad one."""
        self.files = tuple(str(f) for f in files)
        self._given = [(str(f), *read_exchange_info(f)) for f in files]
        self.synthesised: dict[str, Listing] = {}
        """The listings this catalog had to synthesise, by symbol (for the caller to announce)."""

    def listing(
        self, symbol: str, contract_type: ContractType, sample_prices: Iterable[float] = ()
    ) -> Listing:
        """``symbol``'s entry on ``contract_type``, synthesised (from ``sample_prices``) if nobody has it."""
        layers: list[tuple[str, Mapping[str, Mapping[str, Any]]]] = [
            (source, entries) for source, market, entries in self._given if market is contract_type
        ]
        layers.append(("bundled", _pinned(contract_type)))
        if contract_type is ContractType.USDT_M:
            layers.append((SNAPSHOT_SOURCE, _snapshot()))
        for source, entries in layers:
            entry = entries.get(symbol)
            if entry is not None:
                return Listing(symbol=symbol, contract_type=contract_type, entry=dict(entry), source=source)
        entry = synthetic_symbol(symbol, contract_type, sample_prices)
        listing = Listing(symbol=symbol, contract_type=contract_type, entry=entry, source=SYNTHETIC)
        self.synthesised[symbol] = listing
        return listing


def spec_for(symbol: str, contract_type: ContractType, sample_prices: Iterable[float] = ()) -> InstrumentSpec:
    """``symbol``'s spec from the bundled sources (synthesised from ``sample_prices`` when it has none)."""
    return SymbolCatalog().listing(symbol, contract_type, sample_prices).spec
