"""Where events go between actors that do not know each other, and from the exchange into the tree.

The tree's structure says who supervises whom; these relays say who hears what: a rejected entry goes
back to the pair that decided it, an executor's alert to the ledger and the operator, a close the ledger
saw to that symbol's executor, a user-data event (after the replay took its markers) to the ledger, and
every order event, decision and alert to the metrics. Each relay only tells: it runs in the sender's
thread and must never block it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from loguru import logger

from ..domain.model import ContractType, Decision, Kline
from ..exchange.types import AccountUpdate, UserStreamStatus
from ..messages import (
    Alert,
    EntryRejected,
    OrderFilled,
    OrderStateChanged,
    PairTimeframeInbox,
    PositionClosed,
)
from ..sim.lockstep import SimStep

if TYPE_CHECKING:
    from ..config import PairSettings
    from ..exchange.types import UserEvent
    from ..runtime.routing import Router
    from ..runtime.scheduling import OrderPriority
    from ..sim.lockstep import ReplayDriver
    from .actor_refs import BalanceBoard, Refs


class Telemetry(Protocol):
    """What the relays report to (``ops.metrics.Metrics``)."""

    def alert(self, kind: str, symbol: str | None) -> None: ...
    def order_event(self, event: OrderStateChanged | EntryRejected) -> None: ...
    def fill(self, event: OrderFilled) -> None: ...
    def kline_processed_soon(self, symbol: str, interval: str, seconds: float) -> None: ...
    def decision(self, decision: Decision, strategy: str = "v1") -> None: ...


class Relays:
    """The routes of one process's events; ``metrics`` and the probes are attached once they exist."""

    def __init__(
        self,
        *,
        refs: Refs,
        router: Router[PairTimeframeInbox],
        settings: Mapping[str, PairSettings],
        priority: OrderPriority,
    ) -> None:
        self._refs = refs
        self._router = router
        self._settings = settings
        self._priority = priority
        self.balances: BalanceBoard | None = None
        """Takes the wallets of every ACCOUNT_UPDATE, once attached."""
        self.metrics: Telemetry | None = None
        self.executor_latency: Callable[[int], None] | None = None
        """Benchmark probe: nanoseconds from a pair's emit to the entry request, read at executor start."""
        self.order_probe: Callable[[object], None] | None = None
        """Benchmark probe: every executor event, after the metrics saw it."""

    def alert(self, kind: str, symbol: str | None, detail: str) -> None:
        """An operator alert raised outside the actors (a parked pair, a dead thread, an escalation)."""
        logger.warning(f"ALERT {kind} {symbol or ''}: {detail}")
        if self.metrics is not None:
            self.metrics.alert(kind, symbol)
        self._refs.tell_ledger(Alert(kind=kind, symbol=symbol, detail=detail))

    def ledger_alert(self, alert: Alert) -> None:
        """An alert the ledger raised (and already recorded)."""
        logger.warning(f"ALERT {alert.kind} {alert.symbol or ''}: {alert.detail}")
        if self.metrics is not None:
            self.metrics.alert(alert.kind, alert.symbol)

    def ledger_event(self, event: object) -> None:
        """What the ledger learnt: a closed trade (its executor may trade the symbol again; one INFO line),
        and every fill of ours, stop-loss and take-profit included (the metrics)."""
        if isinstance(event, PositionClosed):
            _ledger_log.info(exit_line(event))
            self._refs.tell_executor(event.symbol, event)
        elif isinstance(event, OrderFilled) and self.metrics is not None:
            self.metrics.fill(event)

    def executor_notice(self, event: object) -> None:
        """Rejections go back to the deciding pair (min_interval bookkeeping); alerts go to the ledger."""
        if isinstance(event, EntryRejected):
            settings = self._settings.get(event.symbol)
            if settings is not None:
                self._router.tell(event.symbol, settings.signal_timeframe, event)
        elif isinstance(event, Alert):
            self._refs.tell_ledger(event)
            if self.metrics is not None:
                self.metrics.alert(event.kind, event.symbol)

    def order_event(self, event: object) -> None:
        if self.metrics is not None and isinstance(event, (OrderStateChanged, EntryRejected)):
            self.metrics.order_event(event)
        if self.order_probe is not None:
            self.order_probe(event)

    def observe(self, kline: Kline, seconds: float, decision: Decision | None) -> None:
        """A pair actor processed a closed candle (and maybe decided)."""
        if self.metrics is None:
            return
        self.metrics.kline_processed_soon(kline.symbol, kline.timeframe, seconds)
        if decision is not None:
            settings = self._settings.get(decision.symbol)
            self.metrics.decision(decision, "v1" if settings is None else settings.strategy)

    def user_event(
        self, contract: ContractType, replay: ReplayDriver | None
    ) -> Callable[[UserEvent | SimStep], None]:
        """The sink of one market's user-data stream: the replay's markers to the replay, the rest to the
        ledger, after any entry on its way out (``OrderPriority``)."""

        def deliver(event: UserEvent | SimStep) -> None:
            if replay is not None:
                replay.on_user_event(contract, event)
            if isinstance(event, SimStep):
                return
            if isinstance(event, AccountUpdate) and self.balances is not None:
                self.balances.update(event.balances)
            if isinstance(event, UserStreamStatus) and self._refs.ledger is None:
                return  # connected before the ledger started: its start-up reconciliation covers this
            self._priority.step_aside()
            self._refs.tell_ledger(event)

        return deliver


_ledger_log = logger.bind(actor="ledger")


def exit_line(c: PositionClosed) -> str:
    """The INFO line of a closed trade: what closed, why, at what price, and what it made and cost."""
    asset = f" {c.margin_asset}" if c.margin_asset else ""
    side = f" {c.direction.value}" if c.direction is not None else ""
    qty = f" {c.quantity}" if c.quantity is not None else ""
    entry = f" (entry {c.entry_price})" if c.entry_price is not None else ""
    pnl = "unknown" if c.realized_pnl is None else f"{c.realized_pnl}{asset}"
    fees = "" if c.fees is None else f", fees {c.fees}{asset}"
    return f"{c.symbol}{side}{qty} closed by {c.reason}: exit {c.exit_price}{entry}, realised PnL {pnl}{fees}"
