"""PositionLedger against a hand-written fake exchange: trade lifecycle, user events, reconciliation."""

from __future__ import annotations

import dataclasses
from contextlib import closing
from decimal import Decimal

import pytest

from nancemakina.actors.domain.model import Decision, Direction, Leg, Outcome
from nancemakina.actors.exchange.errors import BudgetSpent, Rejected
from nancemakina.actors.exchange.types import (
    AlgoStatus,
    ListenKeyExpired,
    ProtectiveKind,
    Side,
    UserStreamStatus,
)
from nancemakina.actors.messages import (
    Alert,
    EntryFinished,
    OrderStateChanged,
    PositionClosed,
    PositionOpened,
    Reconcile,
)
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore, LedgerStoreError
from tests.unit.ledger_support import (
    SIGNAL,
    USDT,
    FakeExchange,
    Harness,
    algo_update,
    cid,
    fill,
    flat,
    opened,
    protected,
    transient,
)


@pytest.fixture
def h(tmp_path):
    return Harness(tmp_path).start()


def test_stop_fill_closes_trade_cancels_take_profit_and_goes_flat(h):
    protected(h.exchange)
    h.send(opened())
    assert h.latest_open() == {"BTCUSDT"}
    assert h.events.of(PositionOpened) == [opened()]
    assert h.snapshots.positions()[0].stop_loss == 95.0

    h.exchange.finish_algo(cid(Leg.STOP))
    h.exchange.set_position("BTCUSDT", "0")
    h.send(
        algo_update(Leg.STOP, AlgoStatus.TRIGGERED),
        fill(cid(Leg.STOP), Side.SELL, cum="0.010", price=95.0, rp=-0.05),
        flat(),
        algo_update(Leg.STOP, AlgoStatus.FINISHED),
    )
    closed = h.events.of(PositionClosed)
    assert len(closed) == 1
    assert closed[0].reason == "stop_loss"
    assert closed[0].exit_price == 95.0
    assert closed[0].realized_pnl == pytest.approx(-0.05)
    assert h.exchange.called("cancel_algo_order") == [cid(Leg.TAKE_PROFIT)]
    assert h.exchange.open_ids() == set()
    assert h.latest_open() == frozenset()
    assert h.snapshots.positions() == ()
    trade = h.reader().trades()[0]
    assert (trade.close_reason, trade.exit_price) == ("stop_loss", 95.0)


def test_take_profit_finished_before_its_fill_closes_once_and_amends_the_exit(h):
    protected(h.exchange, direction=Direction.SHORT)
    h.send(opened(direction=Direction.SHORT))
    h.exchange.finish_algo(cid(Leg.TAKE_PROFIT))
    h.exchange.set_position("BTCUSDT", "0")
    take = fill(cid(Leg.TAKE_PROFIT), Side.BUY, cum="0.010", price=85.0, rp=0.15)
    h.send(
        algo_update(Leg.TAKE_PROFIT, AlgoStatus.FINISHED),
        take,
        flat(),
        take,
        algo_update(Leg.TAKE_PROFIT, AlgoStatus.NEW),
    )

    closed = h.events.of(PositionClosed)
    assert [c.reason for c in closed] == ["take_profit"]
    assert h.exchange.called("cancel_algo_order") == [cid(Leg.STOP)]
    store: LedgerStore = h.reader()
    trade = store.trades()[0]
    assert trade.exit_price == 85.0
    assert trade.realized_pnl == pytest.approx(0.15)  # the duplicate fill was not counted twice
    order = store.order(cid(Leg.TAKE_PROFIT))
    assert order is not None
    assert order.status in {
        "filled",
        "finished",
    }  # a late NEW does not regress it


def test_partial_fills_close_only_when_the_whole_quantity_is_out(h):
    protected(h.exchange)
    h.send(opened())
    h.send(fill("x-triggered-1", Side.SELL, cum="0.004", rp=-0.02))
    assert h.events.of(PositionClosed) == []
    h.send(fill("x-triggered-1", Side.SELL, cum="0.010", last="0.006", rp=-0.03))
    [closed] = h.events.of(PositionClosed)
    assert closed.realized_pnl == pytest.approx(-0.05)
    assert closed.reason == "closed_on_exchange"


