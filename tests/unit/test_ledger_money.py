"""What the ledger tells about money: fills once per order, each trade's fees as charged, totals for the
metrics, and the true exit reason of a trade a reconciliation closed before its fill arrived."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nancemakina.actors.domain.model import Direction, Leg
from nancemakina.actors.exchange.types import Side
from nancemakina.actors.messages import OrderFilled, OrderStateChanged, PositionClosed, Reconcile
from tests.unit.ledger_support import Harness, cid, fill, flat, opened, protected


@pytest.fixture
def h(tmp_path):
    return Harness(tmp_path).start()


def entry_filled() -> OrderStateChanged:
    return OrderStateChanged(
        symbol="BTCUSDT", client_id=cid(Leg.ENTRY), leg=Leg.ENTRY, status="filled", side="BUY",
        quantity="0.010", price=100.0,
    )  # fmt: skip


def test_every_order_is_told_filled_once_whoever_reports_it(h: Harness) -> None:
    protected(h.exchange)
    h.send(entry_filled(), opened())
    h.send(fill(cid(Leg.ENTRY), Side.BUY, cum="0.010", price=100.0, rp=0.0, reduce_only=False))
    h.exchange.set_position("BTCUSDT", "0")
    h.send(fill(cid(Leg.STOP), Side.SELL, cum="0.010", price=95.0, rp=-0.05), flat())
    filled = h.events.of(OrderFilled)
    assert [(f.leg, f.side, f.quantity, f.price) for f in filled] == [
        (Leg.ENTRY, "BUY", "0.010", 100.0),
        (Leg.STOP, "SELL", "0.010", 95.0),
    ]


def test_a_trades_fees_are_its_commissions_and_the_totals_follow(h: Harness) -> None:
    protected(h.exchange)
    h.send(opened())
    h.send(fill(cid(Leg.ENTRY), Side.BUY, cum="0.010", price=100.0, rp=0.0, reduce_only=False))
    assert h.snapshots.money().fees == {("BTCUSDT", "USDT"): Decimal("0.01")}  # the open trade's entry
    h.exchange.set_position("BTCUSDT", "0")
    h.send(fill(cid(Leg.TAKE_PROFIT), Side.SELL, cum="0.010", price=115.0, rp=0.15), flat())
    [closed] = h.events.of(PositionClosed)
    assert (closed.reason, closed.fees, closed.margin_asset) == ("take_profit", Decimal("0.02"), "USDT")
    assert (closed.direction, closed.quantity, closed.entry_price) == (
        Direction.LONG,
        Decimal("0.010"),
        100.0,
    )
    money = h.snapshots.money()
    assert money.closed == {("BTCUSDT", "take_profit"): 1}
    assert money.realized_pnl == {("BTCUSDT", "USDT"): Decimal("0.15")}
    assert money.fees == {("BTCUSDT", "USDT"): Decimal("0.02")}
    assert h.reader().trades()[0].fees == Decimal("0.02")


def test_a_fill_after_a_reconciliation_found_the_symbol_flat_gives_the_true_exit(h: Harness) -> None:
    protected(h.exchange)
    h.send(opened())
    h.exchange.finish_algo(cid(Leg.STOP))
    h.exchange.set_position("BTCUSDT", "0")
    h.send(Reconcile(reason="periodic"))  # the stop filled on the exchange; its fill is still on its way
    [guessed] = h.events.of(PositionClosed)
    assert (guessed.reason, guessed.exit_price) == ("reconciled_flat", None)
    h.send(fill(cid(Leg.STOP), Side.SELL, cum="0.010", price=95.0, rp=-0.05))
    trade = h.reader().trades()[0]
    assert (trade.close_reason, trade.exit_price, trade.realized_pnl) == ("stop_loss", 95.0, -0.05)
    assert h.snapshots.money().closed == {("BTCUSDT", "stop_loss"): 1}


def test_the_totals_kept_along_equal_the_ones_read_back_at_a_restart(tmp_path, h: Harness) -> None:
    protected(h.exchange)
    h.send(opened())
    h.send(fill(cid(Leg.ENTRY), Side.BUY, cum="0.010", price=100.0, rp=0.0, reduce_only=False))
    h.exchange.finish_algo(cid(Leg.STOP))
    h.exchange.set_position("BTCUSDT", "0")
    h.send(Reconcile(reason="periodic"))
    h.send(fill(cid(Leg.STOP), Side.SELL, cum="0.010", price=95.0, rp=-0.05))
    kept = h.snapshots.money()
    h.stop()
    again = Harness(tmp_path, exchange=h.exchange).start()
    assert again.snapshots.money() == kept
    assert kept.fees == {("BTCUSDT", "USDT"): Decimal("0.02")}
    again.stop()
