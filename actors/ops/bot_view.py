"""What the operator's ways in (shell, metrics, health) read of the running bot: snapshots, never mailboxes.

``supervisor.RootSupervisor`` satisfies this protocol; ``ops`` depends on the protocol, not on the root.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config import Config, PairSettings
    from ..connections import Connections
    from ..domain.model import ContractType
    from ..runtime.scheduling import OrderPriority
    from ..runtime.thread_watch import ThreadWatch
    from ..runtime.tree import ReloadResult, TreeStatus
    from ..tree.actor_refs import BalanceBoard, Refs
    from ..tree.ledger.ledger_snapshots import LedgerSnapshots
    from ..tree.market.market_stream_board import MarketStreamBoard
    from ..tree.pair_timeframe import PairBoard


class RunningBot(Protocol):
    @property
    def config(self) -> Config: ...
    @property
    def started_at(self) -> float:
        """``time.time()`` at start."""

    @property
    def settings(self) -> Mapping[str, PairSettings]:
        """The traded pairs' effective settings."""

    @property
    def connections(self) -> Connections: ...
    @property
    def pair_board(self) -> PairBoard: ...
    @property
    def snapshots(self) -> LedgerSnapshots: ...
    @property
    def boards(self) -> Mapping[ContractType, MarketStreamBoard]: ...
    @property
    def priority(self) -> OrderPriority: ...
    @property
    def threads(self) -> ThreadWatch: ...
    @property
    def refs(self) -> Refs: ...
    @property
    def balances(self) -> BalanceBoard:
        """Wallet balances per asset, as the exchange last reported them."""

    def status(self) -> TreeStatus: ...
    def restart_pair(self, symbol: str) -> bool: ...
    def reload(self) -> ReloadResult | list[str]: ...
