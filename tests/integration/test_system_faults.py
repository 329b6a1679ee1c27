"""The whole bot under the local exchange's faults: each fault its own test, real actors throughout.

Where a fault must hit a precise moment (an entry, an open position) the test holds the replay clock with
its own pacer (:class:`StepClock`) and picks the moment from the backtester's trades on the same data.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nancemakina.actors.backtest.engine import Trade
from nancemakina.actors.domain.model import ContractType, Decision, Direction, Leg, client_order_id
from nancemakina.actors.sim.server import LocalExchange
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore
from tests.integration.system_support import (
    MINUTE_MS,
    Cleanup,
    SliceMaker,
    StepClock,
    backtest,
    bot_config,
    entry_step,
    event_kinds,
    exit_step,
    ledger,
    load,
    local_exchange,
    save_config,
)
from tests.waiting import wait_until


def first_trade(trades: list[Trade]) -> Trade:
    """The first trade of the data: its entry candle is where the fault is aimed."""
    return trades[0]


def decision_keys(decisions: Iterable[Decision]) -> list[tuple[object, ...]]:
    return sorted(
        (d.decided_open_time_ms, d.symbol, d.signal_open_time_ms, d.direction, d.outcome, d.reason, d.entry,
         d.stop_loss, d.take_profit)
        for d in decisions
    )  # fmt: skip


def test_dropped_websockets_lose_no_candle_and_repeat_none(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(1500)
    config = load(save_config(tmp_path / "config.yaml", bot_config(tmp_path, [data.btc, data.eth])))
    expected = backtest(config)
    daemon = cleanup.daemon(config)
    exchange = local_exchange(daemon)
    clock = StepClock(exchange)
    daemon.start()

    board = daemon.boards[ContractType.USDT_M]
    frozen = data.last_open - 700 * MINUTE_MS
    clock.run_through(frozen)
    before = board.snapshot()
    ups = event_kinds(config.state_path()).count("user_stream_up")

    async def release_while_down() -> bool:
        # Atomic on the exchange's loop: the next candle closes while no market client is connected.
        sim = exchange.sim
        if sim.hub.status()["market_clients"]:
            return False
        sim.pacers.ack(clock.pacer, frozen)
        return True

    for _ in range(20):  # the bot's reconnect backoff is jittered from zero: it may win a round
        assert exchange.drop_connections() >= 1
        if exchange.call(release_while_down()):
            break
    else:
        raise AssertionError("the bot always reconnected before the next candle could close")
    wait_until(lambda: clock.bot_acked() >= frozen + MINUTE_MS, 30.0, "the bot to backfill the missed candle")
    # Markers of steps the user-data stream missed never come: let it reconnect before the clock runs on.
    wait_until(
        lambda: (
            exchange.status()["clients"]["user_clients"] == 1
            and event_kinds(config.state_path()).count("user_stream_up") > ups
        ),
        30.0,
        "the user-data stream to reconnect",
    )
    clock.release()

    assert daemon.replay.finished(timeout_s=60.0)
    statuses = wait_until(
        lambda: (
            (s := daemon.pair_board.statuses)
            and all(
                s[(sym, "1m")].strategy.last_open_time_ms == data.last_open for sym in ("BTCUSDT", "ETHUSDT")
            )
            and s
        ),
        30.0,
        "both pairs to process the last candle",
    )
    after = board.snapshot()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert statuses[(symbol, "1m")].strategy.candles == data.rows, f"{symbol}: a candle never arrived"
        assert statuses[(symbol, "1m")].gaps_backfilled == 0  # the stream repaired it before the pair saw
        assert not statuses[(symbol, "1m")].unrepaired_gap
    assert after.sequencer.delivered == 2 * data.rows, "each closed kline routed exactly once"
    assert after.reconnects > before.reconnects
    assert after.sequencer.candles_backfilled > before.sequencer.candles_backfilled
    assert not after.unrepaired
    with ledger(config.state_path()) as store:
        replayed = [r.decision for r in store.decisions()]
    assert decision_keys(replayed) == decision_keys(expected.decisions)


def exchange_orders(exchange: LocalExchange, symbol: str) -> list[tuple[str, str, bool]]:
    """(client id, status, reduce-only) of every regular order the exchange holds for ``symbol``."""

    async def read() -> list[tuple[str, str, bool]]:
        book = exchange.sim.book
        return [(o.client_id, o.status, o.reduce_only) for o in book.orders.values() if o.symbol == symbol]

    return exchange.call(read())


def protective(state: dict[str, Any], symbol: str) -> set[tuple[str, float]]:
    return {(a["type"], float(a["triggerPrice"])) for a in state["openAlgoOrders"] if a["symbol"] == symbol}


def status(store: LedgerStore, client_id: str) -> str | None:
    order = store.order(client_id)
    return None if order is None else order.status


def signed_amount(t: Trade) -> str:
    return f"{'' if t.direction is Direction.LONG else '-'}{t.quantity}"


def test_rate_limit_bursts_are_waited_out(tmp_path: Path, slices: SliceMaker, cleanup: Cleanup) -> None:
    data = slices(300)
    # A burst longer than a pair's restart budget: waiting it out must not spend that budget.
    raw = bot_config(tmp_path, [data.btc, data.eth], supervisor={"pair_max_restarts": 1})
    config = load(save_config(tmp_path / "config.yaml", raw))
    t = first_trade(backtest(config).trades)
    daemon = cleanup.daemon(config)
    exchange = local_exchange(daemon)
    exchange.fail_next("429", count=3, path="/fapi/v1/klines", retry_after_s=1)  # the warm-up's requests
    clock = StepClock(exchange)
    daemon.start(ready_timeout_s=30.0)
    assert daemon.pair_board.warm({("BTCUSDT", "1m"), ("ETHUSDT", "1m")})

    clock.run_through(entry_step(t) - MINUTE_MS)
    exchange.fail_next("429", count=1, path="/fapi/v1/order", method="POST", retry_after_s=1)
    clock.run_through(entry_step(t))

    budget = daemon.connections.budget
    assert budget.responses_429 == 4
    assert exchange.status()["stats"]["faults_fired"]["429"] == 4
    # Waited out, not retried at once: the entry filled (the exchange's wall clock) a Retry-After after its 429.
    [refused] = [at for at, kind, what in exchange.sim.faults.log if kind == "429" and "POST" in what]
    [filled] = [e["start"] for e in exchange.exposure()["episodes"] if e["symbol"] == t.symbol][:1]
    assert filled - refused >= 0.95
    state = exchange.state()
    assert state["positions"][t.symbol]["amount"] == signed_amount(t)  # entered once, after the wait
    assert protective(state, t.symbol) == {
        ("STOP_MARKET", t.stop_loss),
        ("TAKE_PROFIT_MARKET", t.take_profit),
    }
    with ledger(config.state_path()) as store:
        assert [p.signal_open_time_ms for p in store.open_positions() if p.symbol == t.symbol] == [
            t.signal_open_time_ms
        ]
    tree = daemon.status()
    assert tree.state.value == "running"
    assert [(p.name, p.state.value, p.total_restarts) for p in tree.groups] == [
        ("BTCUSDT", "running", 0),
        ("ETHUSDT", "running", 0),
    ]
    assert daemon.tree.healthy()


def test_rejected_stop_flattens_the_position_and_alerts(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(300)
    raw = bot_config(tmp_path, [data.btc, data.eth], execution={"stop_placement_retries": 0})
    config = load(save_config(tmp_path / "config.yaml", raw))
    t = first_trade(backtest(config).trades)
    stop_id = client_order_id(t.symbol, t.signal_open_time_ms, Leg.STOP)
    daemon = cleanup.daemon(config)
    exchange = local_exchange(daemon)
    clock = StepClock(exchange)
    daemon.start()

    clock.run_through(entry_step(t) - MINUTE_MS)
    # Hold the stop's request on the wire so the rejection is armed after the entry has filled.
    exchange.set_latency(1.0, path="/fapi/v1/algoOrder")
    exchange.ack(clock.pacer, entry_step(t) - MINUTE_MS)

    def stop_sent() -> bool:
        with ledger(config.state_path()) as store:
            order = store.order(stop_id)
        return order is not None and order.status == "submitted"

    wait_until(stop_sent, 30.0, "the executor to send the stop")
    exchange.reject_next_order(-2021)
    wait_until(lambda: clock.bot_acked() >= entry_step(t), 30.0, "the entry step to complete")
    exchange.set_latency(0.0)

    state = exchange.state()
    assert t.symbol not in state["positions"], "an unprotected position must be closed at market"
    assert protective(state, t.symbol) == set()
    assert [(cid[-1], status, reduce) for cid, status, reduce in exchange_orders(exchange, t.symbol)] == [
        ("E", "FILLED", False),
        ("C", "FILLED", True),
    ]
    with ledger(config.state_path()) as store:
        assert status(store, stop_id) == "rejected"
        assert status(store, client_order_id(t.symbol, t.signal_open_time_ms, Leg.CLOSE)) == "filled"
        assert t.symbol not in {p.symbol for p in store.open_positions()}
        alerts = [(e.kind, e.symbol) for e in store.events(kind="alert:stop_failed")]
    assert alerts == [("alert:stop_failed", t.symbol)]
    assert exchange.status()["stats"]["faults_fired"]["reject"] == 1


def test_entry_answered_503_unknown_opens_exactly_one_position(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(300)
    config = load(save_config(tmp_path / "config.yaml", bot_config(tmp_path, [data.btc, data.eth])))
    t = first_trade(backtest(config).trades)
    entry_id = client_order_id(t.symbol, t.signal_open_time_ms, Leg.ENTRY)
    daemon = cleanup.daemon(config)
    exchange = local_exchange(daemon)
    clock = StepClock(exchange)
    daemon.start()

    clock.run_through(entry_step(t) - MINUTE_MS)
    # Executed by the exchange, answered 503 -1007 "execution status unknown".
    exchange.fail_next("unknown", count=1, path="/fapi/v1/order", method="POST")
    clock.run_through(entry_step(t))

    assert exchange.status()["stats"]["faults_fired"]["unknown"] == 1
    state = exchange.state()
    assert state["positions"][t.symbol]["amount"] == signed_amount(t)
    assert exchange_orders(exchange, t.symbol) == [(entry_id, "FILLED", False)]
    assert protective(state, t.symbol) == {
        ("STOP_MARKET", t.stop_loss),
        ("TAKE_PROFIT_MARKET", t.take_profit),
    }
    with ledger(config.state_path()) as store:
        held = [p for p in store.open_positions() if p.symbol == t.symbol]
        assert [(p.signal_open_time_ms, p.qty, p.entry_price) for p in held] == [
            (t.signal_open_time_ms, t.quantity, t.entry_price)
        ]
        assert status(store, entry_id) == "filled"


def test_listen_key_expiry_recovers_and_later_fills_reach_the_ledger(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(300)
    config = load(save_config(tmp_path / "config.yaml", bot_config(tmp_path, [data.btc, data.eth])))
    trades = backtest(config).trades
    t = next(x for x in trades if exit_step(x) - entry_step(x) >= 5 * MINUTE_MS)
    daemon = cleanup.daemon(config)
    exchange = local_exchange(daemon)
    clock = StepClock(exchange)
    daemon.start()

    clock.run_through(entry_step(t) + MINUTE_MS)
    state = config.state_path()
    ups = event_kinds(state).count("user_stream_up")
    assert len(exchange.expire_listen_key()) == 1
    wait_until(
        lambda: (
            "listen_key_expired" in event_kinds(state)
            and event_kinds(state).count("user_stream_up") > ups
            and exchange.status()["clients"]["user_clients"] == 1
        ),
        30.0,
        "the user-data stream to come back on a new listenKey",
    )
    clock.run_through(exit_step(t))

    with ledger(state) as store:
        closed = [p for p in store.trades() if p.signal_open_time_ms == t.signal_open_time_ms]
        assert [(p.close_reason, p.exit_price) for p in closed] == [(t.exit_reason.value, t.exit_price)]
        assert t.symbol not in {p.symbol for p in store.open_positions()}
    after = exchange.state()
    assert t.symbol not in after["positions"]
    assert protective(after, t.symbol) == set()
