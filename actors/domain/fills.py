"""Fill rules shared by the backtester and the local exchange's matching engine.

One place decides how a market order fills, how a candle's price path is walked, which trigger fires
first, how a position is sized and rounded to the exchange's filters, and what a fill costs. The backtester
and ``actors.sim`` both call these functions, so a replay and a backtest cannot disagree about them.

Intra-candle path: a 1m candle only tells us open, high, low and close. We walk it as open → adverse
extreme → favourable extreme → close, *adverse to the open position* (a LONG sees the low first). So when
both the stop-loss and the take-profit lie inside one candle, the stop fills first: the pessimistic reading.
With no position the path follows the candle's colour (green: open → low → high → close).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from .model import ContractType, Direction


class ExitReason(StrEnum):
    """Why a position closed."""

    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    TIME_EXIT = "time_exit"
    """Closed at market at the close of the N-th signal candle after the entry candle."""
    REVERSAL = "reversal"
    """Closed at market at the close of a crossover against the position."""
    END_OF_DATA = "end_of_data"
    MANUAL = "manual"
    LIQUIDATION = "liquidation"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentSpec:
    """Exchange filters of one symbol (parsed from exchangeInfo at the venue boundary)."""

    symbol: str
    contract_type: ContractType
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    market_step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    """USDⓈ-M MIN_NOTIONAL.notional in USDT; zero for COIN-M (no such filter)."""
    contract_size: int
    """COIN-M contract value in USD; 1 for USDⓈ-M."""
    base_asset: str
    quote_asset: str
    margin_asset: str
    price_precision: int
    quantity_precision: int


def round_to_step(value: Decimal, step: Decimal, *, up: bool = False) -> Decimal:
    """Round ``value`` to a multiple of ``step`` (down unless ``up``), keeping the step's exponent."""
    units = (value / step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return (units * step).quantize(step)


def to_decimal(value: float) -> Decimal:
    """Float → Decimal through its shortest repr, so 0.1 stays 0.1 rather than 0.1000000000000000055…"""
    return Decimal(repr(value))


def protective_price(price: float, tick: Decimal, direction: Direction) -> Decimal:
    """Round a stop-loss or take-profit to the tick, toward the losing side of the position.

    A LONG's levels round down and a SHORT's round up: the stop is never tighter than the pivot the
    strategy chose, and the take-profit is never further away than the ratio promised.
    """
    return round_to_step(to_decimal(price), tick, up=direction is Direction.SHORT)


def market_fill_price(reference: float, *, buy: bool, slippage_pct: float, tick: Decimal) -> float:
    """Price a market order fills at: ``reference`` moved against the taker by the slippage, on the tick."""
    factor = 1.0 + slippage_pct / 100.0 if buy else 1.0 - slippage_pct / 100.0
    return float(round_to_step(to_decimal(reference * factor), tick, up=buy))


def candle_path(
    open_: float, high: float, low: float, close: float, position: Direction | None
) -> tuple[float, float, float, float]:
    """The four-point price path walked inside one candle (see the module docstring)."""
    if position is Direction.LONG or (position is None and close >= open_):
        return (open_, low, high, close)
    return (open_, high, low, close)


def first_trigger(
    path: tuple[float, ...], *, direction: Direction, stop: float | None, take_profit: float | None
) -> tuple[ExitReason, float] | None:
    """First protective level the path reaches, and the price it triggers at.

    A level already passed at the path's first point (a gap through it) triggers at that point; a level
    crossed between two points triggers exactly at the level.
    """
    first = path[0]
    long = direction is Direction.LONG
    if stop is not None and (first <= stop if long else first >= stop):
        return ExitReason.STOP_LOSS, first
    if take_profit is not None and (first >= take_profit if long else first <= take_profit):
        return ExitReason.TAKE_PROFIT, first
    previous = first
    for point in path[1:]:
        lo, hi = (previous, point) if previous <= point else (point, previous)
        if stop is not None and lo <= stop <= hi:
            return ExitReason.STOP_LOSS, stop
        if take_profit is not None and lo <= take_profit <= hi:
            return ExitReason.TAKE_PROFIT, take_profit
        previous = point
    return None


def exit_on_candle(
    *,
    direction: Direction,
    stop: float,
    take_profit: float | None,
    open_: float,
    high: float,
    low: float,
    close: float,
    trailing: TrailingStop | None = None,
) -> tuple[ExitReason, float] | None:
    """Whether a candle closes the position and at which (pre-slippage) price (``first_exit`` on its path)."""
    hit, _ = first_exit(
        candle_path(open_, high, low, close, direction),
        direction=direction,
        stop=stop,
        take_profit=take_profit,
        trailing=trailing,
    )
    return hit


@dataclass(frozen=True, slots=True, kw_only=True)
class TrailingStop:
    """A TRAILING_STOP_MARKET protecting a position (Binance's rule), as it stands between two price points.

    It protects ``direction``'s position: a LONG's is a SELL that trails the highest price since it was
    placed, a SHORT's a BUY that trails the lowest. It is *armed* once that extreme has reached
    ``activation`` (at or beyond it, in the position's favour), or at once without one; armed, its level is
    the extreme moved back by ``callback_pct`` percent — ``extreme × (1 − cb/100)`` for a LONG, ``× (1 +
    cb/100)`` for a SHORT — rounded to the tick toward the losing side (down for a LONG, up for a SHORT,
    ``protective_price``): prices trade on the tick, so the first price at or beyond the exact level is that
    rounded one. Place it with ``TrailingStop.placed``; ``first_exit`` walks it along a candle.
    """

    direction: Direction
    callback_pct: float
    """The retracement that triggers it, in percent (Binance ``callbackRate``: 0.1 to 10)."""
    activation: float | None
    """``activatePrice``; None: armed from placement (Binance: "default as the latest price")."""
    tick: Decimal
    extreme: float
    """Highest (LONG) / lowest (SHORT) price since placement; starts at the price it was placed at."""
    armed: bool

    @classmethod
    def placed(
        cls,
        direction: Direction,
        *,
        callback_pct: float,
        activation: float | None,
        price: float,
        tick: Decimal,
    ) -> TrailingStop:
        """Placed when the price was ``price`` (an activation already reached there arms it at once)."""
        armed = activation is None or _beyond(direction, price, activation)
        return cls(
            direction=direction,
            callback_pct=callback_pct,
            activation=activation,
            tick=tick,
            extreme=price,
            armed=armed,
        )

    @property
    def level(self) -> float | None:
        """The trigger level while armed (see the class docstring), else None."""
        if not self.armed:
            return None
        long = self.direction is Direction.LONG
        factor = 1.0 - self.callback_pct / 100.0 if long else 1.0 + self.callback_pct / 100.0
        return float(protective_price(self.extreme * factor, self.tick, self.direction))

    def seen(self, price: float) -> TrailingStop:
        """The price passed through ``price`` without triggering it: move the extreme, arm when reached."""
        extreme = price if _beyond(self.direction, price, self.extreme) else self.extreme
        armed = self.armed or self.activation is None or _beyond(self.direction, extreme, self.activation)
        if extreme == self.extreme and armed == self.armed:
            return self
        return TrailingStop(
            direction=self.direction,
            callback_pct=self.callback_pct,
            activation=self.activation,
            tick=self.tick,
            extreme=extreme,
            armed=armed,
        )


def _beyond(direction: Direction, price: float, level: float) -> bool:
    """``price`` is at or beyond ``level`` in the position's favour (LONG: ≥, SHORT: ≤)."""
    return price >= level if direction is Direction.LONG else price <= level


_PRIORITY = {ExitReason.STOP_LOSS: 0, ExitReason.TRAILING_STOP: 1, ExitReason.TAKE_PROFIT: 2}


def touch(path: tuple[float, ...], k: int, level: float, *, falling: bool) -> float | None:
    """Whether point ``k`` of ``path`` reaches ``level`` and at which price: at the first point, a level
    already passed (at or below it when ``falling``, at or above otherwise) is reached at that point (a
    gap); later, a move from point k − 1 in the ``falling`` (or rising) direction that crosses the level
    reaches it at exactly the level."""
    point = path[k]
    if k == 0:
        return point if (point <= level if falling else point >= level) else None
    previous = path[k - 1]
    if falling:
        return level if point <= level <= previous else None
    return level if previous <= level <= point else None


def first_exit(
    path: tuple[float, ...],
    *,
    direction: Direction,
    stop: float | None,
    take_profit: float | None,
    trailing: TrailingStop | None,
) -> tuple[tuple[ExitReason, float] | None, TrailingStop | None]:
    """The first protective order the path reaches (reason, pre-slippage price), and the trailing stop's
    state after the path (None when it triggered or there is none).

    Point by point: every order is checked against the point with its level as it stood *before* the point
    (``touch``); if several are reached at one point, the one nearest the previous point is reached first
    (at the first point, all at that price); a tie goes to the stop-loss, then the trailing stop, then the
    take-profit. A point that triggers nothing moves the trailing stop (``TrailingStop.seen``). A LONG's
    stop and trailing stop are reached by falling prices and its take-profit by a rising one (a SHORT's the
    other way round), so a trailing stop never triggers while the price moves in the position's favour.
    Without a trailing stop this is exactly ``first_trigger``.
    """
    long = direction is Direction.LONG
    state = trailing
    for k in range(len(path)):
        hits: list[tuple[float, int, ExitReason, float]] = []
        levels = (
            (ExitReason.STOP_LOSS, stop, long),
            (ExitReason.TRAILING_STOP, None if state is None else state.level, long),
            (ExitReason.TAKE_PROFIT, take_profit, not long),
        )
        for reason, level, falling in levels:
            if level is None:
                continue
            price = touch(path, k, level, falling=falling)
            if price is not None:
                distance = abs(price - path[k - 1]) if k else 0.0
                hits.append((distance, _PRIORITY[reason], reason, price))
        if hits:
            _, _, reason, price = min(hits)
            return (reason, price), None
        if state is not None:
            state = state.seen(path[k])
    return None, state


def notional_in_margin_asset(spec: InstrumentSpec, qty: Decimal, price: float) -> float:
    """Position value in the margin asset: USDT for USDⓈ-M, coins for COIN-M (contracts × size / price)."""
    if spec.contract_type is ContractType.COIN_M:
        return float(qty) * spec.contract_size / price
    return float(qty) * price


def fee(spec: InstrumentSpec, qty: Decimal, price: float, fee_pct: float) -> float:
    """Taker fee of one fill, in the margin asset."""
    return notional_in_margin_asset(spec, qty, price) * fee_pct / 100.0


def pnl(spec: InstrumentSpec, direction: Direction, qty: Decimal, entry: float, exit_: float) -> float:
    """Realized PnL in the margin asset; COIN-M PnL is inverse (in coins)."""
    if spec.contract_type is ContractType.COIN_M:
        return direction.sign * float(qty) * spec.contract_size * (1.0 / entry - 1.0 / exit_)
    return direction.sign * float(qty) * (exit_ - entry)


def initial_margin(spec: InstrumentSpec, qty: Decimal, price: float, leverage: int) -> float:
    """Margin a position of ``qty`` locks at ``leverage``, in the margin asset."""
    return notional_in_margin_asset(spec, qty, price) / leverage


class SizingError(StrEnum):
    """Why no order can be sized (the order would be rejected by the exchange's filters)."""

    BELOW_MIN_QTY = "below_min_qty"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    INVALID_RISK = "invalid_risk"


@dataclass(frozen=True, slots=True, kw_only=True)
class SizingRequest:
    """Inputs to position sizing."""

    spec: InstrumentSpec
    direction: Direction
    entry: float
    stop: float
    balance: float
    """Available balance in the margin asset (USDT, or the coin for COIN-M)."""
    leverage: int
    fixed_margin: float
    """Margin per trade in the margin asset (``margin_usdt`` / ``margin_coin``) for fixed sizing."""
    dynamic: bool
    risk_percent: float
    """With dynamic sizing: the share of the balance lost if the stop fills."""


def size_position(req: SizingRequest) -> Decimal | SizingError:
    """Order quantity (base units for USDⓈ-M, contracts for COIN-M) rounded down to the market step.

    Fixed sizing spends ``fixed_margin`` at ``leverage``. Risk-% sizing loses ``risk_percent`` of the
    balance at the stop, capped by what the balance can margin at ``leverage``.
    """
    spec = req.spec
    coin_m = spec.contract_type is ContractType.COIN_M
    if req.dynamic:
        if (req.entry - req.stop) * req.direction.sign <= 0:
            return SizingError.INVALID_RISK
        budget = req.balance * req.risk_percent / 100.0
        if coin_m:
            per_unit = spec.contract_size * abs(1.0 / req.stop - 1.0 / req.entry)
        else:
            per_unit = abs(req.entry - req.stop)
        raw = budget / per_unit
        max_margin = req.balance
    else:
        max_margin = req.fixed_margin
        raw = 0.0
    per_unit_margin = (spec.contract_size / req.entry if coin_m else req.entry) / req.leverage
    affordable = max_margin / per_unit_margin
    raw = affordable if not req.dynamic else min(raw, affordable)
    qty = round_to_step(to_decimal(raw), spec.market_step_size)
    if qty < spec.market_min_qty or qty <= 0:
        return SizingError.BELOW_MIN_QTY
    qty = min(qty, spec.market_max_qty)
    if not coin_m and to_decimal(req.entry) * qty < spec.min_notional:
        return SizingError.BELOW_MIN_NOTIONAL
    if initial_margin(spec, qty, req.entry, req.leverage) > req.balance:
        return SizingError.INSUFFICIENT_BALANCE
    return qty
