"""How a position the exchange shows flat was closed, read from the account's fills (``userTrades``).

A reconciliation that closes a flat position in the ledger (``reconciled_flat``) has no fill of the user
stream to go by: the stream was down, the bot was stopped when the stop fired, or the fill never came in the
grace it had. The account's fills still say what happened: the closing-side fills after the position opened,
in time order, until they add up to its quantity, give its exit price (their average, in decimals), its
realised PnL and its commissions, exactly as the exchange booked them. Fills that do not add up to the
quantity settle nothing: the trade keeps its exit unknown rather than a part of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from ...exchange.types import AccountTrade
from .ledger_records import PositionRecord
from .reconciliation import closing_side

FILLS_WINDOW_MS = 7 * 24 * 3_600_000
"""``userTrades`` answers at most seven days from its ``startTime``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """The exit of a flat position, from the account's fills."""

    exit_price: float
    """Average price of the closing fills (exact quotient of their decimals)."""
    realized_pnl: float
    commission: Decimal
    """Commissions of the closing fills (the entry's is the ledger's own)."""
    closed_at_ms: int
    """Time of the last closing fill."""
    fills: int


def fills_start_ms(held: PositionRecord, now_ms: int) -> int:
    """Where to read the fills from: the opening, or as far back as ``userTrades`` reaches."""
    return max(held.opened_at_ms, now_ms - FILLS_WINDOW_MS + 60_000)


def settle_flat(held: PositionRecord, fills: Iterable[AccountTrade]) -> Settlement | None:
    """The exit of ``held`` from ``fills`` of its symbol, or None when they do not account for all of it."""
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
    if not taken or qty < held.qty:
        return None
    notional = sum((f.price * f.qty for f in taken), Decimal(0))
    return Settlement(
        exit_price=float(notional / qty),
        realized_pnl=float(sum((f.realized_pnl for f in taken), Decimal(0))),
        commission=sum((f.commission for f in taken), Decimal(0)),
        closed_at_ms=taken[-1].time_ms,
        fills=len(taken),
    )
