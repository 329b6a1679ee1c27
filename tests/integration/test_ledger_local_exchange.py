"""PositionLedger + BinanceGateway against the local exchange: a crash and restart recovers the truth."""

from __future__ import annotations

from decimal import Decimal

import pykka
import pytest

from nancemakina.actors.config import ExecutionSettings
from nancemakina.actors.domain.model import ContractType, Direction, Leg, client_order_id
from nancemakina.actors.exchange.types import ProtectiveKind, Side
from nancemakina.actors.messages import Alert, PositionClosed, PositionOpened, Reconcile
from nancemakina.actors.tree.ledger.ledger_snapshots import LedgerSnapshots
from nancemakina.actors.tree.ledger.position_ledger import PositionLedger
from tests.integration.gateway_support import NOW_MS, make_gateway, start_exchange

USDT = ContractType.USDT_M
SIGNAL = NOW_MS - 120_000


@pytest.fixture
def exchange():
    ex = start_exchange()
    yield ex
    pykka.ActorRegistry.stop_all()
    ex.stop()


def start_ledger(path, gateway, snapshots, alerts) -> pykka.ActorRef[PositionLedger]:
    ref = PositionLedger.start(
        store_path=path, gateways={USDT: gateway},
        execution=ExecutionSettings(reconcile_interval_s=3600.0), publish_portfolio=lambda _view: None,
        alert=alerts.append, listeners=lambda _event: None, contracts={"BTCUSDT": USDT}, snapshots=snapshots,
    )  # fmt: skip
    ref.ask(Reconcile(reason="test"), timeout=10)
    return ref


def open_protected(gateway) -> PositionOpened:
    entry = gateway.market_order(
        "BTCUSDT", USDT, Side.BUY, Decimal("0.010"), client_order_id("BTCUSDT", SIGNAL, Leg.ENTRY)
    )
    stop = Decimal(int(entry.avg_price * 0.95))
    take = Decimal(int(entry.avg_price * 1.15))
    for kind, leg, price in (
        (ProtectiveKind.STOP_MARKET, Leg.STOP, stop),
        (ProtectiveKind.TAKE_PROFIT_MARKET, Leg.TAKE_PROFIT, take),
    ):
        gateway.place_protective(
            "BTCUSDT", USDT, kind, Side.SELL, price, client_order_id("BTCUSDT", SIGNAL, leg)
        )
    return PositionOpened(
        symbol="BTCUSDT", direction=Direction.LONG, quantity=str(entry.executed_qty), entry_price=entry.avg_price,
        stop_loss=float(stop), take_profit=float(take), signal_open_time_ms=SIGNAL, opened_at_ms=entry.update_time_ms,
    )  # fmt: skip


def test_killed_ledger_restarts_reconciled_and_repairs_a_stop_lost_meanwhile(exchange, tmp_path):
    gateway = make_gateway(exchange, timeout_s=5.0)
    path = tmp_path / "ledger.sqlite3"
    first_alerts: list[Alert] = []
    first = start_ledger(path, gateway, LedgerSnapshots(), first_alerts)
    first.ask(open_protected(gateway), timeout=10)
    first.ask(Reconcile(reason="check"), timeout=10)
    # "kill -9": the first ledger is simply abandoned, no orderly stop, its connection still open.

    second_snapshots, alerts = LedgerSnapshots(), list[Alert]()
    second = start_ledger(path, gateway, second_snapshots, alerts)
    assert second_snapshots.reconciled.is_set()
    assert second_snapshots.discrepancies() == {}
    [view] = second_snapshots.positions()
    assert (view.symbol, view.qty) == ("BTCUSDT", Decimal("0.010"))
    stops = [a for a in gateway.open_algo_orders(USDT) if a.kind is ProtectiveKind.STOP_MARKET]
    assert [s.client_algo_id for s in stops] == [client_order_id("BTCUSDT", SIGNAL, Leg.STOP)]

    # The stop disappears while no ledger is watching; the next ledger puts it back under a fresh id.
    second.stop(timeout=10)
    first.stop(timeout=10)
    assert gateway.cancel_algo_order("BTCUSDT", USDT, client_algo_id=stops[0].client_algo_id)
    third_snapshots = LedgerSnapshots()
    start_ledger(path, gateway, third_snapshots, alerts)
    assert [a.kind for a in alerts] == ["naked_position"]
    stops = [a for a in gateway.open_algo_orders(USDT) if a.kind is ProtectiveKind.STOP_MARKET]
    assert [s.client_algo_id for s in stops] == [client_order_id("BTCUSDT", SIGNAL, Leg.STOP) + "-r1"]
    assert stops[0].trigger_price == Decimal(str(view.stop_loss))
    assert third_snapshots.counters()["repairs"] == 1


