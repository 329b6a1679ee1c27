"""The position ledger's trades in its store: open positions, order states, events, and closing a trade.

``LedgerTrades`` holds the ledger's open positions (mirrored in the store, published to the snapshots and
the portfolio view) and makes every write that goes with them. It is the ``PositionLedger`` actor's and
runs on its thread only.

- An order's row is merged, never moved backwards: a late NEW after FILLED keeps FILLED.
- A trade is closed with the exit price and realised PnL of its closing-side fills, the reason taken from
  the leg of our order that filled (else what the algo updates said), and then its sibling protective
  orders are cancelled on the exchange (already gone is fine; a failure is an event for reconciliation).
- A fill or order belongs to the trade of the signal in its client id: a reversal can open the next trade
  of a symbol before the previous one's fills have all arrived, and neither may count or cancel the other's.
- A closing fill that arrives after the trade was closed completes that trade's exit and PnL (a close at
  market is answered before its fill is streamed: the trade is closed with the answer's price, and its
  realised PnL, which only the stream reports, is filled in when the fill arrives).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from ...domain.model import ContractType, HeldPosition, Leg, PortfolioView, client_order_id
from ...exchange.errors import ExchangeError
from ...messages import OrderFilled, PositionClosed
from .ledger_records import TERMINAL, EventRecord, OrderRecord, PositionRecord
from .ledger_snapshots import (
    LedgerGateway,
    LedgerSnapshots,
    MoneyTotals,
    OpenPositionView,
    margin_asset_of,
    money_totals,
)
from .ledger_store import LedgerStore
from .reconciliation import closing_side, parse_client_id

EXIT_REASON = {
    Leg.STOP: "stop_loss",
    Leg.TAKE_PROFIT: "take_profit",
    Leg.TRAILING_STOP: "trailing_stop",
    Leg.TIME_EXIT: "time_exit",
    Leg.REVERSAL: "reversal",
    Leg.CLOSE: "flattened",
}
"""Why a trade closed, by the leg of our order that closed it."""
PROTECTIVE = (Leg.STOP, Leg.TAKE_PROFIT, Leg.TRAILING_STOP)
_EXIT_LEGS = frozenset(leg.value for leg in EXIT_REASON)
_RANK = {"submitted": 0, "unknown": 0, "new": 1, "partially_filled": 2, "triggering": 2, "triggered": 3}
_LEGS = frozenset(leg.value for leg in Leg)
_GUESSED = frozenset({"reconciled_flat", "closed_on_exchange", "superseded"})
"""Close reasons given without a fill to go by (a later closing fill of ours replaces them)."""
_LATE_FILL_MS = 60_000
"""A reduce-only fill this close to a trade's close belongs to it (later ones are someone else's)."""


def _asset(p: PositionRecord) -> str:
    return p.margin_asset or margin_asset_of(p.symbol, p.contract_type)


def _rank(status: str) -> int:
    return 4 if status in TERMINAL else _RANK.get(status, 1)


def belongs(client_id: str, held: PositionRecord) -> bool:
    """Whether an order is the trade's: its id carries the trade's signal (any id, for an adopted trade)."""
    parsed = parse_client_id(client_id)
    return held.signal_open_time_ms is None or parsed is None or parsed[1] == held.signal_open_time_ms


class LedgerTrades:
    """The ledger's open positions and the writes that go with them (see the module docstring)."""

    def __init__(
        self,
        *,
        store: LedgerStore,
        gateways: Mapping[ContractType, LedgerGateway],
        snapshots: LedgerSnapshots,
        publish_portfolio: Callable[[PortfolioView], None],
        listeners: Callable[[object], None],
        clock_ms: Callable[[], int],
    ) -> None:
        self._store = store
        self._gateways = gateways
        self._snapshots = snapshots
        self._publish_portfolio = publish_portfolio
        self._listeners = listeners
        self._clock_ms = clock_ms
        self._open: dict[str, PositionRecord] = {}
        self._exit_reason: dict[str, str] = {}
        self._cancel_failed: dict[str, str] = {}
        """Client ids whose cancel failed → their symbol: a reconciliation reads those symbols' orders."""
        self._totals = MoneyTotals()

    # ---- open positions ------------------------------------------------------------------------------

    def load(self) -> None:
        """Take the open positions and the money totals from the store (at start) and publish them."""
        self._open = {p.symbol: p for p in self._store.open_positions()}
        self._publish()
        self._money(money_totals(self._store.closed_money(), self._store.commissions()))

    def _money(self, totals: MoneyTotals) -> None:
        """Closed trades, realised PnL and fees of the whole ledger for the metrics: read from the store
        once, then kept up to date with every close, amendment and commission."""
        self._totals = totals
        self._snapshots.set_money(totals)

    def held(self, symbol: str) -> PositionRecord | None:
        return self._open.get(symbol)

    def positions(self) -> list[PositionRecord]:
        return list(self._open.values())

    def unpriced_closes(self, *, closed_from_ms: int, closed_to_ms: int) -> list[tuple[int, PositionRecord]]:
        """Closed trades whose realised PnL is still unknown, with their ids (see ``LedgerStore``)."""
        return self._store.unpriced_closes(closed_from_ms=closed_from_ms, closed_to_ms=closed_to_ms)

    def open(self, record: PositionRecord, *, superseded: PositionRecord | None) -> None:
        """Our entry filled: record its position, closing the one it replaces in the same transaction."""
        with self._store.atomic():
            if superseded is not None:
                self.event(
                    "position_superseded",
                    record.symbol,
                    f"ledger held signal {superseded.signal_open_time_ms}",
                )
                self._store.close_position(
                    record.symbol,
                    at_ms=record.opened_at_ms,
                    exit_price=None,
                    realized_pnl=None,
                    reason="superseded",
                )
                self._money(self._totals.closing(record.symbol, _asset(superseded), "superseded", None))
            self._store.open_position(record)
        self._open[record.symbol] = record
        self._exit_reason.pop(record.symbol, None)
        self._publish()

    def adopt(self, record: PositionRecord) -> None:
        """Record a position found on the exchange that the ledger did not know."""
        self._store.open_position(record)
        self._open[record.symbol] = record
        self._snapshots.bump("adopted")
        self._publish()

    def set_quantity(self, symbol: str, qty: Decimal) -> None:
        self._store.update_open_position(symbol, qty=qty)
        self._open[symbol] = next(p for p in self._store.open_positions() if p.symbol == symbol)
        self._publish()

    # ---- closing -------------------------------------------------------------------------------------

    def note_exit(self, symbol: str, leg: Leg) -> None:
        """Our ``leg`` is taking the position out: the reason its close gives unless a fill says otherwise."""
        self._exit_reason[symbol] = EXIT_REASON[leg]

    def fully_exited(self, held: PositionRecord) -> bool:
        """Closing-side fills since the position opened add up to its quantity."""
        return self._exit_fills(held)[0] >= held.qty

    def reason_from_fills(self, held: PositionRecord) -> str:
        """Why it closed: the leg of our order that took it out, else what the algo updates said."""
        reason = self._reason_of(self._closing_fills(held))
        return reason or self._exit_reason.get(held.symbol, "closed_on_exchange")

    @staticmethod
    def _reason_of(fills: list[OrderRecord]) -> str | None:
        legs = [o.leg for o in fills if o.leg in _EXIT_LEGS]
        return EXIT_REASON[Leg(legs[0])] if legs else None

    def close(self, symbol: str, reason: str, *, at_ms: int, exit_price: float | None = None) -> None:
        """Close the open trade of ``symbol`` (no-op if there is none) and tell the listeners."""
        held = self._open.pop(symbol, None)
        if held is None:
            return
        _, price, pnl = self._exit_fills(held)
        price = price if price is not None else exit_price
        fees = self._fees(held)
        with self._store.atomic():
            self._store.close_position(
                symbol, at_ms=at_ms, exit_price=price, realized_pnl=pnl, reason=reason, fees=fees
            )
            self.event("position_closed", symbol, f"{reason} exit {price} pnl {pnl} fees {fees}")
        self._exit_reason.pop(symbol, None)
        self._snapshots.bump("closed")
        self._cancel_siblings(held)
        self._publish()
        asset = _asset(held)
        self._money(self._totals.closing(symbol, asset, reason, pnl))
        self._listeners(
            PositionClosed(
                symbol=symbol, reason=reason, exit_price=price, realized_pnl=pnl, closed_at_ms=at_ms,
                direction=held.direction, quantity=held.qty, entry_price=held.entry_price,
                margin_asset=asset, fees=fees, signal_open_time_ms=held.signal_open_time_ms,
            )
        )  # fmt: skip

    def amend_last_close(self, symbol: str, fill_ms: int) -> None:
        """A closing fill that arrived after the flat position: complete that trade's exit and PnL."""
        last = self._store.trades(symbol=symbol)[-1:]
        if not last or (
            last[0].realized_pnl is not None and abs(fill_ms - (last[0].closed_at_ms or 0)) > _LATE_FILL_MS
        ):
            return  # a close whose PnL is still unknown (a close at market answered before its fill) waits
        qty, price, pnl = self._exit_fills(last[0])
        if qty and price is not None and pnl is not None:
            fees = self._fees(last[0])
            # A reconciliation that found the symbol flat before its fill arrived could only guess why;
            # the fill of our stop, take-profit or close says.
            known = last[0].close_reason not in _GUESSED
            reason = None if known else self._reason_of(self._closing_fills(last[0]))
            self._store.amend_last_close(symbol, exit_price=price, realized_pnl=pnl, fees=fees, reason=reason)
            was, asset = last[0], _asset(last[0])
            totals = self._totals.closing(symbol, asset, was.close_reason, was.realized_pnl, undo=True)
            self._money(totals.closing(symbol, asset, reason or was.close_reason, pnl))

    def price_close(self, position_id: int, trade: PositionRecord) -> bool:
        """A trade closed with its PnL unknown whose closing fills are booked now: complete its exit (and its
        reason, if it was a guess). False while its closing fills fall short of its quantity."""
        qty, price, pnl = self._exit_fills(trade)
        if qty < trade.qty or price is None or pnl is None:
            return False
        fees = self._fees(trade)
        reason = self._reason_of(self._closing_fills(trade)) if trade.close_reason in _GUESSED else None
        self._store.amend_close(position_id, exit_price=price, realized_pnl=pnl, fees=fees, reason=reason)
        asset = _asset(trade)
        totals = self._totals.closing(trade.symbol, asset, trade.close_reason, None, undo=True)
        self._money(totals.closing(trade.symbol, asset, reason or trade.close_reason, pnl))
        self.event("exit_priced", trade.symbol, f"{reason or trade.close_reason} exit {price} pnl {pnl}")
        return True

    def cancel_algo(self, symbol: str, contract: ContractType, cid: str) -> None:
        """Cancel one of our algo orders on the exchange; a failure is recorded, not raised."""
        try:
            existed = self._gateways[contract].cancel_algo_order(symbol, contract, client_algo_id=cid)
        except ExchangeError as exc:
            self.event("cancel_failed", symbol, f"{cid}: {exc}")
            self._cancel_failed[cid] = symbol
            return
        self._cancel_failed.pop(cid, None)
        self.merge_order(cid, symbol, status="canceled", detail="" if existed else "already gone")

    def _closing_fills(self, held: PositionRecord) -> list[OrderRecord]:
        side = closing_side(held.direction).value
        return [
            o
            for o in self._store.orders(symbol=held.symbol)
            if o.side == side
            and o.filled_qty > 0
            and o.updated_at_ms >= held.opened_at_ms
            and o.leg != "E"
            and belongs(o.client_id, held)
        ]

    def _exit_fills(self, held: PositionRecord) -> tuple[Decimal, float | None, float | None]:
        """Quantity, average price and realised PnL of the fills that closed ``held``.

        Summed in decimals: one fill's price comes back as the exchange wrote it (no 105650.30000000003),
        several average to the exact quotient."""
        fills = self._closing_fills(held)
        qty = sum((o.filled_qty for o in fills), Decimal(0))
        if not qty:
            return qty, None, None
        notional = sum((o.filled_qty * Decimal(repr(o.price or 0.0)) for o in fills), Decimal(0))
        pnl = sum((Decimal(repr(o.realized_pnl)) for o in fills), Decimal(0))
        return qty, float(notional / qty), float(pnl)

    def _fees(self, held: PositionRecord) -> Decimal:
        """Commissions of the trade's entry order and its closing fills (the exchange's own numbers)."""
        orders = list(self._closing_fills(held))
        if held.signal_open_time_ms is not None:
            entry = self._store.order(client_order_id(held.symbol, held.signal_open_time_ms, Leg.ENTRY))
            if entry is not None:
                orders.append(entry)
        return sum((o.commission for o in orders), Decimal(0))

    def _cancel_siblings(self, held: PositionRecord) -> None:
        """Cancel our protective orders of a closed position (already gone is fine; failures → reconcile)."""
        ids = {
            o.client_id
            for o in self._store.orders(open_only=True, symbol=held.symbol)
            if o.leg in {leg.value for leg in PROTECTIVE} and belongs(o.client_id, held)
        }
        if held.signal_open_time_ms is not None:
            for leg in PROTECTIVE:
                cid = client_order_id(held.symbol, held.signal_open_time_ms, leg)
                known = self._store.order(cid)
                placed = known is not None or leg is not Leg.TRAILING_STOP  # a trailing stop only if sent
                if placed and (known is None or known.status not in TERMINAL):
                    ids.add(cid)
        for cid in sorted(ids):
            self.cancel_algo(held.symbol, held.contract_type, cid)

    # ---- orders and events -----------------------------------------------------------------------------

    def merge_order(
        self,
        cid: str,
        symbol: str,
        *,
        status: str,
        leg: str | None = None,
        side: str | None = None,
        qty: str | None = None,
        price: float | None = None,
        exchange_id: int | None = None,
        detail: str = "",
        at_ms: int | None = None,
        filled: Decimal | None = None,
        pnl: float | None = None,
        commission: Decimal | None = None,
        commission_asset: str | None = None,
    ) -> None:
        """Upsert one order row; a late event never moves its status backwards (NEW after FILLED).

        The first report that an order filled, whoever makes it, is told to the listeners (``OrderFilled``);
        a changed commission updates the money totals."""
        old = self._store.order(cid)
        if old is not None and _rank(status) < _rank(old.status):
            status = old.status
        paid = old.commission if old else Decimal(0)
        row = OrderRecord(
            client_id=cid, symbol=symbol, status=status,
            leg=leg or (old.leg if old else None), side=side or (old.side if old else None),
            qty=qty or (old.qty if old else None),
            price=price if price is not None else (old.price if old else None),
            exchange_id=exchange_id or (old.exchange_id if old else None),
            detail=detail or (old.detail if old else ""),
            updated_at_ms=at_ms or (old.updated_at_ms if old else self._clock_ms()),
            filled_qty=filled if filled is not None else (old.filled_qty if old else Decimal(0)),
            realized_pnl=pnl if pnl is not None else (old.realized_pnl if old else 0.0),
            commission=commission if commission is not None else paid,
            commission_asset=commission_asset or (old.commission_asset if old else None),
        )  # fmt: skip
        self._store.upsert_orders([row])
        if status == "filled" and (old is None or old.status != "filled"):
            self._listeners(
                OrderFilled(
                    symbol=symbol, leg=Leg(row.leg) if row.leg in _LEGS else None, side=row.side or "",
                    quantity=row.qty, price=row.price,
                )
            )  # fmt: skip
        if row.commission != paid:
            self._money(self._totals.paying(symbol, row.commission_asset or "", row.commission - paid))

    def symbols_with_open_orders(self) -> set[str]:
        """Symbols of the orders the ledger has not seen end, and of the cancels that failed."""
        return {o.symbol for o in self._store.orders(open_only=True)} | set(self._cancel_failed.values())

    def is_used(self, client_id: str) -> bool:
        """Whether the client id was ever sent (any status): a repair or a flatten must not reuse it."""
        return self._store.order(client_id) is not None

    def event(self, kind: str, symbol: str | None, detail: str) -> None:
        self._store.add_events([EventRecord(kind=kind, symbol=symbol, detail=detail, at_ms=self._clock_ms())])

    def _publish(self) -> None:
        self._snapshots.set_positions(
            tuple(
                OpenPositionView(
                    symbol=p.symbol, direction=p.direction.value, qty=p.qty, entry_price=p.entry_price,
                    stop_loss=p.stop_loss, take_profit=p.take_profit, opened_at_ms=p.opened_at_ms,
                    contract_type=p.contract_type,
                )
                for p in sorted(self._open.values(), key=lambda p: p.symbol)
            )
        )  # fmt: skip
        held = tuple(
            HeldPosition(
                symbol=p.symbol,
                direction=p.direction,
                quantity=str(p.qty),
                signal_open_time_ms=p.signal_open_time_ms,
                opened_at_ms=p.opened_at_ms,
            )
            for p in sorted(self._open.values(), key=lambda p: p.symbol)
        )
        self._publish_portfolio(PortfolioView(open_symbols=frozenset(self._open), held=held))
