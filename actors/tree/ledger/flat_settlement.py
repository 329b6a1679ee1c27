"""Which of the account's fills (``userTrades``) closed a position the ledger never heard close.

A reconciliation that finds a held position flat on the exchange, or that flattens one itself, may have no
fill of the user stream to go by: the stream was down, the bot was stopped when the stop fired, or the fill
did not come in the grace it had. The account's fills still say what happened: the closing-side fills after
the position opened, in time order, until they add up to its quantity. ``closing_orders`` picks them and
sums them per order; the reconciliation runner looks each order up (its client id says which leg of ours it
was, or that it was not ours) and books it in the ledger's orders as the user stream would have, so the
trade closes with its true reason, exit price, realised PnL and commissions, and a late stream event of the
same order changes nothing (its cumulative quantity is already booked). Fills that do not add up to the
quantity settle nothing: the trade keeps its exit unknown rather than a part of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from ...exchange.errors import ExchangeError
from ...exchange.parse import MalformedPayload
from ...exchange.types import AccountTrade, Side
from .ledger_records import PositionRecord
from .ledger_snapshots import LedgerGateway
from .ledger_trades import LedgerTrades
from .reconciliation import closing_side, parse_client_id

if TYPE_CHECKING:
    from loguru import Logger

FILLS_WINDOW_MS = 7 * 24 * 3_600_000
"""``userTrades`` answers at most seven days from its ``startTime``."""
PRICE_TRIES = 8
"""A trade closed with its realised PnL unknown is priced from the account's fills at most this many times,
each try waiting twice as long as the one before: 1 s, 2 s, 4 s … 128 s."""
PRICE_SOON_S = 2.0
"""A try due this soon keeps the ledger reconciling every second (later ones ride the periodic runs)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosingOrder:
    """One exchange order's share of a position's exit, summed from its fills (decimals, as written)."""

    order_id: int
    side: Side
    qty: Decimal
    price: Decimal
    """Average price of its fills: the exact quotient."""
    realized_pnl: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    """Time of its last fill."""


def fills_start_ms(held: PositionRecord, now_ms: int) -> int:
    """Where to read the fills from: the opening, or as far back as ``userTrades`` reaches."""
    return max(held.opened_at_ms, now_ms - FILLS_WINDOW_MS + 60_000)


def closing_orders(held: PositionRecord, fills: Iterable[AccountTrade]) -> tuple[ClosingOrder, ...] | None:
    """The orders whose fills closed ``held``, oldest first, or None when the fills fall short of it."""
    side = closing_side(held.direction)
    taken: list[AccountTrade] = []
    qty = Decimal(0)
    for fill in sorted(fills, key=lambda f: f.time_ms):
        if fill.symbol != held.symbol or fill.side is not side or fill.time_ms < held.opened_at_ms:
            continue
        taken.append(fill)
        qty += fill.qty
        if qty >= held.qty:
            break
    if qty < held.qty:
        return None
    by_order: dict[int, list[AccountTrade]] = {}
    for fill in taken:
        by_order.setdefault(fill.order_id, []).append(fill)
    return tuple(_order(order_id, parts) for order_id, parts in by_order.items())


def _order(order_id: int, fills: list[AccountTrade]) -> ClosingOrder:
    qty = sum((f.qty for f in fills), Decimal(0))
    return ClosingOrder(
        order_id=order_id,
        side=fills[0].side,
        qty=qty,
        price=sum((f.price * f.qty for f in fills), Decimal(0)) / qty,
        realized_pnl=sum((f.realized_pnl for f in fills), Decimal(0)),
        commission=sum((f.commission for f in fills), Decimal(0)),
        commission_asset=fills[0].commission_asset,
        time_ms=fills[-1].time_ms,
    )


def settle(
    held: PositionRecord, gateway: LedgerGateway, trades: LedgerTrades, now_ms: int, log: Logger
) -> int | None:
    """Book the fills that closed ``held`` (flat now) in the ledger's orders, under each order's own client
    id; returns the last fill's time, or None when the fills cannot be read or fall short of the position
    (its exit stays unknown, and an ``exit_unknown`` event says why)."""
    symbol, contract = held.symbol, held.contract_type
    start = fills_start_ms(held, now_ms)
    try:
        fills = gateway.account_trades(symbol, contract, start_ms=start)
        orders = closing_orders(held, fills) or ()
        found = [(o, gateway.get_order(symbol, contract, order_id=o.order_id)) for o in orders]
    except (ExchangeError, MalformedPayload) as exc:
        log.warning(f"{symbol}: its closing fills could not be read, so its exit stays unknown: {exc}")
        trades.event("exit_unknown", symbol, f"userTrades: {exc}")
        return None
    if not found:
        detail = f"{len(fills)} fills since {start} do not account for {held.direction} {held.qty}"
        log.warning(f"{symbol}: {detail}, so its exit stays unknown")
        trades.event("exit_unknown", symbol, detail)
        return None
    for o, order in found:
        cid = order.client_order_id if order is not None else f"exchange-{o.order_id}"
        parsed = parse_client_id(cid)
        trades.merge_order(
            cid, symbol, status="filled", leg=parsed[2].value if parsed else None, side=o.side.value,
            qty=str(o.qty), price=float(o.price), exchange_id=o.order_id, at_ms=o.time_ms, filled=o.qty,
            pnl=float(o.realized_pnl), commission=o.commission, commission_asset=o.commission_asset,
        )  # fmt: skip
        trades.event("exit_from_fills", symbol, f"{cid}: {o.side} {o.qty} @ {o.price} pnl {o.realized_pnl}")
    return found[-1][0].time_ms


class UnpricedCloses:
    """Trades closed with their PnL unknown (a time or reversal exit whose fill the stream never brought,
    an exit whose fills could not be read under a fault, a trade a new entry superseded before its close
    was heard), priced by later reconciliations: each such trade closed more than the grace ago, within
    ``PRICE_TRIES`` tries."""

    def __init__(
        self,
        *,
        settle: Callable[[PositionRecord], int | None],
        trades: LedgerTrades,
        grace_s: float,
        clock_ms: Callable[[], int],
    ) -> None:
        self._settle = settle
        self._trades = trades
        self._grace_ms = int(grace_s * 1000)
        self._clock_ms = clock_ms
        self._tries: dict[int, tuple[int, float]] = {}
        """Position id → (tries so far, next try at ``monotonic()``)."""

    def run(self, now: float) -> bool:
        """Try the trades that are due; True when a try is due within ``PRICE_SOON_S`` (run again soon)."""
        now_ms = self._clock_ms()
        window = {"closed_from_ms": now_ms - FILLS_WINDOW_MS, "closed_to_ms": now_ms - self._grace_ms}
        soon = False
        for position_id, trade in self._trades.unpriced_closes(**window):
            tries, due = self._tries.get(position_id, (0, 0.0))
            if tries >= PRICE_TRIES:
                continue
            if now >= due:
                tries, due = tries + 1, now + 2.0**tries
                self._tries[position_id] = (tries, due)
                if self._settle(trade) is not None and self._trades.price_close(position_id, trade):
                    continue
            soon |= tries < PRICE_TRIES and due - now <= PRICE_SOON_S
        return soon
