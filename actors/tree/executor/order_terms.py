"""What the executors share and are given: the gateway they call, per-symbol terms, the entry slots.

``EntrySlots`` is the one place where the per-symbol executors meet: claiming a slot is atomic, so
``max_concurrent`` holds across all of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from loguru import logger

from ...config import PairSettings
from ...domain.exits import ExitParams
from ...domain.fills import InstrumentSpec
from ...domain.model import ContractType
from ...exchange.types import AlgoOrderResult, Balance, OrderPlacement, OrderResult, Side


class OrderGateway(OrderPlacement, Protocol):
    """The REST calls the executor makes, with ``OrderPlacement``'s two (satisfied by ``BinanceGateway``)."""

    def set_leverage(self, symbol: str, contract: ContractType, leverage: int) -> None: ...
    def set_margin_type(self, symbol: str, contract: ContractType, margin_type: str) -> None: ...
    def balances(self, contract: ContractType) -> dict[str, Balance]: ...
    def get_order(
        self, symbol: str, contract: ContractType, *, client_order_id: str
    ) -> OrderResult | None: ...
    def get_algo_order(
        self, symbol: str, contract: ContractType, *, client_algo_id: str
    ) -> AlgoOrderResult | None: ...
    def place_trailing_stop(  # noqa: PLR0917 - mirrors BinanceGateway.place_trailing_stop
        self,
        symbol: str,
        contract: ContractType,
        side: Side,
        quantity: Decimal,
        callback_rate: Decimal,
        client_algo_id: str,
        *,
        activate_price: Decimal | None = None,
    ) -> AlgoOrderResult: ...
    def cancel_algo_order(self, symbol: str, contract: ContractType, *, client_algo_id: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolTerms:
    """What the executor needs to size and route one symbol."""

    spec: InstrumentSpec
    leverage: int
    margin_mode: str
    fixed_margin: float
    dynamic_sizing: bool
    risk_percent: float
    max_concurrent: int | None
    exits: ExitParams = field(default_factory=ExitParams)
    """The pair's exits: with a trailing stop, it is placed after the stop and the take-profit."""


def symbol_terms(settings: PairSettings, spec: InstrumentSpec) -> SymbolTerms:
    """One pair's effective settings on its exchange filters, as its executor trades them."""
    coin = settings.contract_type is ContractType.COIN_M
    return SymbolTerms(
        spec=spec,
        leverage=settings.leverage,
        margin_mode=settings.margin_mode,
        fixed_margin=(settings.margin_coin or 0.0) if coin else settings.margin_usdt,
        dynamic_sizing=settings.dynamic_sizing_enabled,
        risk_percent=settings.risk_percent,
        max_concurrent=settings.max_concurrent_trades,
        exits=settings.exit_params(),
    )


class EntrySlots:
    """Symbols holding or opening a position, shared by every symbol's executor.

    Each symbol has its own executor, so a slow entry on one symbol never delays another; this is the one
    place where they meet: claiming a slot is atomic, so ``max_concurrent`` holds across all of them.

    A slot is *entering* while its executor works on the entry; after that, whether it stays taken is the
    exchange's to say: the ledger frees it when the position closes (``release``), and a reconciliation that
    found the symbol flat frees it too (``settle``), so a crashed executor or an entry whose outcome was
    never confirmed cannot keep a symbol from trading.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._held: dict[str, float] = {}
        """Symbol → when its executor last acted on it (claimed the slot, or finished the entry)."""
        self._entering: set[str] = set()

    def claim(self, symbol: str, limit: int | None, ledger_open: frozenset[str]) -> str | None:
        """Take ``symbol``'s slot, or say why not (``position_open`` / ``max_concurrent``)."""
        with self._lock:
            busy = ledger_open | self._held.keys()
            if symbol in busy:
                return "position_open"
            if limit is not None and len(busy) >= limit:
                return "max_concurrent"
            self._held[symbol] = self._clock()
            self._entering.add(symbol)
            return None

    def entered(self, symbol: str) -> None:
        """The executor is done with the entry, whatever came of it: the exchange decides from now on (a
        reconciliation that read the exchange before this moment cannot tell what the entry did)."""
        with self._lock:
            self._entering.discard(symbol)
            if symbol in self._held:
                self._held[symbol] = self._clock()

    def release(self, symbol: str) -> None:
        """The symbol is flat (or its entry failed): its slot is free again."""
        with self._lock:
            self._held.pop(symbol, None)
            self._entering.discard(symbol)

    def settle(self, open_symbols: frozenset[str], since: float) -> frozenset[str]:
        """A reconciliation that began at ``since`` (``clock``) found every symbol outside ``open_symbols``
        flat: free their slots, unless still entering or acted on after it began. Returns the freed ones."""
        with self._lock:
            freed = frozenset(
                s
                for s, claimed in self._held.items()
                if s not in open_symbols and s not in self._entering and claimed < since
            )
            for symbol in freed:
                del self._held[symbol]
        if freed:
            logger.info(f"entry slots freed, the exchange is flat: {', '.join(sorted(freed))}")
        return freed

    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._held)
