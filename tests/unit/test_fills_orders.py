"""Shared fill rules for LIMIT orders and trailing stops (the backtester's and the local exchange's)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nancemakina.actors.domain.fills import (
    TrailingStop,
    best_bid,
    first_touch,
    limit_fill,
    marketable,
    taker_limit_price,
    trailing_trigger,
)

TICK = Decimal("0.1")


def test_first_touch_gaps_at_the_point_and_crosses_at_the_level():
    path = (100.0, 98.0, 103.0, 101.0)
    assert first_touch(path, 99.0, from_above=True) == (1, 99.0)
    assert first_touch(path, 102.0, from_above=False) == (2, 102.0)
    assert first_touch(path, 100.5, from_above=True) == (0, 100.0)  # already below at the open: a gap
    assert first_touch(path, 97.0, from_above=True) is None


def test_marketable_against_the_synthetic_book():
    assert best_bid(100.07, TICK) == 100.0
    assert marketable(100.1, buy=True, last=100.05, tick=TICK)  # at the ask
    assert not marketable(100.0, buy=True, last=100.05, tick=TICK)  # at the bid: rests
    assert marketable(100.0, buy=False, last=100.05, tick=TICK)
    assert not marketable(100.1, buy=False, last=100.05, tick=TICK)
    assert taker_limit_price(100.0, buy=True, limit=100.05, slippage_pct=0.1, tick=TICK) == 100.05
    assert taker_limit_price(100.0, buy=False, limit=90.0, slippage_pct=0.1, tick=TICK) == 99.9


def test_a_resting_limit_fills_at_its_price_even_through_a_gap():
    assert limit_fill((100.0, 98.0, 103.0, 101.0), buy=True, limit=99.0) == (1, 99.0)
    assert limit_fill((97.0, 96.0, 99.0, 98.0), buy=True, limit=99.0) == (0, 99.0)
    assert limit_fill((100.0, 98.0, 103.0, 101.0), buy=False, limit=104.0) is None


def test_trailing_sell_arms_tracks_the_high_and_triggers_on_the_callback():
    stop = TrailingStop(sell=True, callback_pct=1.0, activation=105.0)
    state, hit = trailing_trigger((100.0, 99.0, 104.0, 103.0), stop)
    assert hit is None
    assert state.extreme is None  # never reached the activation price
    state, hit = trailing_trigger((103.0, 106.0, 110.0, 109.5), state)
    assert hit is None
    assert state.extreme == 110.0
    assert state.level == pytest.approx(108.9)
    state, hit = trailing_trigger((107.5, 109.0, 100.0, 101.0), state)
    assert hit == (0, 107.5)  # the open gapped below 108.9
    armed = TrailingStop(sell=True, callback_pct=2.0, extreme=100.0)
    _, hit = trailing_trigger((100.0, 101.0, 95.0, 96.0), armed)
    assert hit == (2, pytest.approx(101.0 * 0.98))


def test_trailing_buy_mirrors_it():
    stop = TrailingStop(sell=False, callback_pct=1.0, extreme=100.0)
    state, hit = trailing_trigger((100.0, 97.0, 98.5, 98.0), stop)
    assert hit == (2, pytest.approx(97.97))
    assert state.extreme == 97.0
    unarmed = TrailingStop(sell=False, callback_pct=1.0, activation=95.0)
    state, hit = trailing_trigger((96.0, 99.0, 94.0, 96.0), unarmed)
    assert state.extreme == 94.0  # armed at the fall through 95, then trailed the low
    assert hit == (3, pytest.approx(94.94))
