"""The ledger with the new exits: trailing stop, time and reversal closes, and a reversal's flip, where the
next trade opens before the previous one's fills have all arrived."""

from __future__ import annotations

import pytest

from nancemakina.actors.domain.model import Direction, HeldPosition, Leg, PortfolioView, client_order_id
from nancemakina.actors.exchange.types import AlgoStatus, AlgoUpdate, ProtectiveKind, Side
from nancemakina.actors.messages import OrderStateChanged, PositionClosed, PositionOpened
from tests.unit.ledger_support import OPENED, SIGNAL, USDT, Harness, cid, fill, flat, opened, protected

CLOSE_AT = OPENED + 600_000
NEXT_SIGNAL = SIGNAL + 600_000


@pytest.fixture
def h(tmp_path):
    return Harness(tmp_path).start()


def reported_close(leg: Leg, *, qty: str = "0.010", price: float = 101.0) -> OrderStateChanged:
    """The executor's report of its reduce-only close, with the exchange's time of the fill."""
    return OrderStateChanged(
        symbol="BTCUSDT",
        client_id=cid(leg),
        leg=leg,
        status="filled",
        side=Side.SELL.value,
        quantity=qty,
        price=price,
        at_ms=CLOSE_AT,
    )


def test_the_portfolio_view_holds_the_positions_for_the_exits(h):
    protected(h.exchange)
    h.send(opened())
    view = h.portfolio.of(PortfolioView)[-1]
    assert view.position("BTCUSDT") == HeldPosition(
        symbol="BTCUSDT",
        direction=Direction.LONG,
        quantity="0.010",
        signal_open_time_ms=SIGNAL,
        opened_at_ms=OPENED,
    )


@pytest.mark.parametrize(("leg", "reason"), [(Leg.TIME_EXIT, "time_exit"), (Leg.REVERSAL, "reversal")])
def test_the_executors_close_report_closes_the_trade_and_its_fill_amends_it(h, leg, reason):
    protected(h.exchange)
    h.send(opened())
    h.exchange.set_position("BTCUSDT", "0")
    h.send(reported_close(leg))
    [closed] = h.events.of(PositionClosed)
    assert (closed.reason, closed.exit_price, closed.closed_at_ms) == (reason, 101.0, CLOSE_AT)
    assert closed.signal_open_time_ms == SIGNAL
    assert sorted(h.exchange.called("cancel_algo_order")) == sorted([cid(Leg.STOP), cid(Leg.TAKE_PROFIT)])
    h.send(fill(cid(leg), Side.SELL, cum="0.010", price=101.0, rp=0.01, at=CLOSE_AT), flat(at=CLOSE_AT))
    trade = h.reader().trades()[0]
    assert (trade.close_reason, trade.exit_price) == (reason, 101.0)
    assert trade.realized_pnl == pytest.approx(0.01)
    assert len(h.events.of(PositionClosed)) == 1


def test_a_trailing_stop_fill_closes_as_trailing_stop(h):
    protected(h.exchange)
    h.exchange.add_algo(
        "BTCUSDT", cid(Leg.TRAILING_STOP), ProtectiveKind.TRAILING_STOP_MARKET, Side.SELL, "0"
    )
    h.send(
        opened(),
        OrderStateChanged(
            symbol="BTCUSDT",
            client_id=cid(Leg.TRAILING_STOP),
            leg=Leg.TRAILING_STOP,
            status="new",
            side="SELL",
        ),
    )
    h.exchange.finish_algo(cid(Leg.TRAILING_STOP))
    h.exchange.set_position("BTCUSDT", "0")
    h.send(
        AlgoUpdate(
            contract_type=USDT, symbol="BTCUSDT", client_algo_id=cid(Leg.TRAILING_STOP), algo_id=9,
            status=AlgoStatus.TRIGGERED, kind=ProtectiveKind.TRAILING_STOP_MARKET, triggered_order_client_id=None,
            event_time_ms=CLOSE_AT,
        ),
        fill(cid(Leg.TRAILING_STOP), Side.SELL, cum="0.010", price=104.5, rp=0.045, at=CLOSE_AT),
    )  # fmt: skip
    [closed] = h.events.of(PositionClosed)
    assert closed.reason == "trailing_stop"
    assert closed.exit_price == pytest.approx(104.5)
    assert sorted(h.exchange.called("cancel_algo_order")) == sorted([cid(Leg.STOP), cid(Leg.TAKE_PROFIT)])


def test_a_flip_keeps_each_fill_with_its_own_trade(h):
    """Reversal: the executor closes the LONG (leg V) and opens a SHORT before the LONG's fill and its flat
    ACCOUNT_UPDATE reach the ledger; a LONG re-entry must not be closed by the old SELL fill either."""
    protected(h.exchange)
    h.send(opened())
    new_stop = client_order_id("BTCUSDT", NEXT_SIGNAL, Leg.STOP)
    h.exchange.set_position("BTCUSDT", "-0.010")
    h.exchange.add_algo("BTCUSDT", new_stop, ProtectiveKind.STOP_MARKET, Side.BUY, "110")
    short = PositionOpened(
        symbol="BTCUSDT", direction=Direction.SHORT, quantity="0.010", entry_price=100.9, stop_loss=110.0,
        take_profit=90.0, signal_open_time_ms=NEXT_SIGNAL, opened_at_ms=CLOSE_AT, contract_type=USDT,
    )  # fmt: skip
    h.send(
        reported_close(Leg.REVERSAL),
        OrderStateChanged(symbol="BTCUSDT", client_id=new_stop, leg=Leg.STOP, status="new", side="BUY"),
        short,
        fill(cid(Leg.REVERSAL), Side.SELL, cum="0.010", price=100.95, rp=0.0095, at=CLOSE_AT),
        flat(at=CLOSE_AT),  # the old close's report, older than the SHORT: ignored
    )
    assert [c.reason for c in h.events.of(PositionClosed)] == ["reversal"]
    assert new_stop not in h.exchange.called("cancel_algo_order")  # the SHORT keeps its stop
    assert h.latest_open() == {"BTCUSDT"}
    [trade] = h.reader().trades()
    assert (trade.direction, trade.close_reason, trade.exit_price) == (Direction.LONG, "reversal", 100.95)
    assert trade.realized_pnl == pytest.approx(0.0095)
    assert h.snapshots.positions()[0].direction == "SHORT"
