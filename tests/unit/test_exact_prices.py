"""Prices and quantities are exact decimals: a level or size already on its tick or step never moves.

Property tests over Binance's tick and step sizes: whatever the binary float a value is carried in, the
rounding toward the losing side (levels), against the taker (fills) or down (sizes) is applied to the
exact decimal, so a value on the grid comes back unchanged and one off it moves by less than one unit.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from nancemakina.actors.domain.fills import (
    InstrumentSpec,
    SizingRequest,
    market_fill_price,
    protective_price,
    round_to_step,
    size_position,
    take_profit_level,
)
from nancemakina.actors.domain.model import ContractType, Direction
from nancemakina.actors.domain.strategy import Candidate, StrategyParams, judge

TICKS = [Decimal(t) for t in ("1", "0.5", "0.1", "0.05", "0.01", "0.001", "0.0001", "0.00001", "0.000001")]
ticks = st.sampled_from(TICKS)
units = st.integers(min_value=1, max_value=10**9)
directions = st.sampled_from(list(Direction))


def spec(tick: Decimal, step: Decimal) -> InstrumentSpec:
    return InstrumentSpec(
        symbol="TESTUSDT", contract_type=ContractType.USDT_M, tick_size=tick, step_size=step,
        min_qty=step, market_step_size=step, market_min_qty=step, market_max_qty=Decimal(10**9),
        min_notional=Decimal(0), contract_size=1, base_asset="TEST", quote_asset="USDT",
        margin_asset="USDT", price_precision=8, quantity_precision=8,
    )  # fmt: skip


@given(tick=ticks, n=units, direction=directions)
def test_a_level_on_the_tick_is_placed_where_it_is(tick: Decimal, n: int, direction: Direction) -> None:
    level = n * tick
    assert protective_price(float(level), tick, direction) == level
    assert protective_price(level, tick, direction) == level


@given(tick=ticks, n=units, direction=directions, fraction=st.integers(min_value=1, max_value=9))
def test_a_level_off_the_tick_moves_less_than_a_tick_toward_the_losing_side(
    tick: Decimal, n: int, direction: Direction, fraction: int
) -> None:
    level = n * tick + tick * fraction / 10
    placed = protective_price(level, tick, direction)
    assert Decimal(0) < (level - placed) * direction.sign < tick


@given(
    tick=ticks,
    entry=units,
    distance=st.integers(min_value=1, max_value=10**6),
    ratio=st.integers(min_value=1, max_value=10),
    direction=directions,
)
def test_a_take_profit_on_the_tick_is_decided_and_placed_exactly(
    tick: Decimal, entry: int, distance: int, ratio: int, direction: Direction
) -> None:
    entry_price = (entry + distance) * tick
    stop = entry_price - direction.sign * distance * tick
    exact = entry_price + direction.sign * distance * tick * ratio
    decision = judge(
        StrategyParams(tp_sl_ratio=float(ratio)),
        Candidate(direction=direction, signal_open_time_ms=0, pivot=float(stop), volume=1.0,
                  volume_sma=None, bb_width_pct=None),
        symbol="TESTUSDT", timeframe="1m", decided_open_time_ms=0, entry=float(entry_price),
        confirmed=True, position_open=False, open_positions=0, last_taken_signal_ms=None,
    )  # fmt: skip
    assert decision.take_profit is not None
    assert take_profit_level(float(entry_price), float(stop), float(ratio)) == exact
    assert protective_price(decision.take_profit, tick, direction) == exact


@given(tick=ticks, n=units, buy=st.booleans())
def test_a_market_fill_without_slippage_on_the_tick_stays(tick: Decimal, n: int, buy: bool) -> None:
    price = n * tick
    assert market_fill_price(float(price), buy=buy, slippage_pct=0.0, tick=tick) == float(price)


@given(tick=ticks, n=units, buy=st.booleans(), bps=st.integers(min_value=1, max_value=100))
def test_a_market_fill_moves_against_the_taker_by_at_most_a_tick_past_the_slippage(
    tick: Decimal, n: int, buy: bool, bps: int
) -> None:
    reference = n * tick
    exact = reference * (1 + Decimal(bps) / 10_000 * (1 if buy else -1))
    fill = Decimal(repr(market_fill_price(float(reference), buy=buy, slippage_pct=bps / 100, tick=tick)))
    assert fill == round_to_step(exact, tick, up=buy)
    assert Decimal(0) <= (fill - exact) * (1 if buy else -1) < tick


@given(
    step=st.sampled_from([Decimal(s) for s in ("1", "0.1", "0.01", "0.001", "0.0001")]),
    qty=st.integers(min_value=1, max_value=10**6),
    entry_units=st.integers(min_value=1, max_value=10**6),
    leverage=st.integers(min_value=1, max_value=125),
)
def test_a_size_exactly_on_the_step_is_not_taken_a_step_lower(
    step: Decimal, qty: int, entry_units: int, leverage: int
) -> None:
    entry = entry_units * Decimal("0.01")
    size = qty * step
    margin = size * entry / leverage  # exactly what `size` needs at `leverage`
    request = SizingRequest(
        spec=spec(Decimal("0.01"), step), direction=Direction.LONG, entry=float(entry),
        stop=float(entry / 2), balance=float(margin * 2), leverage=leverage,
        fixed_margin=float(margin), dynamic=False, risk_percent=1.0,
    )  # fmt: skip
    sized = size_position(request)
    if Decimal(repr(float(margin))) == margin:  # the margin itself survives the float carrying it
        assert sized == size
