"""The parts of one local exchange, shared by its REST, stream and admin layers (all on one loop)."""

from __future__ import annotations

import copy
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..domain.fills import InstrumentSpec
from ..domain.model import ContractType
from ..exchange.instruments import bundled_exchange_info, parse_symbol
from .book import Book
from .clock import Pacers
from .config import SimConfig
from .errors import known
from .exposure import Exposure
from .faults import Faults
from .guard import WeightWindow
from .market import Feed
from .replay import Replay
from .rules import SymbolRules
from .streams import Hub


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One admitted REST request, as the endpoint handlers see it."""

    method: str
    path: str
    contract_type: ContractType
    params: dict[str, str]


@dataclass(eq=False, slots=True, kw_only=True)
class SimExchange:
    config: SimConfig
    feeds: dict[str, Feed]
    book: Book
    hub: Hub
    replay: Replay
    faults: Faults
    pacers: Pacers
    weights: WeightWindow
    info: dict[ContractType, dict[str, Any]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    """REST requests served, by ``METHOD /path`` (what a client really asked for, e.g. at warm-up)."""
    extra: dict[ContractType, list[dict[str, Any]]] = field(default_factory=dict)
    """exchangeInfo entries added at run time (paper trading lists the real exchange's symbols)."""
    exposure: Exposure = field(default_factory=Exposure)
    """Positions without a stop, timed on the wall clock (``GET /sim/v1/exposure``)."""

    def add_symbols(self, contract_type: ContractType, entries: list[dict[str, Any]]) -> None:
        """List more symbols (raw exchangeInfo entries) on this market; known ones are kept."""
        known = set(self.book.specs)
        fresh = [e for e in entries if e["symbol"] not in known]
        for entry in fresh:
            self.book.add_symbol(parse_symbol(entry, contract_type), SymbolRules.of(entry))
        self.extra.setdefault(contract_type, []).extend(fresh)
        self.info.pop(contract_type, None)

    @property
    def now_ms(self) -> int:
        return self.replay.now_ms

    def exchange_info(self, contract_type: ContractType) -> dict[str, Any]:
        """The market's exchangeInfo: the bundled document's frame, listing exactly the symbols that trade
        here (the replayed ones, and those added at run time) — a symbol without data is not listed."""
        doc = self.info.get(contract_type)
        if doc is None:
            doc = copy.deepcopy(dict(bundled_exchange_info(contract_type)))
            doc["symbols"] = [f.info for f in self.feeds.values() if f.contract_type is contract_type]
            listed = {s["symbol"] for s in doc["symbols"]}
            doc["symbols"] += [e for e in self.extra.get(contract_type, []) if e["symbol"] not in listed]
            for limit in doc.get("rateLimits", []):
                if limit.get("rateLimitType") == "REQUEST_WEIGHT":
                    limit["limit"] = self.config.weight_limit
                elif limit.get("rateLimitType") == "ORDERS":
                    ten = limit.get("interval") == "SECOND"
                    limit["limit"] = self.config.order_limit_10s if ten else self.config.order_limit_1m
            self.info[contract_type] = doc
        return doc | {"serverTime": int(time.time() * 1000)}

    def symbol(self, name: str, contract_type: ContractType) -> InstrumentSpec:
        """Spec of ``name`` on this market, or -1121."""
        spec = self.book.specs.get(name)
        if spec is None or spec.contract_type is not contract_type:
            raise known(-1121)
        return spec
