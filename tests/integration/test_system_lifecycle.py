"""A trade's whole life, through every actor, against the local exchange, one candle at a time.

signal → MARKET entry → STOP_MARKET + TAKE_PROFIT_MARKET on the exchange's algo book → one of them fills
→ the ledger closes the trade and cancels the other → flat on both sides. Shown for LONG and SHORT, closed
by the stop and by the take-profit; the trades are picked by running the backtester on the same data, and
the ledger's trades must be the backtester's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nancemakina.actors.backtest.engine import Trade
from nancemakina.actors.domain.fills import ExitReason
from nancemakina.actors.domain.model import Direction, Leg, client_order_id
from nancemakina.actors.tree.ledger.ledger_records import TERMINAL
from tests.integration.system_support import (
    Cleanup,
    SliceMaker,
    StepClock,
    backtest,
    bot_config,
    entry_step,
    exit_step,
    ledger,
    load,
    local_exchange,
    save_config,
)

KINDS = {ExitReason.STOP_LOSS: "STOP_MARKET", ExitReason.TAKE_PROFIT: "TAKE_PROFIT_MARKET"}
LEGS = {ExitReason.STOP_LOSS: Leg.STOP, ExitReason.TAKE_PROFIT: Leg.TAKE_PROFIT}


def pick_trades(trades: list[Trade], last_open: int) -> list[Trade]:
    """The first trade of each (direction, exit reason) whose symbol stays flat after its exit candle."""
    entries = {(t.symbol, entry_step(t)) for t in trades}
    picked: dict[tuple[Direction, ExitReason], Trade] = {}
    for t in trades:
        key = (t.direction, t.exit_reason)
        if t.exit_reason in KINDS and exit_step(t) <= last_open and (t.symbol, exit_step(t)) not in entries:
            picked.setdefault(key, t)
    return list(picked.values())


def exchange_side(state: dict[str, Any], symbol: str) -> tuple[str | None, set[tuple[str, float, str]]]:
    position = state["positions"].get(symbol)
    algos = {
        (a["type"], float(a["triggerPrice"]), a["clientAlgoId"])
        for a in state["openAlgoOrders"]
        if a["symbol"] == symbol
    }
    return (position["amount"] if position else None), algos


def test_entries_get_both_protective_orders_and_one_exit_cancels_the_other(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(800)
    config = load(save_config(tmp_path / "config.yaml", bot_config(tmp_path, [data.btc, data.eth])))
    expected = backtest(config).trades
    picked = pick_trades(expected, data.last_open)
    assert {(t.direction, t.exit_reason) for t in picked} == {
        (d, r) for d in Direction for r in (ExitReason.STOP_LOSS, ExitReason.TAKE_PROFIT)
    }, "the slice must hold a LONG and a SHORT closed by each of stop and take-profit"

    daemon = cleanup.daemon(config)
    exchange = local_exchange(daemon)
    clock = StepClock(exchange)
    daemon.start()

    checkpoints = sorted({entry_step(t) for t in picked} | {exit_step(t) for t in picked})
    for at in checkpoints:
        clock.run_through(at)
        state = exchange.state()
        with ledger(config.state_path()) as store:
            open_positions = {p.symbol: p for p in store.open_positions()}
            closed = {(p.symbol, p.signal_open_time_ms): p for p in store.trades()}
            orders = {o.client_id: o for o in store.orders()}
        for t in picked:
            stop_id = client_order_id(t.symbol, t.signal_open_time_ms, Leg.STOP)
            take_id = client_order_id(t.symbol, t.signal_open_time_ms, Leg.TAKE_PROFIT)
            amount, algos = exchange_side(state, t.symbol)
            if at == entry_step(t):
                held = open_positions[t.symbol]
                assert (held.signal_open_time_ms, held.direction) == (t.signal_open_time_ms, t.direction)
                assert (held.entry_price, held.qty) == (t.entry_price, t.quantity)
                assert (held.stop_loss, held.take_profit) == (t.stop_loss, t.take_profit)
                sign = "" if t.direction is Direction.LONG else "-"
                assert amount == f"{sign}{t.quantity}"
                assert algos == {
                    ("STOP_MARKET", t.stop_loss, stop_id),
                    ("TAKE_PROFIT_MARKET", t.take_profit, take_id),
                }, f"{t.symbol} {t.direction}: both protective orders must rest on the exchange"
            if at == exit_step(t):
                trade = closed[(t.symbol, t.signal_open_time_ms)]
                assert trade.close_reason == t.exit_reason.value
                assert trade.exit_price == t.exit_price
                assert t.symbol not in open_positions
                assert amount is None, f"{t.symbol} must be flat on the exchange after its {t.exit_reason}"
                assert algos == set(), f"{t.symbol}: the sibling of the filled order must be cancelled"
                fired = LEGS[t.exit_reason]
                sibling = take_id if fired is Leg.STOP else stop_id
                fired_id = stop_id if fired is Leg.STOP else take_id
                assert orders[sibling].status == "canceled"
                assert orders[fired_id].status in TERMINAL - {"canceled"}

    with ledger(config.state_path()) as store:
        done = [p for p in store.trades() if (p.closed_at_ms or 0) <= checkpoints[-1] + 60_000]
    replayed = [
        (p.symbol, p.direction, p.signal_open_time_ms, p.entry_price, p.qty, p.stop_loss, p.take_profit,
         p.exit_price, p.close_reason)
        for p in done
    ]  # fmt: skip
    backtested = [
        (t.symbol, t.direction, t.signal_open_time_ms, t.entry_price, t.quantity, t.stop_loss, t.take_profit,
         t.exit_price, t.exit_reason.value)
        for t in expected
        if exit_step(t) <= checkpoints[-1]
    ]  # fmt: skip
    assert sorted(replayed) == sorted(backtested)
    # every entry the pairs announced to the market reader went out (none waited out its hold)
    priority = daemon.priority.stats()
    assert priority.begun >= len(picked)
    assert priority.pending == 0
    assert priority.ended + priority.expired == priority.begun