def test_fills_before_position_opened_close_it_on_arrival(h):
    h.exchange.add_algo("BTCUSDT", cid(Leg.TAKE_PROFIT), ProtectiveKind.TAKE_PROFIT_MARKET, Side.SELL, "115")
    h.send(fill(cid(Leg.STOP), Side.SELL, cum="0.010", rp=-0.05), opened())
    [closed] = h.events.of(PositionClosed)
    assert closed.reason == "stop_loss"
    assert h.exchange.open_ids() == set()
    assert h.latest_open() == frozenset()


def test_duplicate_position_opened_is_ignored(h):
    protected(h.exchange)
    h.send(opened(), opened())
    assert len(h.events.of(PositionOpened)) == 1
    assert len(h.reader().open_positions()) == 1


def test_foreign_events_are_recorded_and_ignored(h):
    foreign = fill("web_abc", Side.BUY, cum="1", symbol="ETHUSDT", reduce_only=False)
    h.send(foreign, dataclasses.replace(algo_update(Leg.STOP, AlgoStatus.NEW), client_algo_id="x1"))
    store = h.reader()
    assert {e.kind for e in store.events()} >= {"foreign_order", "foreign_algo_order"}
    assert store.orders() == []
    assert h.events.of(PositionClosed) == []


def test_decisions_alerts_rejections_and_stream_events_are_persisted(h):
    decision = Decision(
        symbol="BTCUSDT", timeframe="1m", signal_open_time_ms=SIGNAL, decided_open_time_ms=SIGNAL,
        direction=Direction.LONG, outcome=Outcome.TAKEN, entry=100.0, stop_loss=95.0, take_profit=115.0,
    )  # fmt: skip
    h.send(decision, decision, Alert(kind="pair_parked", symbol="ETHUSDT", detail="budget"))
    h.send(ListenKeyExpired(contract_type=USDT, event_time_ms=1))
    h.send(UserStreamStatus(contract_type=USDT, connected=True))
    store = h.reader()
    assert len(store.decisions()) == 1
    kinds = {e.kind for e in store.events()}
    assert {"alert:pair_parked", "listen_key_expired", "user_stream_up"} <= kinds
    assert h.snapshots.counters()["reconciles"] == 3  # start-up, the harness's, after the reconnect


def test_naked_position_is_repaired_with_a_fresh_id_and_alerted(tmp_path):
    h = Harness(tmp_path).start()
    h.exchange.set_position("BTCUSDT", "0.010")
    h.send(
        OrderStateChanged(
            symbol="BTCUSDT", client_id=cid(Leg.STOP), leg=Leg.STOP, status="rejected", side="SELL"
        ),
        opened(),
        Reconcile(reason="test"),
    )
    [alert] = h.alerts.of(Alert)
    assert alert.kind == "naked_position"
    assert h.exchange.called("place_protective") == [cid(Leg.STOP) + "-r1"]
    assert h.exchange.algos[cid(Leg.STOP) + "-r1"].trigger_price == Decimal("95.0")
    counters = h.snapshots.counters()
    assert (counters["repairs"], counters["naked_alerts"]) == (1, 1)
    assert h.snapshots.discrepancies() == {"naked_position": 1}
    h.send(Reconcile(reason="again"))
    assert len(h.alerts.of(Alert)) == 1  # protected now


def test_naked_position_is_flattened_when_configured(tmp_path):
    h = Harness(tmp_path, on_unprotected_position="flatten").start()
    h.exchange.set_position("BTCUSDT", "0.010")
    h.exchange.add_algo("BTCUSDT", cid(Leg.TAKE_PROFIT), ProtectiveKind.TAKE_PROFIT_MARKET, Side.SELL, "115")
    h.send(opened(), Reconcile(reason="test"))
    assert h.exchange.called("market_order") == [cid(Leg.CLOSE)]
    [closed] = h.events.of(PositionClosed)
    assert closed.reason == "flattened_unprotected"
    assert h.exchange.open_ids() == set()
    assert [a.kind for a in h.alerts.of(Alert)] == ["naked_position"]
    assert h.snapshots.counters()["flattens"] == 1


def test_rejected_stop_repair_falls_back_to_flatten(tmp_path):
    h = Harness(tmp_path).start()
    h.exchange.set_position("BTCUSDT", "0.010")
    h.exchange.fail("place_protective", Rejected("POST algoOrder", -2021, "Order would immediately trigger."))
    h.send(opened(), Reconcile(reason="test"))
    assert h.exchange.called("market_order") == [cid(Leg.CLOSE)]
    assert [c.reason for c in h.events.of(PositionClosed)] == ["flattened_unprotected"]


