"""Shared fill rules: rounding, intra-candle path, stop-first, sizing and PnL for USDⓈ-M and COIN-M."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nancemakina.actors.domain.fills import (
    ExitReason,
    SizingError,
    SizingRequest,
    candle_path,
    exit_on_candle,
    fee,
    first_trigger,
    market_fill_price,
    pnl,
    protective_price,
    round_to_step,
    size_position,
)
from nancemakina.actors.domain.model import ContractType, Direction
from nancemakina.actors.exchange.instruments import spec_for

BTC = spec_for("BTCUSDT", ContractType.USDT_M)  # tick 0.1, step 0.001, min notional 10
BTC_COIN = spec_for("BTCUSD_PERP", ContractType.COIN_M)  # tick 0.1, 1 contract = 100 USD


def test_round_to_step_down_and_up() -> None:
    assert round_to_step(Decimal("0.123456"), Decimal("0.001")) == Decimal("0.123")
    assert round_to_step(Decimal("0.123456"), Decimal("0.001"), up=True) == Decimal("0.124")
    assert round_to_step(Decimal("105432.17"), Decimal("0.1")) == Decimal("105432.1")
    assert str(round_to_step(Decimal(7), Decimal("0.001"))) == "7.000"


def test_protective_prices_round_toward_the_losing_side() -> None:
    assert protective_price(100.07, Decimal("0.1"), Direction.LONG) == Decimal("100.0")
    assert protective_price(100.01, Decimal("0.1"), Direction.SHORT) == Decimal("100.1")
    assert protective_price(100.1, Decimal("0.1"), Direction.LONG) == Decimal("100.1")  # on tick: unchanged


def test_market_fill_moves_against_the_taker_and_lands_on_tick() -> None:
    assert market_fill_price(100_000.0, buy=True, slippage_pct=0.01, tick=Decimal("0.1")) == 100_010.0
    assert market_fill_price(100_000.0, buy=False, slippage_pct=0.01, tick=Decimal("0.1")) == 99_990.0
    assert market_fill_price(100.03, buy=True, slippage_pct=0.0, tick=Decimal("0.1")) == 100.1


def test_candle_path_is_adverse_to_the_position() -> None:
    assert candle_path(10, 12, 8, 11, Direction.LONG) == (10, 8, 12, 11)
    assert candle_path(10, 12, 8, 11, Direction.SHORT) == (10, 12, 8, 11)
    assert candle_path(10, 12, 8, 11, None) == (10, 8, 12, 11)  # green
    assert candle_path(10, 12, 8, 9, None) == (10, 12, 8, 9)  # red


@pytest.mark.parametrize("direction", [Direction.LONG, Direction.SHORT])
def test_stop_fills_first_when_both_levels_are_inside_one_candle(direction: Direction) -> None:
    stop, tp = (95.0, 105.0) if direction is Direction.LONG else (105.0, 95.0)
    # a red candle for LONG and a green one for SHORT: the colour would favour the take-profit.
    close = 99.0 if direction is Direction.LONG else 101.0
    hit = exit_on_candle(
        direction=direction, stop=stop, take_profit=tp, open_=100.0, high=106.0, low=94.0, close=close
    )
    assert hit == (ExitReason.STOP_LOSS, stop)


def test_take_profit_only() -> None:
    hit = exit_on_candle(
        direction=Direction.LONG, stop=90.0, take_profit=105.0, open_=100.0, high=106.0, low=99.0, close=104.0
    )
    assert hit == (ExitReason.TAKE_PROFIT, 105.0)
    assert (
        exit_on_candle(
            direction=Direction.LONG, stop=90.0, take_profit=110.0, open_=100, high=106, low=99, close=104
        )
        is None
    )


def test_gap_through_stop_fills_at_the_open() -> None:
    hit = exit_on_candle(
        direction=Direction.LONG, stop=95.0, take_profit=120.0, open_=93.0, high=96.0, low=92.0, close=94.0
    )
    assert hit == (ExitReason.STOP_LOSS, 93.0)
    hit = exit_on_candle(
        direction=Direction.SHORT, stop=105.0, take_profit=80.0, open_=78.0, high=79.0, low=77.0, close=78
    )
    assert hit == (ExitReason.TAKE_PROFIT, 78.0)


def test_first_trigger_on_a_longer_path() -> None:
    path = (100.0, 101.0, 99.5, 103.0)
    assert first_trigger(path, direction=Direction.LONG, stop=99.0, take_profit=102.0) == (
        ExitReason.TAKE_PROFIT,
        102.0,
    )


def _req(**kw: object) -> SizingRequest:
    base: dict[str, object] = {
        "spec": BTC,
        "direction": Direction.LONG,
        "entry": 100_000.0,
        "stop": 99_000.0,
        "balance": 10_000.0,
        "leverage": 10,
        "fixed_margin": 50.0,
        "dynamic": False,
        "risk_percent": 1.0,
    }
    base.update(kw)
    return SizingRequest(**base)  # type: ignore[arg-type]


def test_fixed_margin_sizing_usdt_m() -> None:
    # 50 USDT × 10 = 500 USDT notional at 100k → 0.005 BTC
    assert size_position(_req()) == Decimal("0.005")
    # 0.0055 → rounded down to the 0.001 step
    assert size_position(_req(fixed_margin=55.0)) == Decimal("0.005")


def test_risk_percent_sizing_usdt_m() -> None:
    # risk 1% of 10,000 = 100 USDT over a 1,000 USDT stop distance → 0.1 BTC (margin 1,000 at 10x: affordable)
    assert size_position(_req(dynamic=True)) == Decimal("0.100")
    # capped by what the balance can margin: 1,000 USDT × 10 / 100k = 0.1 → with 500 balance, 0.05
    assert size_position(_req(dynamic=True, balance=500.0, risk_percent=20.0)) == Decimal("0.050")


def test_sizing_rejections() -> None:
    assert size_position(_req(fixed_margin=0.5)) is SizingError.BELOW_MIN_QTY  # 0.00005 BTC
    assert size_position(_req(fixed_margin=0.9, entry=1_000.0, stop=900.0)) is SizingError.BELOW_MIN_NOTIONAL
    assert size_position(_req(fixed_margin=500.0, balance=100.0)) is SizingError.INSUFFICIENT_BALANCE
    assert size_position(_req(dynamic=True, stop=101_000.0)) is SizingError.INVALID_RISK


def test_fixed_margin_sizing_coin_m_counts_contracts() -> None:
    # 0.01 BTC × 10 = 0.1 BTC notional at 100k USD = 10,000 USD = 100 contracts of 100 USD
    req = _req(spec=BTC_COIN, fixed_margin=0.01, balance=1.0)
    assert size_position(req) == Decimal(100)


def test_risk_percent_sizing_coin_m_is_inverse() -> None:
    # loss per contract at the stop: 100 × (1/99,000 − 1/100,000) BTC; risk 1% of 1 BTC = 0.01 BTC
    req = _req(spec=BTC_COIN, dynamic=True, balance=1.0)
    per_contract = 100 * (1 / 99_000 - 1 / 100_000)
    assert size_position(req) == Decimal(int(0.01 / per_contract))


def test_pnl_and_fees() -> None:
    assert pnl(BTC, Direction.LONG, Decimal("0.1"), 100_000.0, 101_000.0) == pytest.approx(100.0)
    assert pnl(BTC, Direction.SHORT, Decimal("0.1"), 100_000.0, 101_000.0) == pytest.approx(-100.0)
    # inverse: 100 contracts × 100 USD × (1/100k − 1/110k) BTC
    assert pnl(BTC_COIN, Direction.LONG, Decimal(100), 100_000.0, 110_000.0) == pytest.approx(
        10_000 * (1 / 100_000 - 1 / 110_000)
    )
    assert fee(BTC, Decimal("0.1"), 100_000.0, 0.04) == pytest.approx(4.0)
    assert fee(BTC_COIN, Decimal(100), 100_000.0, 0.05) == pytest.approx(0.1 * 0.0005)
