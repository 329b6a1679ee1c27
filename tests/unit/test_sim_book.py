"""The local exchange's matching core (``actors.sim.book``): pure, no I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nancemakina.actors.domain.fills import exit_on_candle, fee, market_fill_price, pnl
from nancemakina.actors.domain.model import ContractType, Direction
from nancemakina.actors.exchange.instruments import spec_for
from nancemakina.actors.sim.book import Book
from nancemakina.actors.sim.config import SimConfig
from nancemakina.actors.sim.errors import SimError
from nancemakina.actors.sim.orders import Side

BTC = spec_for("BTCUSDT", ContractType.USDT_M)
COIN = spec_for("BTCUSD_PERP", ContractType.COIN_M)


def book(price: float = 100_000.0, **config) -> Book:
    return Book(
        {"BTCUSDT": BTC, "BTCUSD_PERP": COIN}, {"BTCUSDT": price, "BTCUSD_PERP": price}, SimConfig(**config)
    )


def buy(
    b: Book,
    qty: str = "0.010",
    *,
    client: str = "c1",
    symbol: str = "BTCUSDT",
    side: Side = Side.BUY,
    reduce_only: bool = False,
):
    return b.place_market(
        symbol=symbol, side=side, qty=Decimal(qty), reduce_only=reduce_only, client_id=client, now=1
    )


def algo(b: Book, kind: str, trigger: str, *, side: Side = Side.SELL, client: str = "a1", close: bool = True):
    return b.algo_book.place(
        symbol="BTCUSDT",
        side=side,
        order_type=kind,
        qty=Decimal(0),
        trigger=Decimal(trigger),
        reduce_only=False,
        close_position=close,
        client_algo_id=client,
        working_type="CONTRACT_PRICE",
        time_in_force="GTC",
        price_protect=False,
        now=2,
    )


def test_market_fill_uses_shared_slippage_and_fee_rules():
    b = book(slippage_pct=0.05, fee_pct=0.05)
    snapshot, order = buy(b)
    price = market_fill_price(100_000.0, buy=True, slippage_pct=0.05, tick=BTC.tick_size)
    assert snapshot.status == "NEW"
    assert order.status == "FILLED"
    assert order.avg_price == price
    assert b.wallet["USDT"] == pytest.approx(10_000 - fee(BTC, Decimal("0.010"), price, 0.05))
    assert b.positions["BTCUSDT"].amount == Decimal("0.010")
    kinds = [e.payload["e"] for e in b.events]
    assert kinds == ["ORDER_TRADE_UPDATE", "TRADE_LITE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"]


def test_round_trip_realizes_pnl():
    b = book(fee_pct=0.0)
    buy(b)
    b.set_price("BTCUSDT", 101_000.0)
    _, order = buy(b, side=Side.SELL, client="c2", reduce_only=True)
    assert order.realized == pytest.approx(pnl(BTC, Direction.LONG, Decimal("0.010"), 100_000.0, 101_000.0))
    assert b.wallet["USDT"] == pytest.approx(10_010.0)
    assert b.positions["BTCUSDT"].amount == 0
    assert b.positions["BTCUSDT"].margin == 0


@pytest.mark.parametrize(
    ("direction", "candle"),
    [
        (Direction.LONG, (100_000.0, 100_400.0, 99_500.0, 100_100.0)),  # both levels inside: stop first
        (Direction.LONG, (100_000.0, 100_400.0, 99_900.0, 100_300.0)),  # take-profit only
        (Direction.SHORT, (100_000.0, 100_400.0, 99_500.0, 99_900.0)),
        (Direction.LONG, (99_000.0, 99_100.0, 98_900.0, 99_000.0)),  # gap through the stop
    ],
)
def test_conditional_exits_equal_the_backtesters(direction, candle):
    b = book(slippage_pct=0.02, fee_pct=0.0)
    long = direction is Direction.LONG
    buy(b, side=Side.BUY if long else Side.SELL)
    entry = b.positions["BTCUSDT"].entry
    stop, take = (99_700.0, 100_300.0) if long else (100_300.0, 99_700.0)
    close_side = Side.SELL if long else Side.BUY
    algo(b, "STOP_MARKET", f"{stop:.1f}", side=close_side, client="sl")
    algo(b, "TAKE_PROFIT_MARKET", f"{take:.1f}", side=close_side, client="tp")
    b.on_candle("BTCUSDT", *candle, now=3)
    reason, level = exit_on_candle(
        direction=direction,
        stop=stop,
        take_profit=take,
        open_=candle[0],
        high=candle[1],
        low=candle[2],
        close=candle[3],
    )
    fired = "sl" if reason.value == "stop_loss" else "tp"
    assert b.algos_by_client[fired].status == "FINISHED"
    expected = market_fill_price(level, buy=not long, slippage_pct=0.02, tick=BTC.tick_size)
    assert b.algos_by_client[fired].avg_price == expected
    assert b.positions["BTCUSDT"].amount == 0
    assert b.wallet["USDT"] == pytest.approx(10_000 + pnl(BTC, direction, Decimal("0.010"), entry, expected))
    other = b.algos_by_client["tp" if fired == "sl" else "sl"]
    assert other.status in {"NEW", "EXPIRED"}


def test_algo_rejections_and_expiry_without_position():
    b = book()
    with pytest.raises(SimError) as info:
        algo(b, "STOP_MARKET", "100500.0")
    assert info.value.code == -2021
    algo(b, "STOP_MARKET", "99000.0")
    with pytest.raises(SimError) as info:
        algo(b, "STOP_MARKET", "98000.0")
    assert info.value.code == -4116
    b.on_candle("BTCUSDT", 100_000.0, 100_000.0, 98_000.0, 98_500.0, now=5)
    assert b.algos_by_client["a1"].status == "EXPIRED"
    assert b.algos_by_client["a1"].reject_reason == "Reduce Only reject"


def test_order_rejections():
    b = book()
    buy(b)
    with pytest.raises(SimError) as info:
        buy(b)
    assert info.value.code == -4116
    with pytest.raises(SimError) as info:
        buy(b, qty="10", client="big")
    assert info.value.code == -2019
    with pytest.raises(SimError) as info:
        buy(b, client="ro", reduce_only=True)
    assert info.value.code == -2022
    with pytest.raises(SimError) as info:
        b.place_market(
            symbol="ETHUSDT", side=Side.BUY, qty=Decimal(1), reduce_only=False, client_id="x", now=1
        )
    assert info.value.code == -1121


def test_coin_m_inverse_pnl_in_coin():
    b = book(fee_pct=0.0)
    buy(b, qty="10", symbol="BTCUSD_PERP")
    b.set_price("BTCUSD_PERP", 110_000.0)
    assert b.unrealized("BTCUSD_PERP") == pytest.approx(
        pnl(COIN, Direction.LONG, Decimal(10), 100_000.0, 110_000.0)
    )
    _, order = buy(b, qty="10", symbol="BTCUSD_PERP", side=Side.SELL, client="c2")
    assert b.wallet["BTC"] == pytest.approx(1 + 10 * 100 * (1 / 100_000 - 1 / 110_000))
    assert order.realized > 0


def test_margin_type_and_leverage():
    b = book()
    b.set_margin_type("BTCUSDT", isolated=True)
    with pytest.raises(SimError) as info:
        b.set_margin_type("BTCUSDT", isolated=True)
    assert info.value.code == -4046
    b.set_leverage("BTCUSDT", 5)
    buy(b)
    assert b.positions["BTCUSDT"].margin == pytest.approx(0.010 * 100_000 / 5)
    with pytest.raises(SimError) as info:
        b.set_margin_type("BTCUSDT", isolated=False)
    assert info.value.code == -4048
    with pytest.raises(SimError):
        b.set_leverage("BTCUSDT", 126)