def test_unknown_position_is_adopted_with_the_stop_it_has(tmp_path):
    h = Harness(tmp_path)
    h.exchange.set_position("ETHUSDT", "-2", entry=2500.0)
    h.exchange.add_algo("ETHUSDT", "manual-stop", ProtectiveKind.STOP_MARKET, Side.BUY, "2600")
    h.start()
    [view] = h.snapshots.positions()
    assert (view.symbol, view.direction, view.qty, view.stop_loss) == ("ETHUSDT", "SHORT", Decimal(2), 2600.0)
    assert h.latest_open() == {"ETHUSDT"}
    assert h.alerts.of(Alert) == []
    assert h.snapshots.counters()["adopted"] == 1


def test_unknown_naked_position_is_flattened_even_in_repair_mode(tmp_path):
    h = Harness(tmp_path)
    h.exchange.set_position("ETHUSDT", "2", entry=2500.0)
    h.start()
    assert len(h.exchange.called("market_order")) == 1
    assert h.exchange.positions(USDT) == []
    assert [a.kind for a in h.alerts.of(Alert)] == ["naked_position"]
    assert h.snapshots.positions() == ()


def test_unknown_position_is_flattened_when_configured(tmp_path):
    h = Harness(tmp_path, on_unknown_position="flatten")
    h.exchange.set_position("ETHUSDT", "2", entry=2500.0)
    h.exchange.add_algo("ETHUSDT", "nm-ETHUSDT-1-S", ProtectiveKind.STOP_MARKET, Side.SELL, "2400")
    h.start()
    assert h.exchange.positions(USDT) == []
    assert h.exchange.open_ids() == set()  # our stop on it went too
    assert h.snapshots.counters()["flattens"] == 1


def test_entry_in_flight_is_not_judged_before_position_opened(h):
    h.send(
        OrderStateChanged(
            symbol="BTCUSDT", client_id=cid(Leg.ENTRY), leg=Leg.ENTRY, status="submitted", side="BUY"
        )
    )
    h.exchange.set_position("BTCUSDT", "0.010")
    h.send(Reconcile(reason="test"))
    assert h.snapshots.discrepancies() == {}
    assert h.exchange.called("market_order") == []


def test_an_executor_alert_alone_does_not_race_the_executor(h):
    """Hole 5: the stop failed and the executor is closing at market; the ledger must not act meanwhile."""
    h.send(
        OrderStateChanged(
            symbol="BTCUSDT", client_id=cid(Leg.ENTRY), leg=Leg.ENTRY, status="filled", side="BUY"
        )
    )
    h.exchange.set_position("BTCUSDT", "0.010")
    h.send(Alert(kind="stop_failed", symbol="BTCUSDT", detail="stop placement failed"))
    h.send(Reconcile(reason="periodic"))
    assert h.snapshots.discrepancies() == {}  # not adopted as unknown while the executor still holds it
    assert h.exchange.called("market_order") == []


def test_entry_finished_unconfirmed_hands_the_symbol_to_reconciliation(h):
    h.send(
        OrderStateChanged(
            symbol="BTCUSDT", client_id=cid(Leg.ENTRY), leg=Leg.ENTRY, status="submitted", side="BUY"
        )
    )
    h.exchange.set_position("BTCUSDT", "0.010")
    h.send(EntryFinished(symbol="BTCUSDT", signal_open_time_ms=SIGNAL, outcome="unconfirmed"))
    # no decision stored for it: a position nobody can say the stop of is closed
    assert h.exchange.positions(USDT) == []
    assert h.snapshots.counters()["flattens"] == 1


def taken(symbol: str = "BTCUSDT", stop: float = 95.04, take: float = 115.06) -> Decision:
    return Decision(
        symbol=symbol, timeframe="1m", signal_open_time_ms=SIGNAL, decided_open_time_ms=SIGNAL,
        direction=Direction.LONG, outcome=Outcome.TAKEN, entry=100.0, stop_loss=stop, take_profit=take,
    )  # fmt: skip


