"""Reconciliation as a pure function: the ledger's open positions vs the exchange's truth → a plan.

``plan_reconciliation`` performs no I/O: it returns the discrepancies it found and the actions that
repair them, and the ledger actor carries the actions out through the gateway. The exchange is the
truth for *whether* a position exists and how big it is; the ledger is the truth for *why* (signal,
stop and take-profit levels), which the exchange cannot tell us.

Rules, per symbol (one contract type at a time):

- exchange position the ledger does not hold, but that an entry of ours (sent, its outcome never
  confirmed) explains → ``entry_found``: adopt it as that signal's trade, with the decision's stop and
  take-profit, and place whichever of them the exchange lacks;
- exchange position unknown to the ledger → ``unknown_position``: adopt it (its stop level taken from an
  open STOP_MARKET, ours or anyone's) or flatten it, per ``on_unknown_position``;
- ledger open but exchange flat → ``flat_on_exchange``: close the ledger row (``reconciled_flat``), once
  ``may_close_flat`` allows; until then the symbol is *awaiting* its closing fill (the user stream may still
  carry it, and the fill books the close with its price and PnL), and its algo orders are left alone;
- ledger and exchange disagree on the side → ``direction_mismatch``: close the ledger row, then treat the
  exchange position as unknown;
- quantities differ → ``quantity_mismatch``: adopt the exchange's quantity;
- a position without an open STOP_MARKET on its closing side → ``naked_position`` (and an alert): place
  the stop at the known level (``repair``; without a known level, flatten) or flatten, per
  ``on_unprotected_position``;
- one of our algo orders open on a symbol without a position → ``orphan_algo_order``: cancel it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from ...domain.model import ContractType, Direction, Leg, client_order_id
from ...exchange.types import AlgoOrderResult, OrderResult, PositionInfo, ProtectiveKind, Side
from .ledger_records import PositionRecord

OUR_PREFIX = "nm-"
MAX_ID_LEN = 36


@dataclass(frozen=True, slots=True, kw_only=True)
class Discrepancy:
    """One difference between the ledger and the exchange."""

    kind: str
    symbol: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryIntent:
    """An entry of ours whose outcome the ledger never heard: what the position it opened is for."""

    signal_open_time_ms: int
    direction: Direction
    stop_loss: float
    """The stop trigger the executor would have placed (rounded to the tick toward the losing side)."""
    take_profit: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AdoptPosition:
    """Record an exchange position the ledger did not know."""

    symbol: str
    contract_type: ContractType
    direction: Direction
    qty: Decimal
    entry_price: float
    stop_loss: float | None
    take_profit: float | None
    signal_open_time_ms: int | None = None
    """The signal of the entry of ours that opened it (``entry_found``); None for a foreign position."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseInLedger:
    """The exchange is flat (or on the other side): close the ledger's row, no order needed."""

    symbol: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateQuantity:
    symbol: str
    qty: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceStop:
    """Put the missing stop-loss (or take-profit) on the exchange (closePosition)."""

    symbol: str
    contract_type: ContractType
    side: Side
    trigger_price: Decimal
    client_algo_id: str
    kind: ProtectiveKind = ProtectiveKind.STOP_MARKET


