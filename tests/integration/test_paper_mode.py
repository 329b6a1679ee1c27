"""Paper mode: market data from one exchange, orders filled by an in-process simulated broker.

"Real" market data here is a local exchange replaying real BTC candles (Binance is unreachable from
tests); the bot must trade against its own paper broker and never send an order to the data venue.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from nancemakina.actors.config import parse_config
from nancemakina.actors.sim.config import SimConfig
from nancemakina.actors.sim.server import LocalExchange
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore
from nancemakina.supervisor import RootSupervisor
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"


@pytest.fixture
def market(tmp_path: Path) -> Iterator[LocalExchange]:
    data = tmp_path / "BTCUSDT_PERP_1m_slice.csv"
    data.write_text("\n".join(BTC.read_text().splitlines()[:2500]) + "\n")
    exchange = LocalExchange([str(data)], SimConfig(port=0, speed=6000.0, paused=True, updates_per_candle=1))
    exchange.start()
    yield exchange
    exchange.stop()


def test_paper_trades_on_its_own_broker_with_real_prices(tmp_path: Path, market: LocalExchange) -> None:
    config = parse_config(
        {
            "api": {"mode": "paper"},
            "state_dir": str(tmp_path / "state"),
            "replay": {"exchange_url": market.rest_url},
            "global_settings": {
                "v1_strategy": {
                    "sma_short_period": 3,
                    "sma_long_period": 8,
                    "min_signal_interval_minutes": 0,
                    "indicator_timeframes": ["1m"],
                    "pivot_lookback_candles": 5,
                }
            },
            "pairs": {"BTC_USDT": {"enabled": True}},
            "monitoring": {"enabled": False},
        },
        base_dir=tmp_path,
    )
    daemon = RootSupervisor(config)
    try:
        daemon.start()
        market.resume()

        def opened() -> bool:
            store = LedgerStore.open_read_only(tmp_path / "state" / "ledger.sqlite3")
            try:
                return len(store.trades()) + len(store.open_positions()) >= 2
            finally:
                store.close()

        wait_until(opened, 60, "two paper trades (closed or open)", poll_s=0.1)
        paper = daemon.connections.paper
        assert paper is not None
        state = market.state()
        assert state["positions"] == {}  # the data venue never saw an order
        assert state["openAlgoOrders"] == []
        assert state["balances"] == market.config.balances or all(
            float(v) == float(market.config.balances[k]) for k, v in state["balances"].items()
        )
        broker = paper.state()
        assert broker["positions"] or broker["balances"]["USDT"] != 10_000  # the paper broker did trade
        store = LedgerStore.open_read_only(tmp_path / "state" / "ledger.sqlite3")
        try:
            entries = [o for o in store.orders() if o.client_id.endswith("-E")]
            stops = [o for o in store.orders() if o.client_id.endswith("-S")]
        finally:
            store.close()
        assert entries
        assert stops  # every paper entry got its stop on the paper broker
    finally:
        daemon.shutdown()
        pykka.ActorRegistry.stop_all()
