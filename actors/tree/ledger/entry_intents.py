"""Entries of ours whose outcome the ledger never heard: what a position they opened on the exchange is for.

An executor that gave up on an entry (its answer lost, every lookup failed) or died mid-entry leaves in the
store an entry order that never became a position, and the taken decision behind it. When the exchange
shows a position there, reconciliation adopts it as that trade (``entry_found``) with the decision's levels,
rounded as the executor rounds them; when the exchange shows the symbol flat, the entry is void and will
never be taken for anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

from ...domain.fills import protective_price
from ...domain.model import Leg
from .ledger_store import LedgerStore
from .reconciliation import EntryIntent, parse_client_id

_SETTLED = frozenset({"rejected", "canceled", "expired"})
"""Entry order statuses that say the entry is over (a ``filled`` one may still lack its position row)."""


class EntryIntents:
    """Reads and voids the unsettled entries in the ledger's store (see the module docstring)."""

    def __init__(self, store: LedgerStore, ticks: Mapping[str, Decimal]) -> None:
        self._store = store
        self._ticks = dict(ticks)

    def _latest(self, symbol: str) -> tuple[str, int] | None:
        """The client id and signal of ``symbol``'s latest entry order (by signal), if unsettled."""
        latest: tuple[int, str, str] | None = None
        for order in self._store.orders(symbol=symbol):
            parsed = parse_client_id(order.client_id)
            if order.leg != Leg.ENTRY.value or parsed is None:
                continue
            if latest is None or parsed[1] > latest[0]:
                latest = (parsed[1], order.client_id, order.status)
        if latest is None or latest[2] in _SETTLED:
            return None
        signal, cid, _ = latest
        if self._store.has_position(symbol, signal):
            return None
        return cid, signal

    def of(self, symbol: str) -> EntryIntent | None:
        """The unsettled entry of ``symbol`` and its levels, if its taken decision is stored."""
        latest = self._latest(symbol)
        if latest is None:
            return None
        decision = self._store.taken_decision(symbol, latest[1])
        if decision is None or decision.stop_loss is None:
            return None
        tick = self._ticks.get(symbol)

        def rounded(level: float) -> float:
            return level if tick is None else float(protective_price(level, tick, decision.direction))

        return EntryIntent(
            signal_open_time_ms=latest[1],
            direction=decision.direction,
            stop_loss=rounded(decision.stop_loss),
            take_profit=None if decision.take_profit is None else rounded(decision.take_profit),
        )

    def doubtful(self) -> set[str]:
        """Symbols whose latest entry order is still unsettled (at start: a kill mid-entry)."""
        symbols = {o.symbol for o in self._store.orders(open_only=True) if o.leg == Leg.ENTRY.value}
        return {s for s in symbols if self._latest(s) is not None}

    def void(self, symbol: str) -> str | None:
        """The exchange is flat: ``symbol``'s unsettled entry made no position (now). Returns its id."""
        latest = self._latest(symbol)
        if latest is None:
            return None
        old = self._store.order(latest[0])
        if old is not None:
            detail = "void: no position on the exchange when reconciled"
            self._store.upsert_orders([replace(old, status="expired", detail=detail)])
        return latest[0]