@dataclass(frozen=True, slots=True, kw_only=True)
class Flatten:
    """Close the position at market (reduce-only)."""

    symbol: str
    contract_type: ContractType
    side: Side
    qty: Decimal
    client_order_id: str
    reason: str
    then_cancel: tuple[str, ...] = ()
    """Our algo orders on the symbol, pointless once it is flat."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAlgo:
    symbol: str
    contract_type: ContractType
    client_algo_id: str


Action = AdoptPosition | CloseInLedger | UpdateQuantity | PlaceStop | Flatten | CancelAlgo


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcilePlan:
    """What reconciliation found and what to do about it, in execution order."""

    discrepancies: tuple[Discrepancy, ...] = ()
    actions: tuple[Action, ...] = ()
    awaiting: tuple[str, ...] = ()
    """Symbols the ledger holds and the exchange shows flat, not closed yet: their closing fill may be on
    its way (``may_close_flat`` said no)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeView:
    """The exchange's truth for one contract type, as fetched by the ledger."""

    contract_type: ContractType
    positions: tuple[PositionInfo, ...]
    open_algo_orders: tuple[AlgoOrderResult, ...]
    open_orders: tuple[OrderResult, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The ``execution`` settings reconciliation obeys."""

    on_unprotected_position: Literal["repair", "flatten"] = "repair"
    on_unknown_position: Literal["adopt", "flatten"] = "adopt"


def is_ours(client_id: str | None) -> bool:
    return client_id is not None and client_id.startswith(OUR_PREFIX)


def parse_client_id(client_id: str) -> tuple[str, int, Leg] | None:
    """``nm-<symbol>-<signal ms>-<leg>[-<suffix>]`` → (symbol, signal, leg); None if not one of ours."""
    parts = client_id.split("-")
    if len(parts) < 4 or parts[0] != OUR_PREFIX[:-1] or not parts[2].isdigit():
        return None
    try:
        return parts[1], int(parts[2]), Leg(parts[3])
    except ValueError:
        return None


def fresh_client_id(symbol: str, signal_open_time_ms: int, leg: Leg, is_used: Callable[[str], bool]) -> str:
    """The leg's deterministic id, or the first ``-r<n>`` variant ``is_used`` does not know."""
    base = client_order_id(symbol, signal_open_time_ms, leg)
    candidate, n = base, 0
    while is_used(candidate):
        n += 1
        suffix = f"-r{n}"
        candidate = base[: MAX_ID_LEN - len(suffix)] + suffix
    return candidate


def closing_side(direction: Direction) -> Side:
    return Side.SELL if direction is Direction.LONG else Side.BUY


@dataclass(slots=True)
class _Planner:
    view: ExchangeView
    policy: Policy
    is_used: Callable[[str], bool]
    now_ms: int
    intent_of: Callable[[str], EntryIntent | None]
    discrepancies: list[Discrepancy] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def found(self, kind: str, symbol: str, detail: str) -> None:
        self.discrepancies.append(Discrepancy(kind=kind, symbol=symbol, detail=detail))

    def flatten(
        self, symbol: str, direction: Direction, qty: Decimal, signal: int | None, reason: str
    ) -> None:
        cid = fresh_client_id(symbol, self.now_ms if signal is None else signal, Leg.CLOSE, self.is_used)
        self.actions.append(
            Flatten(
                symbol=symbol,
                contract_type=self.view.contract_type,
                side=closing_side(direction),
                qty=qty,
                client_order_id=cid,
                reason=reason,
                then_cancel=tuple(
                    a.client_algo_id
                    for a in self.view.open_algo_orders
                    if a.symbol == symbol and is_ours(a.client_algo_id)
                ),
            )
        )

    def stop_of(
        self, symbol: str, direction: Direction, kind: ProtectiveKind = ProtectiveKind.STOP_MARKET
    ) -> AlgoOrderResult | None:
        side = closing_side(direction)
        return next(
            (
                a
                for a in self.view.open_algo_orders
                if a.symbol == symbol and a.kind is kind and a.side is side
            ),
            None,
        )

    def unknown(self, pos: PositionInfo, direction: Direction, qty: Decimal) -> None:
        stop = self.stop_of(pos.symbol, direction)
        take = self.stop_of(pos.symbol, direction, ProtectiveKind.TAKE_PROFIT_MARKET)
        noted = f"stop {stop.client_algo_id} @ {stop.trigger_price}" if stop else "no stop"
        intent = self.intent_of(pos.symbol)
        if intent is not None and intent.direction is direction:
            self.ours(pos, intent, qty, stop=stop, take=take, noted=noted)
            return
        self.found("unknown_position", pos.symbol, f"{direction} {qty} @ {pos.entry_price}, {noted}")
        if self.policy.on_unknown_position == "flatten":
            self.flatten(pos.symbol, direction, qty, None, "flattened_unknown")
            return
        self.actions.append(
            AdoptPosition(
                symbol=pos.symbol,
                contract_type=self.view.contract_type,
                direction=direction,
                qty=qty,
                entry_price=pos.entry_price,
                stop_loss=None if stop is None else float(stop.trigger_price),
                take_profit=None if take is None else float(take.trigger_price),
            )
        )
        if stop is None:
            self.naked(pos.symbol, direction, qty, None, None)

    def ours(
        self,
        pos: PositionInfo,
        intent: EntryIntent,
        qty: Decimal,
        *,
        stop: AlgoOrderResult | None,
        take: AlgoOrderResult | None,
        noted: str,
    ) -> None:
        """An entry of ours whose outcome we never heard explains the position: adopt it as that trade."""
        signal, direction = intent.signal_open_time_ms, intent.direction
        detail = f"signal {signal}: {direction} {qty} @ {pos.entry_price}, {noted}"
        self.found("entry_found", pos.symbol, detail)
        self.actions.append(
            AdoptPosition(
                symbol=pos.symbol,
                contract_type=self.view.contract_type,
                direction=direction,
                qty=qty,
                entry_price=pos.entry_price,
                stop_loss=intent.stop_loss if stop is None else float(stop.trigger_price),
                take_profit=intent.take_profit if take is None else float(take.trigger_price),
                signal_open_time_ms=signal,
            )
        )
        if stop is None:
            self.naked(pos.symbol, direction, qty, intent.stop_loss, signal)
        if take is None and intent.take_profit is not None:
            cid = fresh_client_id(pos.symbol, signal, Leg.TAKE_PROFIT, self.is_used)
            self.actions.append(
                PlaceStop(
                    symbol=pos.symbol,
                    contract_type=self.view.contract_type,
                    side=closing_side(direction),
                    trigger_price=Decimal(repr(intent.take_profit)),
                    client_algo_id=cid,
                    kind=ProtectiveKind.TAKE_PROFIT_MARKET,
                )
            )

    def naked(
        self, symbol: str, direction: Direction, qty: Decimal, stop_loss: float | None, signal: int | None
    ) -> None:
        self.found("naked_position", symbol, f"{direction} {qty} has no open STOP_MARKET on the exchange")
        if self.policy.on_unprotected_position == "repair" and stop_loss is not None:
            cid = fresh_client_id(symbol, self.now_ms if signal is None else signal, Leg.STOP, self.is_used)
            self.actions.append(
                PlaceStop(
                    symbol=symbol,
                    contract_type=self.view.contract_type,
                    side=closing_side(direction),
                    trigger_price=Decimal(repr(stop_loss)),
                    client_algo_id=cid,
                )
            )
        else:
            self.flatten(symbol, direction, qty, signal, "flattened_unprotected")

    def known(self, held: PositionRecord, pos: PositionInfo, direction: Direction, qty: Decimal) -> None:
        if qty != held.qty:
            self.found("quantity_mismatch", held.symbol, f"ledger {held.qty}, exchange {qty}")
            self.actions.append(UpdateQuantity(symbol=held.symbol, qty=qty))
        if self.stop_of(pos.symbol, direction) is None:
            self.naked(held.symbol, direction, qty, held.stop_loss, held.signal_open_time_ms)


def plan_reconciliation(
    ledger_open: Iterable[PositionRecord],
    view: ExchangeView,
    policy: Policy,
    *,
    is_used: Callable[[str], bool] = lambda _cid: False,
    in_flight: Collection[str] = (),
    now_ms: int,
    intent_of: Callable[[str], EntryIntent | None] = lambda _symbol: None,
    may_close_flat: Callable[[str], bool] = lambda _symbol: True,
) -> ReconcilePlan:
    """Compare the ledger's open positions of ``view.contract_type`` with the exchange (module docstring).

    ``is_used`` tells whether a client id was already sent to the exchange (any status), so a repair or
    a flatten never reuses one. Symbols in ``in_flight`` (an entry the executor has not reported opened
    yet, whose stop may still be on its way) are left alone. ``now_ms`` stands in for the signal time in
    the ids of positions that have none. ``intent_of`` names the entry of ours a position the ledger does
    not hold may come from. ``may_close_flat`` says whether a held symbol the exchange shows flat may be
    closed in the ledger now, or waits for its closing fill (``ReconcilePlan.awaiting``).
    """
    planner = _Planner(view=view, policy=policy, is_used=is_used, now_ms=now_ms, intent_of=intent_of)
    held = {
        p.symbol: p
        for p in ledger_open
        if p.contract_type is view.contract_type and p.symbol not in in_flight
    }
    live = {p.symbol: p for p in view.positions if p.amount != 0 and p.symbol not in in_flight}
    awaiting: list[str] = []
    for symbol in sorted(held.keys() | live.keys()):
        record, pos = held.get(symbol), live.get(symbol)
        if pos is None:
            assert record is not None  # the symbol came from one of the two maps
            if not may_close_flat(symbol):
                awaiting.append(symbol)
                continue
            planner.found("flat_on_exchange", symbol, f"ledger holds {record.direction} {record.qty}")
            planner.actions.append(CloseInLedger(symbol=symbol, reason="reconciled_flat"))
            continue
        direction = Direction.LONG if pos.amount > 0 else Direction.SHORT
        qty = abs(pos.amount)
        if record is not None and record.direction is not direction:
            planner.found("direction_mismatch", symbol, f"ledger {record.direction}, exchange {direction}")
            planner.actions.append(CloseInLedger(symbol=symbol, reason="reconciled_direction"))
            record = None
        if record is None:
            planner.unknown(pos, direction, qty)
        else:
            planner.known(record, pos, direction, qty)
    for algo in _orphans(view.open_algo_orders, live.keys() | set(in_flight) | set(awaiting)):
        planner.found(
            "orphan_algo_order", algo.symbol, f"{algo.kind} {algo.client_algo_id} without a position"
        )
        planner.actions.append(
            CancelAlgo(
                symbol=algo.symbol, contract_type=view.contract_type, client_algo_id=algo.client_algo_id
            )
        )
    return ReconcilePlan(
        discrepancies=tuple(planner.discrepancies), actions=tuple(planner.actions), awaiting=tuple(awaiting)
    )


def _orphans(algos: Sequence[AlgoOrderResult], with_position: Collection[str]) -> list[AlgoOrderResult]:
    return [a for a in algos if is_ours(a.client_algo_id) and a.symbol not in with_position]
