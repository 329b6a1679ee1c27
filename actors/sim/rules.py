"""A symbol's order rules from its exchangeInfo filters, checked as Binance checks them.

``PRICE_FILTER`` (min/max price, tick), ``LOT_SIZE`` (LIMIT quantities) and ``MARKET_LOT_SIZE`` (MARKET
quantities), ``PERCENT_PRICE`` (a LIMIT price against the mark price), ``MIN_NOTIONAL`` (USDⓈ-M),
``MAX_NUM_ORDERS`` (open orders of a symbol, algo orders included) and ``MAX_NUM_ALGO_ORDERS`` (open
algo orders of a symbol). A filter the entry lacks is not enforced. Besides these, the account may hold at
most ``MAX_OPEN_CONDITIONALS`` open conditional orders over all symbols (Binance, since 2025-12-29).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import SimError

MAX_OPEN_CONDITIONALS = 200


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolRules:
    """The filters of one symbol (zero / None = not enforced)."""

    min_price: Decimal
    max_price: Decimal
    tick: Decimal
    price_precision: int
    quantity_precision: int
    lot: tuple[Decimal, Decimal, Decimal]
    """LOT_SIZE (min, max, step)."""
    market_lot: tuple[Decimal, Decimal, Decimal]
    """MARKET_LOT_SIZE (min, max, step)."""
    percent_up: Decimal | None
    percent_down: Decimal | None
    max_orders: int | None
    max_algo_orders: int | None

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> SymbolRules:
        filters = {f["filterType"]: f for f in entry.get("filters", ())}
        price = filters.get("PRICE_FILTER", {})
        lot = filters.get("LOT_SIZE", {})
        market = filters.get("MARKET_LOT_SIZE", lot)
        percent = filters.get("PERCENT_PRICE", {})

        def trio(f: Mapping[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
            return Decimal(f.get("minQty", 0)), Decimal(f.get("maxQty", 0)), Decimal(f.get("stepSize", 0))

        def limit(name: str) -> int | None:
            found = filters.get(name)
            return None if found is None else int(found["limit"])

        return cls(
            min_price=Decimal(price.get("minPrice", 0)),
            max_price=Decimal(price.get("maxPrice", 0)),
            tick=Decimal(price.get("tickSize", 0)),
            price_precision=int(entry.get("pricePrecision", 8)),
            quantity_precision=int(entry.get("quantityPrecision", 8)),
            lot=trio(lot),
            market_lot=trio(market),
            percent_up=Decimal(percent["multiplierUp"]) if "multiplierUp" in percent else None,
            percent_down=Decimal(percent["multiplierDown"]) if "multiplierDown" in percent else None,
            max_orders=limit("MAX_NUM_ORDERS"),
            max_algo_orders=limit("MAX_NUM_ALGO_ORDERS"),
        )

    def check_price(self, value: Decimal, *, stop: bool = False) -> Decimal:
        """PRICE_FILTER on a price (``stop``: a trigger price): positive, within [min, max], on the tick."""
        if value <= 0:
            raise (
                SimError(-4006, "Stop price less than zero.")
                if stop
                else SimError(-4013, "Price less than min price.")
            )
        if _decimals(value) > self.price_precision:
            raise SimError(-1111, "Precision is over the maximum defined for this asset.")
        if self.min_price and value < self.min_price:
            raise SimError(-4013, "Price less than min price.")
        if self.max_price and value > self.max_price:
            raise SimError(-4002, "Price greater than max price.")
        if self.tick and (value - self.min_price) % self.tick:
            raise SimError(-4014, "Price not increased by tick size.")
        return value

    def check_percent(self, value: Decimal, *, buy: bool, mark: float) -> None:
        """PERCENT_PRICE: a BUY at most mark × multiplierUp, a SELL at least mark × multiplierDown."""
        reference = Decimal(repr(mark))
        if buy and self.percent_up is not None and value > reference * self.percent_up:
            raise SimError(-4016, "Price is higher than mark price multiplier cap.")
        if not buy and self.percent_down is not None and value < reference * self.percent_down:
            raise SimError(-4024, "Price is lower than mark price multiplier floor.")

    def check_quantity(self, value: Decimal, *, market: bool) -> Decimal:
        """LOT_SIZE (MARKET_LOT_SIZE for market orders): positive, within [min, max], on the step."""
        low, high, step = self.market_lot if market else self.lot
        if _decimals(value) > self.quantity_precision or (step and value % step):
            raise SimError(-1111, "Precision is over the maximum defined for this asset.")
        if value <= 0:
            raise SimError(-4003, "Quantity less than or equal to zero.")
        if low and value < low:
            raise SimError(-4003, f"Quantity less than minimum quantity {low.normalize():f}.")
        if high and value > high:
            raise SimError(-4005, "Quantity greater than max quantity.")
        return value