def test_an_unconfirmed_entry_the_exchange_filled_is_adopted_as_ours_and_protected(tmp_path):
    """Hole 1: the entry filled but the executor never learnt it; the exchange says so, the ledger acts."""
    h = Harness(tmp_path, ticks={"BTCUSDT": Decimal("0.1")}).start()
    h.send(taken())
    h.send(
        OrderStateChanged(
            symbol="BTCUSDT", client_id=cid(Leg.ENTRY), leg=Leg.ENTRY, status="submitted", side="BUY"
        )
    )
    h.exchange.set_position("BTCUSDT", "0.010")
    h.send(EntryFinished(symbol="BTCUSDT", signal_open_time_ms=SIGNAL, outcome="unconfirmed"))
    assert h.exchange.called("market_order") == []
    assert h.exchange.called("place_protective") == [cid(Leg.STOP), cid(Leg.TAKE_PROFIT)]
    assert {(a.kind, a.trigger_price) for a in h.exchange.algos.values()} == {
        (ProtectiveKind.STOP_MARKET, Decimal("95.0")),  # rounded toward the losing side, as the executor
        (ProtectiveKind.TAKE_PROFIT_MARKET, Decimal("115.0")),
    }
    [held] = h.snapshots.positions()
    assert (held.symbol, held.stop_loss) == ("BTCUSDT", 95.0)
    with closing(h.reader()) as store:
        [position] = store.open_positions()
    assert position.signal_open_time_ms == SIGNAL
    assert "entry_found" in h.snapshots.discrepancies()


def test_an_unconfirmed_entry_the_exchange_never_saw_is_void_and_frees_the_slot(tmp_path):
    """Hole 2: a reconciliation that finds the exchange flat settles the entry and frees the slot."""
    settled: list[frozenset[str]] = []
    h = Harness(tmp_path, on_settled=lambda open_symbols, _since: settled.append(open_symbols)).start()
    h.send(taken())
    h.send(
        OrderStateChanged(
            symbol="BTCUSDT", client_id=cid(Leg.ENTRY), leg=Leg.ENTRY, status="submitted", side="BUY"
        )
    )
    h.send(EntryFinished(symbol="BTCUSDT", signal_open_time_ms=SIGNAL, outcome="unconfirmed"))
    assert settled[-1] == frozenset()  # nothing open anywhere: every slot may go
    with closing(h.reader()) as store:
        assert store.order(cid(Leg.ENTRY)).status == "expired"
    h.exchange.set_position("BTCUSDT", "0.010")  # a position appearing later is not that entry's
    h.send(Reconcile(reason="later"))
    assert "unknown_position" in h.snapshots.discrepancies()


def test_a_flatten_by_reconciliation_stores_the_pnl_its_fill_reports(h):
    """Hole 6: ``flattened_unprotected`` closes with the exit price at once and the PnL its fill reports: read
    from the account's fills right away (the user stream may be down), and the stream's fill agrees."""
    h.exchange.set_position("BTCUSDT", "0.010")
    h.exchange.mark = 100.5
    h.send(opened())  # the ledger holds it; the exchange has no stop for it
    h.exchange.fail(
        "place_protective", Rejected("POST /fapi/v1/algoOrder", -2021, "Order would immediately trigger.")
    )
    h.send(Reconcile(reason="test"))
    with closing(h.reader()) as store:
        [trade] = store.trades()
        close_id = next(o.client_id for o in store.orders() if o.leg == "C")
    assert (trade.close_reason, trade.exit_price, trade.realized_pnl) == (
        "flattened_unprotected",
        100.5,
        0.005,
    )
    h.send(fill(close_id, Side.SELL, cum="0.010", price=100.5, rp=0.005))
    with closing(h.reader()) as store:
        [trade] = store.trades()
    assert (trade.close_reason, trade.exit_price, trade.realized_pnl) == (
        "flattened_unprotected",
        100.5,
        0.005,
    )
    assert h.snapshots.money().realized_pnl == {("BTCUSDT", "USDT"): Decimal("0.005")}  # counted once


def test_stop_cancelled_behind_our_back_triggers_a_repair(h):
    protected(h.exchange)
    h.send(opened())
    h.exchange.finish_algo(cid(Leg.STOP), AlgoStatus.CANCELED)
    h.send(algo_update(Leg.STOP, AlgoStatus.CANCELED))
    assert h.exchange.called("place_protective") == [cid(Leg.STOP) + "-r1"]


