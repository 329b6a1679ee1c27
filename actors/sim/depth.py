"""The synthetic order book of one replayed symbol: a fixed ladder of levels around the last trade price.

* Best bid = the last price rounded down to the tick; best ask = best bid + one tick.
* ``LEVELS`` (1000, REST depth's largest ``limit``) levels each side at tick spacing, all with the same
  quantity: the symbol's median 1m volume / 100, rounded down to the quantity step, at least the minimum
  quantity. The book moves with the price; the levels stay.
* Update ids: every price update that moves the book advances ``u`` by the number of levels it changed
  (those crossed on one side plus those entering or leaving the ladder's far end on both); ``pu`` is the
  previous update's ``u`` and ``U = pu + 1``, so a client that syncs a REST snapshot (``lastUpdateId`` = the
  current ``u``) with the diff stream sees an unbroken sequence. The diff stream carries exactly the changed
  levels (quantity ``"0"`` removes one).
* The user's own resting orders are not shown in this book; market orders fill at the last price (with the
  configured slippage), as in the backtester, not at the book's touch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

import numpy as np

from ..domain.fills import InstrumentSpec

LEVELS = 1000

Level = list[str]
"""``[price, quantity]`` as Binance sends them."""


@dataclass(frozen=True, slots=True)
class BookMove:
    """One update of the book: the top before and after (in ticks) and its update ids."""

    before: int
    after: int
    first_update: int
    """``U``."""
    last_update: int
    """``u``."""
    previous_update: int
    """``pu``."""


def _changed(old_lo: int, new_lo: int) -> tuple[range, range]:
    """(entered, left): ladder positions (ticks) that joined and left a window of LEVELS ticks."""
    old_hi, new_hi = old_lo + LEVELS, new_lo + LEVELS
    if new_lo >= old_lo:
        return range(max(new_lo, old_hi), new_hi), range(old_lo, min(old_hi, new_lo))
    return range(new_lo, min(new_hi, old_lo)), range(max(old_lo, new_hi), old_hi)


class Depth:
    """The synthetic book of one symbol (see the module docstring)."""

    def __init__(self, spec: InstrumentSpec, volumes: np.ndarray, price: float) -> None:
        self.tick = spec.tick_size
        self._tick = float(spec.tick_size)
        self.places = Decimal(1).scaleb(-spec.price_precision)
        median = Decimal(repr(float(np.median(volumes)))) if len(volumes) else Decimal(0)
        qty = (median / 100 / spec.step_size).to_integral_value(ROUND_FLOOR) * spec.step_size
        self.qty = f"{max(qty, spec.min_qty):f}"
        self.bid = self._ticks(price)
        self.update_id = 1

    def _ticks(self, price: float) -> int:
        """``price`` in ticks, rounded down (prices on the tick, as replayed ones are, land exactly)."""
        ticks = price / self._tick
        nearest = round(ticks)
        return nearest if abs(ticks - nearest) < 1e-6 else math.floor(ticks)

    def price(self, ticks: int) -> str:
        return f"{(self.tick * ticks).quantize(self.places):f}"

    def move(self, price: float) -> BookMove | None:
        """Follow the last price; None when the book did not change."""
        bid = self._ticks(price)
        if bid == self.bid:
            return None
        crossed = min(abs(bid - self.bid), LEVELS)
        previous = self.update_id
        self.update_id += 4 * crossed  # each side: ``crossed`` levels enter and ``crossed`` leave
        move = BookMove(self.bid, bid, previous + 1, self.update_id, previous)
        self.bid = bid
        return move

    def top(self) -> tuple[str, str, str, str]:
        """(best bid, its quantity, best ask, its quantity)."""
        return self.price(self.bid), self.qty, self.price(self.bid + 1), self.qty

    def levels(self, limit: int) -> tuple[list[Level], list[Level]]:
        """The best ``limit`` bids (descending) and asks (ascending)."""
        count = min(limit, LEVELS)
        bids = [[self.price(self.bid - i), self.qty] for i in range(count)]
        asks = [[self.price(self.bid + 1 + i), self.qty] for i in range(count)]
        return bids, asks

    def diff(self, move: BookMove) -> tuple[list[Level], list[Level]]:
        """The levels ``move`` changed (bids descending, asks ascending; quantity "0" = removed)."""
        sides = []
        for lo_before, lo_after in (
            (move.before - LEVELS + 1, move.after - LEVELS + 1),
            (move.before + 1, move.after + 1),
        ):
            entered, left = _changed(lo_before, lo_after)
            changed = dict.fromkeys(entered, self.qty) | dict.fromkeys(left, "0")
            sides.append(changed)
        bids = [[self.price(t), q] for t, q in sorted(sides[0].items(), reverse=True)]
        asks = [[self.price(t), q] for t, q in sorted(sides[1].items())]
        return bids, asks
