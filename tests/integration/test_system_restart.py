"""kill -9 with an open position: the exchange keeps the truth, a restarted bot reconciles to it and trades on.

The local exchange runs in the test process (so it outlives the bot); the bot is a real
``python -m actors run`` process paired with it through ``replay.exchange_url``. The test holds the
replay clock with its own pacer, so the kill lands at a known candle: right after an entry was protected.
"""

from __future__ import annotations

import signal
from pathlib import Path

from nancemakina.actors.domain.model import Direction, Leg, client_order_id
from nancemakina.actors.sim.config import SimConfig
from nancemakina.actors.sim.server import LocalExchange
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
    save_config,
)
from tests.waiting import wait_until

DISCREPANCIES = {
    "direction_mismatch",
    "flat_on_exchange",
    "naked_position",
    "quantity_mismatch",
    "unknown_position",
}


def test_kill_9_with_an_open_position_then_restart_reconciles_and_carries_on(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(400)
    raw = bot_config(tmp_path, [data.btc, data.eth])
    offline = load(save_config(tmp_path / "offline.yaml", raw))
    t = next(x for x in backtest(offline).trades if exit_step(x) - entry_step(x) >= 10 * MINUTE_MS)
    costs = offline.backtesting  # the exchange fills as the backtester assumes
    exchange = cleanup.exchange(
        LocalExchange(
            [str(data.btc), str(data.eth)],
            SimConfig(
                port=0,
                paused=True,
                updates_per_candle=1,
                slippage_pct=costs.slippage_percent,
                fee_pct=costs.fee_percent,
            ),
        )
    )
    clock = StepClock(exchange)
    raw["replay"]["exchange_url"] = exchange.rest_url
    path = save_config(tmp_path / "config.yaml", raw)
    config = load(path)
    state = config.state_path()
    sign = "" if t.direction is Direction.LONG else "-"

    def pacers() -> dict[str, int]:
        return {k: v for k, v in exchange.status()["pacers"].items() if k != clock.pacer}

    first = cleanup.bot(path, tmp_path / "bot1.log")
    wait_until(pacers, 60.0, "the first bot to start pacing the replay")
    (first_pacer,) = pacers()
    clock.run_through(entry_step(t))
    with ledger(state) as store:
        assert [p.signal_open_time_ms for p in store.open_positions() if p.symbol == t.symbol] == [
            t.signal_open_time_ms
        ]

    first.signal(signal.SIGKILL)
    assert first.wait(10.0) == -signal.SIGKILL
    truth = exchange.state()
    assert truth["positions"][t.symbol]["amount"] == f"{sign}{t.quantity}"
    stops = [a for a in truth["openAlgoOrders"] if a["symbol"] == t.symbol and a["type"] == "STOP_MARKET"]
    assert [float(a["triggerPrice"]) for a in stops] == [t.stop_loss]

    second = cleanup.bot(path, tmp_path / "bot2.log")
    wait_until(lambda: len(pacers()) == 2, 60.0, "the restarted bot to reconcile, warm up and pace")
    (second_pacer,) = set(pacers()) - {first_pacer}
    after = exchange.state()
    assert after["positions"] == truth["positions"]  # no second entry, nothing closed
    stops = [a for a in after["openAlgoOrders"] if a["symbol"] == t.symbol and a["type"] == "STOP_MARKET"]
    assert [(a["clientAlgoId"], float(a["triggerPrice"])) for a in stops] == [
        (client_order_id(t.symbol, t.signal_open_time_ms, Leg.STOP), t.stop_loss)
    ]

    async def entries() -> list[str]:
        return [o.client_id for o in exchange.sim.book.orders.values() if o.symbol == t.symbol]

    assert exchange.call(entries()) == [client_order_id(t.symbol, t.signal_open_time_ms, Leg.ENTRY)]
    with ledger(state) as store:
        held = [p for p in store.open_positions() if p.symbol == t.symbol]
        assert [(p.signal_open_time_ms, p.qty, p.stop_loss) for p in held] == [
            (t.signal_open_time_ms, t.quantity, t.stop_loss)
        ]
    assert not DISCREPANCIES & set(event_kinds(state)), "the ledger's record matched the exchange"

    # The restarted bot joined after the killed one had acked the entry candle: carry on from there.
    exchange.unregister_pacer(first_pacer)
    exchange.ack(second_pacer, entry_step(t))
    clock.run_through(exit_step(t))
    with ledger(state) as store:
        closed = [p for p in store.trades() if p.signal_open_time_ms == t.signal_open_time_ms]
        assert [(p.close_reason, p.exit_price) for p in closed] == [(t.exit_reason.value, t.exit_price)]
    assert t.symbol not in exchange.state()["positions"]

    second.signal(signal.SIGTERM)
    assert second.wait(config.supervisor.shutdown_timeout_s + 5.0) == 0, second.output()[-3000:]