def test_a_reconciliation_held_back_by_our_own_budget_is_deferred_not_an_error(tmp_path):
    """During a warm-up the bulk reads fill the minute: the reads wait for weight, nothing was sent, and
    that is a notice (one event per streak), not a venue failure."""
    h = Harness(tmp_path)
    spent = BudgetSpent("weight budget", "40 weight would wait 18.1 s (used 2325/2400)", retry_after_s=18.1)
    h.exchange.fail("positions", spent, spent, spent)
    h.start()  # its start-up reconciliation and the harness's are both deferred
    h.send(Reconcile(reason="unsettled"))  # and a third
    assert not h.snapshots.reconciled.is_set()
    h.send(Reconcile(reason="unsettled"))
    assert h.snapshots.reconciled.is_set()
    assert h.snapshots.counters()["reconcile_errors"] == 0
    with closing(h.reader()) as store:
        assert [e.kind for e in store.events(kind="reconcile_deferred")] == ["reconcile_deferred"]
        assert store.events(kind="reconcile_failed") == []


def test_gateway_errors_do_not_kill_the_ledger(tmp_path):
    h = Harness(tmp_path)
    h.exchange.fail("positions", transient(), transient())
    h.start()  # its start-up reconciliation and the harness's both fail
    assert not h.snapshots.reconciled.is_set()
    h.send(Reconcile(reason="retry"))
    assert h.snapshots.reconciled.is_set()
    assert h.snapshots.counters()["reconcile_errors"] == 2
    protected(h.exchange)
    h.send(opened())
    h.exchange.set_position("BTCUSDT", "0")
    h.exchange.fail("cancel_algo_order", transient(), transient())
    h.send(flat())
    assert len(h.events.of(PositionClosed)) == 1
    h.send(Reconcile(reason="cleanup"))  # the orphans whose cancel failed are cancelled now
    assert h.exchange.open_ids() == set()


def test_quantity_mismatch_adopts_the_exchange_quantity(h):
    protected(h.exchange)
    h.send(opened())
    h.exchange.set_position("BTCUSDT", "0.007")
    h.send(Reconcile(reason="test"))
    assert h.snapshots.positions()[0].qty == Decimal("0.007")
    assert h.snapshots.discrepancies() == {"quantity_mismatch": 1}


def test_periodic_reconciliation_runs_on_its_timer(tmp_path):
    h = Harness(tmp_path, reconcile_interval_s=0.02).start()
    assert h.snapshots.wait_for("reconciles", 4, timeout=5)


def test_restart_reconciles_to_the_exchange_truth(tmp_path):
    exchange = FakeExchange()
    first = Harness(tmp_path, exchange).start()
    protected(exchange)
    protected(exchange, "ETHUSDT")
    first.send(opened(), opened("ETHUSDT"))
    first.stop()
    # While the bot was down: BTC's stop fired; ETH is still open and protected.
    exchange.finish_algo(cid(Leg.STOP))
    exchange.set_position("BTCUSDT", "0")

    second = Harness(tmp_path, exchange).start()
    assert second.snapshots.reconciled.is_set()
    [closed] = second.events.of(PositionClosed)
    assert (closed.symbol, closed.reason) == ("BTCUSDT", "reconciled_flat")
    assert exchange.open_ids() == {cid(Leg.STOP, "ETHUSDT"), cid(Leg.TAKE_PROFIT, "ETHUSDT")}
    assert second.latest_open() == {"ETHUSDT"}
    assert [p.symbol for p in second.snapshots.positions()] == ["ETHUSDT"]
    assert second.snapshots.discrepancies() == {"flat_on_exchange": 1, "orphan_algo_order": 1}


def test_corrupt_ledger_fails_the_start_naming_the_file(tmp_path):
    (tmp_path / "ledger.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(LedgerStoreError, match=r"ledger\.sqlite3"):
        Harness(tmp_path).start()


def test_reconciliations_between_the_periodic_ones_read_only_the_held_symbols_orders(h):
    """A full read lists every open order of the account (40 weight a list); one a second while something
    is unsettled would spend Binance's 2,400 a minute in half a minute: those read per held symbol."""
    protected(h.exchange)
    h.send(opened())
    h.exchange.calls.clear()
    h.send(Reconcile(reason="unsettled"))
    assert h.exchange.called("open_algo_orders") == ["USDT_M:BTCUSDT"]
    assert h.exchange.called("open_orders") == ["USDT_M:BTCUSDT"]
    h.exchange.calls.clear()
    h.send(Reconcile(reason="periodic"))  # the periodic one still sees every symbol's (orphans anywhere)
    assert h.exchange.called("open_algo_orders") == ["USDT_M:*"]
    assert h.exchange.called("open_orders") == ["USDT_M:*"]
