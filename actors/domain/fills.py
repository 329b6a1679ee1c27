"""Fill rules shared by the backtester and the local exchange's matching engine.

One place decides how a market order fills, how a candle's price path is walked, which trigger fires
first, how a position is sized and rounded to the exchange's filters, and what a fill costs. The backtester
and ``actors.sim`` both call these functions, so a replay and a backtest cannot disagree about them.

Intra-candle path: a 1m candle only tells us open, high, low and close. We walk it as open → adverse
extreme → favourable extreme → close, *adverse to the open position* (a LONG sees the low first). So when
both the stop-loss and the take-profit lie inside one candle, the stop fills first: the pessimistic reading.
With no position the path follows the candle's colour (green: open → low → high → close).

Between two points of the path the price moves continuously (it passes every level in between); the path's
first point is reached by a jump (a gap), so a level already passed there is hit *at that point*. Every rule
below — stops and take-profits, resting LIMIT orders, trailing stops — reports where on the path it hits
as an index: 0 for the first point, k ≥ 1 for the move from point k − 1 to point k.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
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
    """Round ``value`` to a multiple of ``step`` (down unless ``up``), keeping the step's exponent.

    Exact: a value already on the step comes back unchanged, whichever way it would round."""
    units = (value / step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return (units * step).quantize(step)


def to_decimal(value: float | Decimal) -> Decimal:
    """Float → Decimal through its shortest repr, so 0.1 stays 0.1 rather than 0.1000000000000000055…

    Prices arrive as decimal strings (CSV, Binance JSON) and are carried as the float whose repr is that
    string, so this recovers the exact decimal the venue meant. A Decimal passes through unchanged."""
    return value if isinstance(value, Decimal) else Decimal(repr(value))


def take_profit_level(entry: float, stop: float, ratio: float) -> Decimal:
    """entry + (entry − stop) × ratio: the stop's distance × ratio beyond the entry, on the other side of
    it for either direction, in exact decimal arithmetic (not yet on the tick).

    In binary floating point 170.51 + 3 × (170.51 − 169.97) is 172.12999999999997, which the tick
    rounding then takes a whole tick lower; in decimals it is 172.13, and stays there."""
    e, s = to_decimal(entry), to_decimal(stop)
    return e + (e - s) * to_decimal(ratio)


def protective_price(price: float | Decimal, tick: Decimal, direction: Direction) -> Decimal:
    """Round a stop-loss or take-profit to the tick, toward the losing side of the position.

    A LONG's levels round down and a SHORT's round up: the stop is never tighter than the pivot the
    strategy chose, and the take-profit is never further away than the ratio promised. The rounding is
    applied to the exact decimal value, so a level already on the tick is placed where it is.
    """
    return round_to_step(to_decimal(price), tick, up=direction is Direction.SHORT)


def market_fill_price(reference: float, *, buy: bool, slippage_pct: float, tick: Decimal) -> float:
    """Price a market order fills at: ``reference`` moved against the taker by the slippage, on the tick.

    Computed in decimals (reference × (1 ± slippage/100)) and rounded against the taker; the float
    returned is the one whose repr is that on-tick decimal."""
    move = to_decimal(slippage_pct) / 100
    exact = to_decimal(reference) * (1 + move if buy else 1 - move)
    return float(round_to_step(exact, tick, up=buy))


def candle_path(
    open_: float, high: float, low: float, close: float, position: Direction | None
) -> tuple[float, float, float, float]:
    """The four-point price path walked inside one candle (see the module docstring)."""
    if position is Direction.LONG or (position is None and close >= open_):
        return (open_, low, high, close)
    return (open_, high, low, close)


def first_touch(path: tuple[float, ...], level: float, *, from_above: bool) -> tuple[int, float] | None:
    """Where the path first trades at ``level`` or beyond it: (path index, price) or None.

    ``from_above``: the level is reached by the price falling to it (at or below); else by rising to it.
    At the first point (index 0) a level already passed is hit at that point's price (a gap); later, a
    level inside the move from point k − 1 to point k is hit at exactly the level (index k).
    """
    first = path[0]
    if first <= level if from_above else first >= level:
        return 0, first
    for k in range(1, len(path)):
        lo, hi = sorted((path[k - 1], path[k]))
        if lo <= level <= hi:
            return k, level
    return None


def first_trigger(
    path: tuple[float, ...], *, direction: Direction, stop: float | None, take_profit: float | None
) -> tuple[ExitReason, float] | None:
    """First protective level the path reaches, and the price it triggers at.

    A level already passed at the path's first point (a gap through it) triggers at that point; a level
    crossed between two points triggers exactly at the level. When both are reached at the same index, the
    stop wins (the pessimistic reading).
    """
    long = direction is Direction.LONG
    hit_stop = None if stop is None else first_touch(path, stop, from_above=long)
    hit_take = None if take_profit is None else first_touch(path, take_profit, from_above=not long)
    if hit_stop is not None and (hit_take is None or hit_stop[0] <= hit_take[0]):
        return ExitReason.STOP_LOSS, hit_stop[1]
    if hit_take is not None:
        return ExitReason.TAKE_PROFIT, hit_take[1]
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


def best_bid(last: float, tick: Decimal) -> float:
    """The synthetic book's best bid: the last price rounded down to the tick (the ask: one tick up)."""
    return float(round_to_step(to_decimal(last), tick))


