"""Isolation: a crash in one pair's actor restarts that pair only; a restart storm parks it, nothing else.

Three pairs stream from the local exchange at a fixed speed (no lock-step: the clock does not wait for the
crashed pair, as the live market would not). The crash is a malformed message told through the router, which
raises inside the actor's handler like any bug would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from nancemakina.actors.messages import KlineClosed
from nancemakina.supervisor import RootSupervisor
from tests.integration.system_support import (
    FIRST_OPEN,
    MINUTE_MS,
    Cleanup,
    SliceMaker,
    bot_config,
    event_kinds,
    load,
    local_exchange,
    save_config,
)
from tests.waiting import wait_until

PAIRS = ("BTC_USDT", "ETH_USDT", "SOL_USDT")
HISTORY = 300
"""Candles before the replay starts: REST history for every warm-up, including a restarted pair's."""


def start_streaming(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup, **supervisor: Any
) -> RootSupervisor:
    data = slices(1500)
    raw = bot_config(
        tmp_path,
        [data.btc, data.eth, data.sol],
        pairs=PAIRS,
        replay={"speed": 3000, "exit_at_end": False, "start": iso(FIRST_OPEN + HISTORY * MINUTE_MS)},
        supervisor=supervisor,
    )
    daemon = cleanup.daemon(load(save_config(tmp_path / "config.yaml", raw)))
    daemon.start()
    return daemon


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def crash(daemon: RootSupervisor, symbol: str) -> None:
    assert daemon.router.tell(symbol, "1m", KlineClosed(kline=cast("Any", "not a kline")))


def last_open(daemon: RootSupervisor, symbol: str) -> int:
    return daemon.pair_board.statuses[(symbol, "1m")].strategy.last_open_time_ms or 0


def generation(daemon: RootSupervisor, symbol: str) -> tuple[int, bool]:
    group = daemon.status()
    pair = next(p for p in group.groups if p.name == symbol)
    child = next(c for c in pair.children if not c.child_id.endswith(":executor"))  # the timeframe actor
    return child.generation, child.alive


def await_generation(daemon: RootSupervisor, symbol: str, expected: int) -> None:
    """Until the pair's actor of generation ``expected`` runs and has warmed up (it starts cold: the board
    says so before its supervisor shows it alive, and warm once its history is in)."""
    wait_until(
        lambda: (
            generation(daemon, symbol) == (expected, True) and daemon.pair_board.statuses[(symbol, "1m")].warm
        ),
        30.0,
        f"{symbol} generation {expected} warm",
    )


def progress(daemon: RootSupervisor, symbol: str) -> tuple[int, int]:
    """(candles fed to the strategy, open time of the last one)."""
    strategy = daemon.pair_board.statuses[(symbol, "1m")].strategy
    return strategy.candles, strategy.last_open_time_ms or 0


def assert_contiguous(daemon: RootSupervisor, symbol: str, since: tuple[int, int]) -> None:
    """Since ``since``, one more candle per minute of candle time: none skipped, none twice, none repaired."""
    status = daemon.pair_board.statuses[(symbol, "1m")]
    candles, last = progress(daemon, symbol)
    assert last > since[1]
    assert candles - since[0] == (last - since[1]) // MINUTE_MS, f"{symbol} skipped or repeated a candle"
    assert status.gaps_backfilled == 0, f"{symbol} had to repair a gap"
    assert not status.unrepaired_gap


def test_a_crashed_pair_restarts_alone_while_the_others_keep_streaming(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    daemon = start_streaming(tmp_path, slices, cleanup)
    exchange = local_exchange(daemon)
    router = daemon.router
    others = ("ETHUSDT", "SOLUSDT")
    wait_until(
        lambda: last_open(daemon, "ETHUSDT") > FIRST_OPEN + (HISTORY + 20) * MINUTE_MS, 30.0, "candles"
    )
    refs = {s: router.get(s, "1m") for s in others}
    incarnations = {p.name: p.incarnation for p in daemon.status().groups}
    assert generation(daemon, "BTCUSDT") == (1, True)

    exchange.set_latency(0.5, path="/fapi/v1/klines")  # the restarted pair's REST warm-up takes a while
    streamed = {s: last_open(daemon, s) for s in others}
    baseline = {s: progress(daemon, s) for s in others}
    crash(daemon, "BTCUSDT")
    await_generation(daemon, "BTCUSDT", 2)
    during = {s: last_open(daemon, s) for s in others}
    exchange.set_latency(0.0)
    for symbol in others:  # the others did not wait for the restart
        assert during[symbol] >= streamed[symbol] + 5 * MINUTE_MS, f"{symbol} stalled during the restart"

    exchange.pause()
    wait_until(
        lambda: (
            len({last_open(daemon, s) for s in ("BTCUSDT", *others)}) == 1
            and last_open(daemon, "BTCUSDT") == exchange.clock_ms - MINUTE_MS
        ),
        30.0,
        "every pair to reach the paused clock",
    )
    for symbol in others:
        assert_contiguous(daemon, symbol, baseline[symbol])
        assert router.get(symbol, "1m") is refs[symbol]  # the very same actors
    btc = daemon.pair_board.statuses[("BTCUSDT", "1m")]
    assert btc.warm
    assert not btc.unrepaired_gap
    assert router.get("BTCUSDT", "1m") is not None
    tree = daemon.status()
    assert {p.name: p.incarnation for p in tree.groups} == incarnations  # no pair supervisor was replaced
    assert {p.name: p.total_restarts for p in tree.groups} == {"BTCUSDT": 1, "ETHUSDT": 0, "SOLUSDT": 0}
    assert {p.name: p.state.value for p in tree.groups} == dict.fromkeys(incarnations, "running")
    assert tree.shared is not None
    assert all(c.generation == 1 and c.alive for c in tree.shared.children)


def test_a_restart_storm_parks_the_pair_and_alerts_while_the_rest_runs_on(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    daemon = start_streaming(tmp_path, slices, cleanup, pair_max_restarts=2, pair_restart_period_s=60.0)
    wait_until(lambda: last_open(daemon, "ETHUSDT") > FIRST_OPEN + (HISTORY + 5) * MINUTE_MS, 30.0, "candles")
    baseline = {s: progress(daemon, s) for s in ("ETHUSDT", "SOLUSDT")}
    for expected in (2, 3):
        crash(daemon, "BTCUSDT")
        await_generation(daemon, "BTCUSDT", expected)
    crash(daemon, "BTCUSDT")  # the third restart within the period is over the budget

    def parked() -> bool:
        pair = next(p for p in daemon.status().groups if p.name == "BTCUSDT")
        return pair.state.value == "parked"

    wait_until(parked, 30.0, "BTCUSDT to be parked")
    state = daemon.config.state_path()
    wait_until(lambda: "alert:pair_parked" in event_kinds(state), 30.0, "the pair_parked alert in the ledger")
    assert generation(daemon, "BTCUSDT") == (3, False)

    streamed = {s: last_open(daemon, s) for s in ("ETHUSDT", "SOLUSDT")}
    wait_until(
        lambda: all(last_open(daemon, s) >= streamed[s] + 5 * MINUTE_MS for s in streamed),
        30.0,
        "the other pairs to keep processing after the park",
    )
    tree = daemon.status()
    assert tree.state.value == "running"
    assert {p.name: p.state.value for p in tree.groups} == {
        "BTCUSDT": "parked",
        "ETHUSDT": "running",
        "SOLUSDT": "running",
    }
    assert daemon.tree.healthy()
    for symbol in streamed:
        assert_contiguous(daemon, symbol, baseline[symbol])
