"""The current refs of the shared actors, and the ledger's portfolio view, for everything that tells them.

A supervisor restart creates a new actor, so nothing may keep a ref captured at start: senders go through
``Refs``, which the start functions update. A message for an actor that is not running or is restarting is
dropped with a warning, never raised into the sender.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pykka
from loguru import logger

from ..domain.model import ContractType, PortfolioView
from ..exchange.types import Balance
from ..messages import Barrier, MarketStreamInbox, OrderExecutorInbox, PositionLedgerInbox

M = TypeVar("M")


class PortfolioBoard:
    """The ledger's latest ``PortfolioView``; pair actors and the executor read it lock-free."""

    def __init__(self) -> None:
        self._view = PortfolioView()

    def get(self) -> PortfolioView:
        return self._view

    def set(self, view: PortfolioView) -> None:
        self._view = view


class BalanceBoard:
    """The latest wallet balance per asset: from the executors' balance reads and from every ACCOUNT_UPDATE
    of the user-data stream. Written from those threads, read lock-free by the metrics."""

    def __init__(self) -> None:
        self._wallets: Mapping[str, float] = {}

    def update(self, balances: Iterable[Balance]) -> None:
        """Newer balances of some assets (an ACCOUNT_UPDATE lists only the assets that changed)."""
        self._wallets = {**self._wallets, **{b.asset: b.wallet for b in balances}}

    def wallets(self) -> Mapping[str, float]:
        return self._wallets


@dataclass(slots=True)
class Refs:
    """Current actor refs: the ledger, one executor per symbol, one market stream per market."""

    ledger: pykka.ActorRef[Any] | None = None
    executors: dict[str, pykka.ActorRef[Any]] = field(default_factory=dict)
    streams: dict[ContractType, pykka.ActorRef[Any]] = field(default_factory=dict)

    def _tell(self, ref: pykka.ActorRef[Any] | None, message: object) -> None:
        if ref is None:
            logger.warning(f"{type(message).__name__} dropped: its actor is not running")
            return
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            logger.warning(f"{type(message).__name__} dropped: its actor is restarting")

    def tell_ledger(self, message: PositionLedgerInbox | Barrier) -> None:
        self._tell(self.ledger, message)

    def tell_executor(self, symbol: str, message: OrderExecutorInbox) -> None:
        """To the executor of ``symbol``."""
        self._tell(self.executors.get(symbol), message)

    def tell_executors(self, message: OrderExecutorInbox) -> None:
        """To every symbol's executor (shutdown, settings updates)."""
        for ref in list(self.executors.values()):
            self._tell(ref, message)

    def tell_streams(self, message: MarketStreamInbox) -> None:
        """To every market's stream (settings updates)."""
        for ref in list(self.streams.values()):
            self._tell(ref, message)

    def ledger_address(self) -> _Forward[PositionLedgerInbox]:
        """Where to tell the ledger, whichever incarnation runs when the message is sent."""
        return _Forward(self.tell_ledger)

    def executor_address(self, symbol: str) -> _Forward[OrderExecutorInbox]:
        """Where to tell ``symbol``'s executor, whichever incarnation runs when the message is sent."""
        return _Forward(lambda message: self.tell_executor(symbol, message))


@dataclass(frozen=True, slots=True)
class _Forward(Generic[M]):
    send: Callable[[M], None]

    def tell(self, message: M) -> None:
        self.send(message)
