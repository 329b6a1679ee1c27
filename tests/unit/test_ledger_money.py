"""What the ledger tells about money: fills once per order, each trade's fees as charged, totals for the
metrics, and the true exit reason of a trade a reconciliation closed before its fill arrived."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from nancemakina.actors.domain.model import Direction, Leg, client_order_id
from nancemakina.actors.exchange.errors import TransientError
from nancemakina.actors.exchange.types import ProtectiveKind, Side
from nancemakina.actors.messages import (
    OrderFilled,
    OrderStateChanged,
    PositionClosed,
    PositionOpened,
    Reconcile,
)
from tests.unit.ledger_support import OPENED, SIGNAL, Harness, cid, fill, flat, opened, protected
from tests.waiting import wait_until


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


@pytest.mark.parametrize("reduce_only", [True, False])  # False: a closePosition stop's order may say so
def test_a_fill_after_a_reconciliation_found_the_symbol_flat_gives_the_true_exit(
    tmp_path, reduce_only
) -> None:
    h = Harness(tmp_path, flat_close_grace_s=0).start()  # no grace: the reconciliation closes it at once
    protected(h.exchange)
    h.send(opened())
    h.exchange.finish_algo(cid(Leg.STOP))
    h.exchange.set_position("BTCUSDT", "0")
    h.send(Reconcile(reason="periodic"))  # the stop filled on the exchange; its fill is still on its way
    [guessed] = h.events.of(PositionClosed)
    assert (guessed.reason, guessed.exit_price) == ("reconciled_flat", None)
    h.send(fill(cid(Leg.STOP), Side.SELL, cum="0.010", price=95.0, rp=-0.05, reduce_only=reduce_only))
    trade = h.reader().trades()[0]
    assert (trade.close_reason, trade.exit_price, trade.realized_pnl) == ("stop_loss", 95.0, -0.05)
    assert h.snapshots.money().closed == {("BTCUSDT", "stop_loss"): 1}
    h.stop()


def test_a_fill_on_its_way_while_the_exchange_shows_flat_closes_the_trade_itself(tmp_path) -> None:
    h = Harness(tmp_path, flat_close_grace_s=60).start()  # the ledger's own 1 s re-runs never close it here
    protected(h.exchange)
    h.send(opened())
    h.exchange.finish_algo(cid(Leg.TAKE_PROFIT))
    h.exchange.set_position("BTCUSDT", "0")
    h.send(Reconcile(reason="periodic"))  # the take-profit filled; its fill is still on the user stream
    assert h.events.of(PositionClosed) == []
    assert [p.symbol for p in h.snapshots.positions()] == ["BTCUSDT"]  # held until the fill or the grace
    assert h.exchange.called("cancel_algo_order") == []  # the stop is left for the close to cancel
    assert h.snapshots.discrepancies() == {}
    h.send(fill(cid(Leg.TAKE_PROFIT), Side.SELL, cum="0.010", price=115.0, rp=0.15))
    [closed] = h.events.of(PositionClosed)
    assert (closed.reason, closed.exit_price, closed.realized_pnl) == ("take_profit", 115.0, 0.15)
    assert h.exchange.called("cancel_algo_order") == [cid(Leg.STOP)]
    h.send(Reconcile(reason="unsettled"))
    assert h.events.of(PositionClosed) == [closed]
    assert h.snapshots.discrepancies() == {}
    assert len(h.reader().events(kind="flat_awaiting_fill")) == 1
    h.stop()


def test_a_flat_position_whose_fill_never_comes_is_closed_after_the_grace(tmp_path) -> None:
    h = Harness(tmp_path, flat_close_grace_s=0.3).start()
    protected(h.exchange)
    h.send(opened())
    h.exchange.set_position("BTCUSDT", "0")
    h.send(Reconcile(reason="periodic"))
    assert h.events.of(PositionClosed) == []
    time.sleep(0.35)
    h.send(Reconcile(reason="unsettled"))
    [closed] = h.events.of(PositionClosed)
    assert (closed.reason, closed.exit_price, closed.realized_pnl) == ("reconciled_flat", None, None)
    assert h.snapshots.discrepancies() == {"flat_on_exchange": 1, "orphan_algo_order": 2}  # stop, take-profit
    h.stop()


def test_a_flat_position_closed_while_the_bot_was_away_takes_its_exit_from_the_account_fills(
    tmp_path,
) -> None:
    first = Harness(tmp_path).start()
    protected(first.exchange)
    first.send(opened())
    first.stop()
    # While the bot was down the stop fired in two fills, and the account says so (userTrades).
    exchange = first.exchange
    exchange.add_fill(Side.BUY, "0.010", "100", "0", at=OPENED - 1)  # the entry, before the position opened
    stop = exchange.add_fill(Side.SELL, "0.004", "95.1", "-0.0196", at=OPENED + 60_000, cid=cid(Leg.STOP))
    exchange.add_fill(Side.SELL, "0.006", "94.9", "-0.0306", at=OPENED + 60_001, order_id=stop)
    exchange.add_fill(Side.SELL, "0.003", "90", "0", at=OPENED + 900_000)  # a later trade's: not this one's
    exchange.set_position("BTCUSDT", "0")
    exchange.finish_algo(cid(Leg.STOP))
    again = Harness(tmp_path, exchange=exchange).start()
    [closed] = again.events.of(PositionClosed)
    assert (closed.reason, closed.closed_at_ms) == ("stop_loss", OPENED + 60_001)  # its order was our stop
    assert (closed.exit_price, closed.realized_pnl) == (94.98, -0.0502)  # 0.9498 / 0.010, exactly
    assert closed.fees == Decimal("0.02")  # its two closing fills (the fake books no entry commission)
    assert exchange.called("account_trades") == [f"BTCUSDT:{OPENED}"]
    assert exchange.called("get_order") == [str(stop)]
    trade = again.reader().trades()[0]
    assert (trade.close_reason, trade.exit_price, trade.realized_pnl) == ("stop_loss", 94.98, -0.0502)
    money = again.snapshots.money()
    assert money.realized_pnl == {("BTCUSDT", "USDT"): Decimal("-0.0502")}
    assert money.fees == {("BTCUSDT", "USDT"): Decimal("0.02")}  # the metric's fees = the trade's
    assert [f.leg for f in again.events.of(OrderFilled)] == [Leg.STOP]  # told filled once
    # The stream's event for the same order, late: already booked, nothing changes.
    again.send(fill(cid(Leg.STOP), Side.SELL, cum="0.010", price=94.98, rp=-0.0502))
    assert again.snapshots.money() == money
    assert [f.leg for f in again.events.of(OrderFilled)] == [Leg.STOP]
    again.stop()
    third = Harness(tmp_path, exchange=exchange).start()
    assert third.snapshots.money() == money  # read back at a restart: the same totals
    third.stop()


def test_fills_that_do_not_account_for_the_position_settle_nothing(tmp_path) -> None:
    first = Harness(tmp_path).start()
    protected(first.exchange)
    first.send(opened())
    first.stop()
    exchange = first.exchange
    exchange.add_fill(Side.SELL, "0.004", "95.1", "-0.0196", at=OPENED + 60_000)  # the rest is not there
    exchange.set_position("BTCUSDT", "0")
    again = Harness(tmp_path, exchange=exchange).start()
    [closed] = again.events.of(PositionClosed)
    assert (closed.reason, closed.exit_price, closed.realized_pnl) == ("reconciled_flat", None, None)
    assert [e.kind for e in again.reader().events(kind="exit_unknown")] == ["exit_unknown"]
    again.stop()


def test_a_time_exit_whose_fill_the_stream_never_brought_is_priced_from_the_account(tmp_path) -> None:
    h = Harness(tmp_path, flat_close_grace_s=0).start()
    protected(h.exchange)
    h.send(opened())
    exit_id = cid(Leg.TIME_EXIT)
    h.exchange.add_fill(Side.SELL, "0.010", "101", "0.01", at=OPENED + 1, cid=exit_id)
    h.exchange.set_position("BTCUSDT", "0")
    h.send(
        OrderStateChanged(
            symbol="BTCUSDT", client_id=exit_id, leg=Leg.TIME_EXIT, status="filled", side="SELL",
            quantity="0.010", price=101.0, at_ms=OPENED + 2,
        )
    )  # fmt: skip
    [closed] = h.events.of(PositionClosed)  # the executor's answer: the price, not the PnL
    assert (closed.reason, closed.exit_price, closed.realized_pnl) == ("time_exit", 101.0, None)
    h.send(Reconcile(reason="periodic"))  # the user stream never brought the fill: the account's fills say
    trade = h.reader().trades()[0]
    assert (trade.close_reason, trade.exit_price, trade.realized_pnl) == ("time_exit", 101.0, 0.01)
    assert h.snapshots.money().realized_pnl == {("BTCUSDT", "USDT"): Decimal("0.01")}
    h.send(Reconcile(reason="periodic"))  # priced: not read again
    assert h.exchange.called("account_trades") == [f"BTCUSDT:{OPENED}"]
    h.stop()


def test_an_exit_whose_fills_could_not_be_read_is_priced_by_a_later_reconciliation(tmp_path) -> None:
    first = Harness(tmp_path).start()
    protected(first.exchange)
    first.send(opened())
    first.stop()
    exchange = first.exchange
    exchange.add_fill(Side.SELL, "0.010", "95", "-0.05", at=OPENED + 1, cid=cid(Leg.STOP))
    exchange.set_position("BTCUSDT", "0")
    down = TransientError("GET /fapi/v1/userTrades", "HTTP 503")
    exchange.fail("account_trades", down, down)  # the close's own read, and the first retry
    again = Harness(tmp_path, exchange=exchange, flat_close_grace_s=0).start()
    [closed] = again.events.of(PositionClosed)
    assert (closed.reason, closed.realized_pnl) == ("reconciled_flat", None)
    assert len(again.reader().events(kind="exit_unknown")) == 2
    # The next try is due in a second: the ledger's own timer runs the reconciliation that makes it.
    wait_until(lambda: again.reader().trades()[0].realized_pnl is not None, 5.0, "the exit priced")
    trade = again.reader().trades()[0]
    assert (trade.close_reason, trade.exit_price, trade.realized_pnl) == ("stop_loss", 95.0, -0.05)
    assert again.snapshots.money().closed == {("BTCUSDT", "stop_loss"): 1}
    again.stop()


def test_a_trade_superseded_before_its_close_was_heard_is_priced_from_the_account(tmp_path) -> None:
    h = Harness(tmp_path, flat_close_grace_s=0).start()
    protected(h.exchange)
    h.send(opened())
    # Its stop fired and the next signal's entry filled, all while the user stream was silent.
    h.exchange.add_fill(Side.SELL, "0.010", "95", "-0.05", at=OPENED + 1, cid=cid(Leg.STOP))
    nxt = SIGNAL + 60_000
    h.exchange.add_fill(
        Side.BUY, "0.010", "96", "0", at=OPENED + 2, cid=client_order_id("BTCUSDT", nxt, Leg.ENTRY)
    )
    h.exchange.add_algo(
        "BTCUSDT", client_order_id("BTCUSDT", nxt, Leg.STOP), ProtectiveKind.STOP_MARKET, Side.SELL, "91"
    )
    h.send(
        PositionOpened(
            symbol="BTCUSDT", direction=Direction.LONG, quantity="0.010", entry_price=96.0, stop_loss=91.0,
            take_profit=None, signal_open_time_ms=nxt, opened_at_ms=OPENED + 3,
        )
    )  # fmt: skip
    assert [(t.close_reason, t.realized_pnl) for t in h.reader().trades()] == [("superseded", None)]
    h.send(Reconcile(reason="periodic"))
    [trade] = h.reader().trades()
    assert (trade.close_reason, trade.exit_price, trade.realized_pnl) == ("stop_loss", 95.0, -0.05)
    assert h.snapshots.money().closed == {("BTCUSDT", "stop_loss"): 1}
    assert [p.symbol for p in h.snapshots.positions()] == ["BTCUSDT"]  # the next trade, still open
    h.stop()


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
