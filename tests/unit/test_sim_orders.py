"""The local exchange's LIMIT, STOP/TAKE_PROFIT and trailing orders on the candle path (``Book``, no I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nancemakina.actors.domain.fills import fee, market_fill_price
from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.instruments import spec_for, spec_to_entry
from nancemakina.actors.sim.book import Book
from nancemakina.actors.sim.config import SimConfig
from nancemakina.actors.sim.errors import SimError
from nancemakina.actors.sim.orders import Side
from nancemakina.actors.sim.rules import SymbolRules

BTC = spec_for("BTCUSDT", ContractType.USDT_M)


def book(price: float = 100_000.0, *, max_orders: int | None = None, max_algos: int | None = None, **config):
    entry = spec_to_entry(BTC)
    if max_orders is not None:
        entry["filters"].append({"filterType": "MAX_NUM_ORDERS", "limit": max_orders})
    if max_algos is not None:
        entry["filters"].append({"filterType": "MAX_NUM_ALGO_ORDERS", "limit": max_algos})
    return Book({"BTCUSDT": BTC}, {"BTCUSDT": price}, SimConfig(**config), {"BTCUSDT": SymbolRules.of(entry)})


def limit(b: Book, price: str, *, side=Side.BUY, tif="GTC", qty="0.010", client="l1", reduce_only=False):
    return b.limits.place(
        symbol="BTCUSDT",
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        time_in_force=tif,
        reduce_only=reduce_only,
        client_id=client,
        now=1,
    )


def algo(b: Book, kind: str, *, side=Side.SELL, client="a1", trigger="0", price="0", **extra):
    return b.algo_book.place(
        symbol="BTCUSDT",
        side=side,
        order_type=kind,
        qty=Decimal("0.010"),
        trigger=Decimal(trigger),
        reduce_only=False,
        close_position=False,
        client_algo_id=client,
        working_type="CONTRACT_PRICE",
        time_in_force="GTC",
        price_protect=False,
        now=2,
        price=Decimal(price),
        **extra,
    )


def test_resting_limit_fills_as_maker_at_its_price_when_the_path_touches_it():
    b = book(fee_pct=0.05, maker_fee_pct=0.02)
    snapshot, order = limit(b, "99500.0")
    assert (snapshot.status, order.status) == ("NEW", "NEW")
    assert b.available("USDT") == pytest.approx(10_000 - 0.010 * 99_500 / 20)  # its margin is held
    b.on_candle("BTCUSDT", 100_000.0, 100_200.0, 99_800.0, 100_100.0, now=3)
    assert order.status == "NEW"
    b.on_candle("BTCUSDT", 100_100.0, 100_150.0, 99_400.0, 99_600.0, now=4)
    assert (order.status, order.avg_price, order.maker) == ("FILLED", 99_500.0, True)
    assert b.wallet["USDT"] == pytest.approx(10_000 - fee(BTC, Decimal("0.010"), 99_500.0, 0.02))
    assert [f.maker for f in b.history.fills] == [True]
    assert [i.kind for i in b.history.income] == ["COMMISSION"]


def test_crossing_limit_is_a_taker_fill_capped_at_its_limit():
    b = book(slippage_pct=0.1)
    _, order = limit(b, "100050.0")
    assert order.status == "FILLED"
    assert not order.maker
    assert order.avg_price == 100_050.0  # market price + slippage would be 100100
    _, order = limit(b, "100200.0", client="l2")
    assert order.avg_price == market_fill_price(100_000.0, buy=True, slippage_pct=0.1, tick=BTC.tick_size)


def test_time_in_force_rules():
    b = book()
    _, ioc = limit(b, "99000.0", tif="IOC", client="ioc")
    assert (ioc.status, ioc.expiry_reason) == ("EXPIRED", "2")
    with pytest.raises(SimError) as info:
        limit(b, "99000.0", tif="FOK", client="fok")
    assert info.value.code == -5021
    assert ("BTCUSDT", "fok") not in b.orders_by_client  # a refused FOK is never recorded
    with pytest.raises(SimError) as info:
        limit(b, "100100.0", tif="GTX", client="gtx")
    assert info.value.code == -5022
    _, post = limit(b, "99900.0", tif="GTX", client="gtx2")
    assert post.status == "NEW"
    with pytest.raises(SimError) as info:
        limit(b, "99000.0", side=Side.SELL, reduce_only=True, client="ro")
    assert info.value.code == -2022


def test_reduce_only_limit_expires_when_the_position_is_gone():
    b = book()
    b.place_market(
        symbol="BTCUSDT", side=Side.BUY, qty=Decimal("0.010"), reduce_only=False, client_id="m", now=1
    )
    _, target = limit(b, "101000.0", side=Side.SELL, reduce_only=True, client="tp")
    b.place_market(
        symbol="BTCUSDT", side=Side.SELL, qty=Decimal("0.010"), reduce_only=True, client_id="x", now=2
    )
    assert (target.status, target.expiry_reason) == ("EXPIRED", "4")


def test_order_caps():
    b = book(max_orders=3, max_algos=2)
    limit(b, "90000.0", client="a")
    algo(b, "STOP_MARKET", side=Side.BUY, trigger="101000.0", client="s1")
    algo(b, "STOP_MARKET", side=Side.BUY, trigger="102000.0", client="s2")
    with pytest.raises(SimError) as info:
        algo(b, "STOP_MARKET", side=Side.BUY, trigger="103000.0", client="s3")
    assert info.value.code == -4045
    with pytest.raises(SimError) as info:
        limit(b, "90000.0", client="b")
    assert info.value.code == -2025


def test_stop_limit_triggers_into_a_limit_that_can_fill_on_the_same_path():
    b = book()
    # a BUY take-profit: triggers on a fall to 99500, then its BUY limit at 99400 rests...
    tp = algo(b, "TAKE_PROFIT", side=Side.BUY, trigger="99500.0", price="99400.0", client="tp")
    # ...and fills further along the same fall, at its limit.
    b.on_candle("BTCUSDT", 100_000.0, 100_000.0, 99_000.0, 99_200.0, now=5)
    order = b.orders[tp.actual_order_id]
    assert (tp.status, order.order_type, order.orig_type) == ("FINISHED", "LIMIT", "TAKE_PROFIT")
    assert (order.status, order.avg_price, order.maker) == ("FILLED", 99_400.0, True)
    algos = [e.payload["o"]["X"] for e in b.events if e.payload["e"] == "ALGO_UPDATE"]
    assert algos == ["NEW", "TRIGGERED", "FINISHED"]


def test_trailing_stop_market_protects_a_long():
    b = book(slippage_pct=0.0)
    b.place_market(
        symbol="BTCUSDT", side=Side.BUY, qty=Decimal("0.010"), reduce_only=False, client_id="m", now=1
    )
    with pytest.raises(SimError) as info:
        algo(b, "TRAILING_STOP_MARKET", callback_rate=Decimal(1), activate_price=Decimal(99000))
    assert info.value.code == -2021  # a SELL activates above the last price
    trail = algo(b, "TRAILING_STOP_MARKET", callback_rate=Decimal(1), activate_price=Decimal(101000))
    b.on_candle("BTCUSDT", 100_000.0, 102_000.0, 99_900.0, 101_800.0, now=3)  # armed at 101000, high 102000
    assert trail.status == "NEW"
    assert trail.trailing is not None
    assert trail.trailing.extreme == 102_000.0
    b.on_candle("BTCUSDT", 101_800.0, 101_900.0, 100_000.0, 100_500.0, now=4)
    assert trail.status == "FINISHED"
    assert trail.avg_price == market_fill_price(
        102_000.0 * 0.99, buy=False, slippage_pct=0.0, tick=BTC.tick_size
    )
    order = b.orders[trail.actual_order_id]
    assert (order.orig_type, order.activate_price, order.price_rate) == (
        "TRAILING_STOP_MARKET",
        "101000",
        "1",
    )
    assert b.positions["BTCUSDT"].amount == 0