def marketable(limit: float, *, buy: bool, last: float, tick: Decimal) -> bool:
    """Whether a LIMIT order crosses the book on arrival: a BUY at or above the best ask, a SELL at or
    below the best bid (``best_bid``). A marketable order fills at once as a taker; else it rests."""
    bid = best_bid(last, tick)
    return limit >= bid + float(tick) if buy else limit <= bid


def taker_limit_price(last: float, *, buy: bool, limit: float, slippage_pct: float, tick: Decimal) -> float:
    """Price a marketable LIMIT order fills at: as a market order (``market_fill_price``), never beyond
    its limit."""
    price = market_fill_price(last, buy=buy, slippage_pct=slippage_pct, tick=tick)
    return min(price, limit) if buy else max(price, limit)


def limit_fill(path: tuple[float, ...], *, buy: bool, limit: float) -> tuple[int, float] | None:
    """Where a resting LIMIT order fills on the path: (path index, price) or None.

    A BUY fills once the price trades at or below its limit, a SELL at or above it (``first_touch``);
    it fills in full at its limit price — a maker fill: the resting order sets the price, also when the
    path gaps through it. There is no queue: touching the limit is filling it.
    """
    hit = first_touch(path, limit, from_above=buy)
    return None if hit is None else (hit[0], limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrailingStop:
    """A TRAILING_STOP_MARKET order's state between two stretches of price path (Binance's rule).

    A SELL (protecting a long) trails the highest price, a BUY (protecting a short) the lowest.
    """

    sell: bool
    callback_pct: float
    """The retracement from the extreme that triggers it, in percent (Binance: 0.1 to 10)."""
    activation: float | None = None
    """The price that arms it (SELL: the price reaching it or above; BUY: at it or below); None: armed."""
    extreme: float | None = None
    """Highest (SELL) / lowest (BUY) price since it was armed; None while unarmed."""

    @property
    def level(self) -> float | None:
        """The trigger level: extreme × (1 − callback) for a SELL, × (1 + callback) for a BUY."""
        return None if self.extreme is None else _trail_level(self.sell, self.callback_pct, self.extreme)


def _trail_level(sell: bool, callback_pct: float, extreme: float) -> float:
    # in decimals, as every level: 100 × (1 − 1 %) is 99, not 98.99999999999999 (a tick lower once filled)
    back = to_decimal(callback_pct) / 100
    return float(to_decimal(extreme) * (1 - back if sell else 1 + back))


def trailing_trigger(
    path: tuple[float, ...], stop: TrailingStop
) -> tuple[TrailingStop, tuple[int, float] | None]:
    """Walk a trailing stop along ``path``: (its state afterwards, (path index, trigger price) or None).

    Point by point: an unarmed stop arms at the first point at or beyond its activation price (a rise
    through it for a SELL, a fall for a BUY) and its extreme starts there; an armed stop triggers when a
    point lies at or beyond its level (a SELL: at or below extreme × (1 − callback)) — at exactly the level
    when the move from the previous point crossed it, at the point itself at index 0 (a gap) — and otherwise
    moves its extreme to the point when the point is a new extreme. The arming point never triggers (the
    price is at the extreme). Once triggered the returned state is the one at the trigger.
    """
    state = stop
    for k, point in enumerate(path):
        if state.extreme is None:
            reached = state.activation is None or (
                point >= state.activation if state.sell else point <= state.activation
            )
            if reached:
                state = TrailingStop(sell=state.sell, callback_pct=state.callback_pct, extreme=point)
            continue
        level = _trail_level(state.sell, state.callback_pct, state.extreme)
        if point <= level if state.sell else point >= level:
            return state, (k, point if k == 0 else level)
        if point > state.extreme if state.sell else point < state.extreme:
            state = TrailingStop(sell=state.sell, callback_pct=state.callback_pct, extreme=point)
    return state, None


_RANKS = {ExitReason.STOP_LOSS: (0, 0), ExitReason.TRAILING_STOP: (0, 2), ExitReason.TAKE_PROFIT: (1, 1)}
"""(rank, placement order) of a position's protective orders: stops (the stop-loss and the trailing stop)
before the take-profit at one spot, then the order placed first (stop, take-profit, trailing stop)."""


def first_exit(
    path: tuple[float, ...],
    *,
    direction: Direction,
    stop: float | None,
    take_profit: float | None,
    trailing: TrailingStop | None,
) -> tuple[tuple[ExitReason, float] | None, TrailingStop | None]:
    """The first of a position's protective orders the path reaches (reason, pre-slippage price), and the
    trailing stop's state after the path (None when there is none or it triggered).

    Each order says where it is hit — ``first_touch`` for the stop-loss and the take-profit,
    ``trailing_trigger`` for the trailing stop — and the earliest wins: the lowest path index, then the
    shortest way along that move from its previous point, then a stop before a take-profit, then the order
    placed first. The local exchange's matching orders its hits the same way, so this is what it fills.
    Without a trailing stop the result is ``first_trigger``'s.
    """
    long = direction is Direction.LONG
    hits: list[tuple[int, float, int, int, ExitReason, float]] = []
    after = trailing
    touches: list[tuple[ExitReason, tuple[int, float] | None]] = [
        (ExitReason.STOP_LOSS, None if stop is None else first_touch(path, stop, from_above=long)),
        (
            ExitReason.TAKE_PROFIT,
            None if take_profit is None else first_touch(path, take_profit, from_above=not long),
        ),
    ]
    if trailing is not None:
        after, hit = trailing_trigger(path, trailing)
        touches.append((ExitReason.TRAILING_STOP, hit))
    for reason, touch in touches:
        if touch is not None:
            index, price = touch
            distance = abs(price - path[index - 1]) if index else 0.0
            hits.append((index, distance, *_RANKS[reason], reason, price))
    if not hits:
        return None, after
    *_, reason, price = min(hits)
    return (reason, price), None


def notional_in_margin_asset(spec: InstrumentSpec, qty: Decimal, price: float) -> float:
    """Position value in the margin asset: USDT for USDⓈ-M, coins for COIN-M (contracts × size / price)."""
    if spec.contract_type is ContractType.COIN_M:
        return float(qty) * spec.contract_size / price
    return float(qty) * price


def fee(spec: InstrumentSpec, qty: Decimal, price: float, fee_pct: float) -> float:
    """Fee of one fill at ``fee_pct`` (the taker or the maker rate), in the margin asset, computed in
    decimals: 0.199 × 2502.42 × 0.04 % is 0.199195632, not 0.19919563200000002."""
    d = to_decimal(price)
    notional = qty * spec.contract_size / d if spec.contract_type is ContractType.COIN_M else qty * d
    return float(notional * to_decimal(fee_pct) / 100)


def pnl(spec: InstrumentSpec, direction: Direction, qty: Decimal, entry: float, exit_: float) -> float:
    """Realized PnL in the margin asset, computed in decimals; COIN-M PnL is inverse (in coins)."""
    e, x = to_decimal(entry), to_decimal(exit_)
    if spec.contract_type is ContractType.COIN_M:
        return float(direction.sign * qty * spec.contract_size * (1 / e - 1 / x))
    return float(direction.sign * qty * (x - e))


MONEY_STEP = Decimal("0.00000001")
"""Balances, PnL and fees are booked to 8 decimal places (as Binance reports them)."""


def charged(amount: float | Decimal) -> Decimal:
    """An amount of money as the exchange books it: to ``MONEY_STEP``, half to even."""
    return to_decimal(amount).quantize(MONEY_STEP, rounding=ROUND_HALF_EVEN)


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
    # In decimals, with one division last, so a size that lands exactly on a step (500 USDT / 2,500 =
    # 0.2) is not taken a step lower by a quotient just under it (0.19999999999999998).
    entry, stop = to_decimal(req.entry), to_decimal(req.stop)
    balance, size, lev = to_decimal(req.balance), Decimal(spec.contract_size), Decimal(req.leverage)

    def affordable(margin: Decimal) -> Decimal:
        """Units ``margin`` buys at ``leverage``: notional / entry (USDⓈ-M), or in contracts (COIN-M)."""
        return margin * lev * entry / size if coin_m else margin * lev / entry

    if req.dynamic:
        if (entry - stop) * req.direction.sign <= 0:
            return SizingError.INVALID_RISK
        budget = balance * to_decimal(req.risk_percent) / 100
        # loss per unit at the stop: |entry − stop| (USDⓈ-M), size × |1/stop − 1/entry| coins (COIN-M)
        at_risk = budget * stop * entry / (size * abs(entry - stop)) if coin_m else budget / abs(entry - stop)
        raw = min(at_risk, affordable(balance))
    else:
        raw = affordable(to_decimal(req.fixed_margin))
    qty = round_to_step(raw, spec.market_step_size)
    if qty < spec.market_min_qty or qty <= 0:
        return SizingError.BELOW_MIN_QTY
    qty = min(qty, spec.market_max_qty)
    if not coin_m and entry * qty < spec.min_notional:
        return SizingError.BELOW_MIN_NOTIONAL
    if (qty * size > balance * lev * entry) if coin_m else (qty * entry > balance * lev):
        return SizingError.INSUFFICIENT_BALANCE
    return qty
