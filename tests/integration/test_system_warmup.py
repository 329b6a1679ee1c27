"""A cold start spends request weight only on what it needs; a process restart and a pair restart less.

Three pairs × five timeframes against a local exchange the test holds (``replay.exchange_url``), so it
outlives the bot and counts every REST request the bot made (``stats.requests``). At a cold start: one read
of history per pair timeframe, in its cheapest shape; the venue's clock synced once; the account's settings
and balances read once, and only the settings that differ changed (after the history: they are not needed
before a symbol's first entry); no ``GET /fapi/v1/time`` before reads.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from nancemakina.actors.domain.strategy import StrategyParams
from nancemakina.actors.exchange.kline_pages import plan_weight
from nancemakina.actors.sim.config import SimConfig
from nancemakina.actors.sim.server import LocalExchange
from nancemakina.actors.tree.pair_timeframe import WARMUP_EXTRA
from nancemakina.supervisor import RootSupervisor
from tests.integration.system_support import MINUTE_MS, Cleanup, SliceMaker, bot_config, load, save_config
from tests.waiting import wait_until

PAIRS = ("BTC_USDT", "ETH_USDT", "SOL_USDT")
TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h")
HISTORY = 1_500
"""Candles before the replay starts."""
HISTORY_CANDLES = StrategyParams(short_period=5, long_period=20).warmup_candles() + WARMUP_EXTRA


def requests(exchange: LocalExchange) -> Counter[str]:
    return Counter(exchange.status()["stats"]["requests"])


def start(tmp_path: Path, exchange: LocalExchange, cleanup: Cleanup, name: str) -> RootSupervisor:
    raw = bot_config(tmp_path / name, [], pairs=PAIRS, timeframes=TIMEFRAMES, replay={"exit_at_end": False})
    raw["replay"]["exchange_url"] = exchange.rest_url
    raw["global_settings"]["v1_strategy"] |= {"default_leverage": 10, "margin_mode": "ISOLATED"}
    daemon = cleanup.daemon(load(save_config(tmp_path / f"{name}.yaml", raw)))
    daemon.start()
    return daemon


def delta(before: Counter[str], after: Counter[str]) -> dict[str, Any]:
    return {k: v for k, v in (after - before).items() if v}


def test_warm_up_reads_once_what_it_needs_and_a_restart_only_its_history(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(HISTORY + 60)
    start_ms = data.last_open - 59 * MINUTE_MS
    exchange = cleanup.exchange(
        LocalExchange(
            [str(data.btc), str(data.eth), str(data.sol)],
            SimConfig(port=0, paused=True, start_ms=start_ms, speed=1.0),  # real time: no close meanwhile
        )
    )
    before = requests(exchange)
    daemon = start(tmp_path, exchange, cleanup, "cold")
    cold = delta(before, requests(exchange))
    keys = len(PAIRS) * len(TIMEFRAMES)
    # one history read per pair timeframe, of exactly the candles needed (weight 1 below 100 candles)
    assert cold["GET /fapi/v1/klines"] == keys
    # the venue's clock: synced once for the whole process; no /time before any klines read
    assert cold["GET /api/v3/time"] == 1
    assert daemon.connections.clock.syncs == 1
    assert cold.get("GET /fapi/v1/time", 0) <= 1  # at most the market stream's subscription, once
    # the account: read once (settings of every symbol, balances), changed only where it differs
    assert cold["GET /fapi/v1/symbolConfig"] == 1
    assert cold["GET /fapi/v3/balance"] == 1
    assert daemon.connections.account.reads == 2
    # a fresh account (leverage 20, cross margin): each pair's two settings, changed after every history read
    wait_until(
        lambda: requests(exchange)["POST /fapi/v1/marginType"] - before["POST /fapi/v1/marginType"] == 3,
        10,
        "the pairs' margin type set",
    )
    cold = delta(before, requests(exchange))
    assert cold["POST /fapi/v1/leverage"] == len(PAIRS)
    assert cold["POST /fapi/v1/marginType"] == len(PAIRS)
    # bulk weight: the history reads (weight 1 below 100 candles) and those six late changes, nothing else
    bulk = daemon.connections.budget.snapshot().charged_bulk
    assert bulk == keys * plan_weight(HISTORY_CANDLES) + 2 * len(PAIRS) == keys * 1 + 6

    # a pair restart reads only its own history: no clock, no account
    before = requests(exchange)
    assert daemon.restart_pair("ETHUSDT")
    wait_until(
        lambda: requests(exchange)["GET /fapi/v1/klines"] - before["GET /fapi/v1/klines"] == len(TIMEFRAMES),
        10,
        "the restarted pair's history",
    )
    wait_until(lambda: daemon.pair_board.warm({("ETHUSDT", tf) for tf in TIMEFRAMES}), 10, "ETHUSDT warm")
    assert delta(before, requests(exchange)) == {"GET /fapi/v1/klines": len(TIMEFRAMES)}

    # a process restart: the account already has the pairs' settings, nothing is changed again
    daemon.shutdown()
    before = requests(exchange)
    again = start(tmp_path, exchange, cleanup, "again")
    warm = delta(before, requests(exchange))
    assert warm["GET /fapi/v1/klines"] == keys
    assert "POST /fapi/v1/leverage" not in warm
    assert "POST /fapi/v1/marginType" not in warm
    assert warm["GET /fapi/v1/symbolConfig"] == 1
    assert again.connections.clock.syncs == 1