@pytest.fixture
def slipping_exchange():
    ex = start_exchange(slippage_pct=0.5)  # every market fill 0.5 % worse: a round trip loses money
    yield ex
    pykka.ActorRegistry.stop_all()
    ex.stop()


def test_a_position_closed_while_no_ledger_watched_is_booked_from_the_account_fills(
    slipping_exchange, tmp_path
):
    """The exchange closed it in two fills that no user stream told: the restarted ledger reads them
    (``userTrades`` through python-binance) and books the trade's exit price and PnL as the exchange did."""
    gateway = make_gateway(slipping_exchange, timeout_s=5.0)
    path = tmp_path / "ledger.sqlite3"
    closed: list[PositionClosed] = []

    def start(snapshots: LedgerSnapshots) -> pykka.ActorRef[PositionLedger]:
        ref = PositionLedger.start(
            store_path=path, gateways={USDT: gateway}, execution=ExecutionSettings(reconcile_interval_s=3600.0),
            publish_portfolio=lambda _view: None, alert=lambda _alert: None,
            listeners=lambda e: closed.append(e) if isinstance(e, PositionClosed) else None,
            contracts={"BTCUSDT": USDT}, snapshots=snapshots, clock_ms=lambda: gateway.server_time_ms(USDT),
        )  # fmt: skip
        ref.ask(Reconcile(reason="test"), timeout=10)
        return ref

    first = start(LedgerSnapshots())
    opened = open_protected(gateway)
    first.ask(opened, timeout=10)
    first.stop(timeout=10)
    for i, qty in enumerate(("0.004", "0.006")):  # closed by hand on the exchange, while no ledger runs
        gateway.market_order("BTCUSDT", USDT, Side.SELL, Decimal(qty), f"by-hand-{i}", reduce_only=True)
    fills = [f for f in gateway.account_trades("BTCUSDT", USDT, start_ms=0) if f.side is Side.SELL]
    assert [f.qty for f in fills] == [Decimal("0.004"), Decimal("0.006")]

    second_snapshots = LedgerSnapshots()
    second = start(second_snapshots)
    [trade] = closed
    exit_price = sum((f.price * f.qty for f in fills), Decimal(0)) / Decimal("0.010")
    pnl = sum((f.realized_pnl for f in fills), Decimal(0))
    assert pnl < 0
    assert (trade.reason, trade.exit_price, trade.realized_pnl) == (
        "closed_on_exchange",  # by orders not ours: each was looked up by its id
        float(exit_price),
        float(pnl),
    )
    closing_fees = sum((f.commission for f in fills), Decimal(0))
    assert trade.fees == closing_fees  # no user stream here: the entry's commission was never told
    assert second_snapshots.money().fees == {("BTCUSDT", "USDT"): closing_fees}
    assert trade.closed_at_ms == fills[-1].time_ms
    assert second_snapshots.money().realized_pnl == {("BTCUSDT", "USDT"): pnl}
    assert gateway.open_algo_orders(USDT) == []  # its stop and take-profit went with it
    second.stop(timeout=10)
