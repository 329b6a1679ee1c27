"""What an executor reports: every state its orders go through, and every entry it refuses.

Each report goes to the ledger, which persists it, and to the optional ``events`` tap; a refused entry is
also a notice (``notify``). The executor reports ``submitted`` *before* a request leaves, so a crash
mid-request still leaves a row that reconciliation resolves by client id.
"""

from __future__ import annotations

from collections.abc import Callable

from ...domain.model import Decision, Leg
from ...messages import EntryRejected, OrderStateChanged, PositionLedgerInbox
from ...runtime.actor import Address


class OrderReports:
    """Tells the ledger (and the events tap) about one executor's orders (see the module docstring)."""

    def __init__(
        self,
        *,
        ledger: Address[PositionLedgerInbox],
        notify: Callable[[object], None],
        events: Callable[[object], None] | None,
        clock_ms: Callable[[], int],
    ) -> None:
        self._ledger = ledger
        self._notify = notify
        self._events = events
        self._clock_ms = clock_ms

    def order_state(
        self,
        symbol: str,
        cid: str,
        leg: Leg,
        status: str,
        side: str,
        *,
        quantity: str | None = None,
        price: float | None = None,
        exchange_id: int | None = None,
        detail: str = "",
        at_ms: int | None = None,
    ) -> None:
        """``at_ms``: the exchange's time of the state when it said (a fill), else our clock's now."""
        event = OrderStateChanged(
            symbol=symbol,
            client_id=cid,
            leg=leg,
            status=status,
            side=side,
            quantity=quantity,
            price=price,
            exchange_id=exchange_id,
            detail=detail,
            at_ms=self._clock_ms() if at_ms is None else at_ms,
        )
        self._ledger.tell(event)
        if self._events is not None:
            self._events(event)

    def entry_rejected(self, d: Decision, reason: str) -> None:
        event = EntryRejected(symbol=d.symbol, signal_open_time_ms=d.signal_open_time_ms, reason=reason)
        self._ledger.tell(event)
        self._notify(event)
        if self._events is not None:
            self._events(event)
