"""Stops against a free-running exchange in its own process: a stop that cannot be placed, a stop the
exchange ends on its own. Judged by the exchange: how long its positions went without a stop, which
orders it got, and (for the PnL) what it reported for the close."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from nancemakina.actors.sim.remote import RemoteExchange
from tests.integration.system_support import Cleanup, SliceMaker
from tests.integration.venue_support import (
    START_MS,
    first_entry,
    read_ledger,
    venue_config,
)
from tests.waiting import wait_until

SPEED = 300
ADOPTIONS = {"unknown_position", "entry_found", "direction_mismatch"}


def orders_of(remote: RemoteExchange, symbol: str) -> list[dict[str, Any]]:
    return [o for o in remote.orders() if o["symbol"] == symbol]


def episodes_of(remote: RemoteExchange, symbol: str) -> list[dict[str, Any]]:
    return [e for e in remote.exposure()["episodes"] if e["symbol"] == symbol]


def test_a_stop_that_cannot_be_placed_is_replaced_by_one_close_at_market_and_nothing_races_it(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(900)
    venue = cleanup.venue([data.btc, data.eth], tmp_path / "venue.log", speed=SPEED, start_ms=START_MS)
    remote = venue.remote
    remote.fail_next("502", count=4, path="/fapi/v1/algoOrder", method="POST")  # every try of the stop
    # The close at market executes at once but its answer takes a second: the executor still holds the
    # entry while reconciliations run every 0.2 s; none may act on the position meanwhile.
    remote.fail_next("slow", count=1, skip=1, seconds=1.0, path="/fapi/v1/order", method="POST")
    config = venue_config(tmp_path, [data.btc, data.eth], venue.url, execution={"reconcile_interval_s": 0.2})
    bot = cleanup.bot(config, tmp_path / "bot.log")

    entry = first_entry(remote)
    symbol = entry["symbol"]
    wait_until(lambda: len(orders_of(remote, symbol)) >= 2, 30.0, "the close at market")
    wait_until(lambda: episodes_of(remote, symbol), 10.0, "the exchange to see the position end")
    first = episodes_of(remote, symbol)[0]
    assert first["ended"] == "flat"
    assert first["end"] - first["start"] < 2.0, f"unprotected for {first['end'] - first['start']:.2f}s"

    def settled() -> bool:
        kinds = read_ledger(tmp_path / "state", lambda s: [e.kind for e in s.events(500)], [])
        return "entry_flattened" in kinds

    wait_until(settled, 20.0, "the ledger to hear the entry was flattened")
    closes = [o for o in orders_of(remote, symbol) if o["reduceOnly"] and o["type"] == "MARKET"]
    assert [o["clientOrderId"][-2:] for o in closes[:1]] == ["-C"]
    assert all(o["status"] == "FILLED" for o in closes[:1])
    events = read_ledger(tmp_path / "state", lambda s: [(e.kind, e.symbol) for e in s.events(1000)], [])
    raced = [k for k, s in events if s == symbol and k in ADOPTIONS]
    assert not raced, f"reconciliation acted on the position the executor was closing: {raced}"
    trades = read_ledger(tmp_path / "state", lambda s: s.trades(symbol=symbol), [])
    assert trades, "the flattened trade is recorded"
    assert trades[0].realized_pnl is not None
    assert trades[0].realized_pnl == pytest.approx(closes[0]["realizedPnl"], abs=1e-6)
    bot.signal(signal.SIGTERM)
    assert bot.wait(30.0) == 0, bot.output()[-3000:]


def test_a_stop_the_exchange_ends_is_closed_at_market_with_its_pnl_recorded(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(900)
    venue = cleanup.venue([data.btc, data.eth], tmp_path / "venue.log", speed=SPEED, start_ms=START_MS)
    remote = venue.remote
    remote.expire_next_stops(1, after_s=0.3, status="EXPIRED")
    config = venue_config(
        tmp_path, [data.btc, data.eth], venue.url, execution={"on_unprotected_position": "flatten"}
    )
    bot = cleanup.bot(config, tmp_path / "bot.log")

    symbol = first_entry(remote)["symbol"]

    def flattened() -> list[Any]:
        trades = read_ledger(tmp_path / "state", lambda s: s.trades(symbol=symbol), [])
        return [t for t in trades if t.close_reason in {"flattened_unprotected", "flattened"}]

    [trade] = wait_until(flattened, 30.0, "the unprotected position to be closed at market")
    closes = [o for o in orders_of(remote, symbol) if o["reduceOnly"] and o["type"] == "MARKET"]
    assert len(closes) == 1
    wait_until(lambda: flattened()[0].realized_pnl is not None, 10.0, "the close's PnL from its fill")
    assert flattened()[0].realized_pnl == pytest.approx(closes[0]["realizedPnl"], abs=1e-6)
    assert trade.exit_price == closes[0]["avgPrice"]
    [naked] = [e for e in episodes_of(remote, symbol) if e["ended"] == "flat"][:1]
    assert naked["end"] - naked["start"] < 1.5, "the ledger closes a position whose stop ended at once"
    bot.signal(signal.SIGTERM)
    assert bot.wait(30.0) == 0, bot.output()[-3000:]
