"""Reload: only the pairs a config change touches restart; an invalid config is refused and the old one kept.

The bot replays in lock-step under a test-held clock, so after each reload the test also proves the tree
still works as a whole: the next candles are processed by exactly the pairs the new config lists.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from nancemakina.actors.runtime.tree import ReloadResult
from nancemakina.supervisor import RootSupervisor
from tests.integration.system_support import (
    FIRST_OPEN,
    MINUTE_MS,
    Cleanup,
    SliceMaker,
    StepClock,
    bot_config,
    load,
    local_exchange,
    save_config,
)
from tests.waiting import wait_until


def tree(daemon: RootSupervisor) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Per pair: its supervisor's incarnation and its children's generations."""
    return {p.name: (p.incarnation, tuple(c.generation for c in p.children)) for p in daemon.status().groups}


def refs(daemon: RootSupervisor) -> dict[str, Any]:
    """The routed 1m actor of every pair (the only timeframe these configs use)."""
    router = daemon.router
    return {symbol: router.get(symbol, tf) for symbol, tf in sorted(router.keys())}


def last_open(daemon: RootSupervisor, symbol: str) -> int | None:
    status = daemon.pair_board.statuses.get((symbol, "1m"))
    return None if status is None else status.strategy.last_open_time_ms


def test_reload_restarts_only_what_changed_and_refuses_invalid_configs(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(600)
    path = tmp_path / "config.yaml"

    def write(pairs: tuple[str, ...], **overrides: dict[str, Any]) -> None:
        raw = bot_config(tmp_path, [data.btc, data.eth, data.sol], pairs=pairs, pair_overrides=overrides)
        save_config(path, raw)

    write(("BTC_USDT", "ETH_USDT"))
    daemon = cleanup.daemon(load(path))
    exchange = local_exchange(daemon)
    clock = StepClock(exchange)
    daemon.start()
    at = FIRST_OPEN + 30 * MINUTE_MS
    clock.run_through(at)
    before, actors = tree(daemon), refs(daemon)
    assert set(before) == {"BTCUSDT", "ETHUSDT"}

    # (i) add a pair: only it starts
    write(("BTC_USDT", "ETH_USDT", "SOL_USDT"))
    result = daemon.reload()
    assert result == ReloadResult(added=("SOLUSDT",), unchanged=("BTCUSDT", "ETHUSDT"))
    after = tree(daemon)
    assert {s: after[s] for s in before} == before
    assert all(refs(daemon)[s] is actors[s] for s in actors)
    wait_until(lambda: "solusdt@kline_1m" in exchange.status()["clients"]["streams"], 10.0, "SOL's stream")
    at += 5 * MINUTE_MS
    clock.run_through(at)
    assert {s: last_open(daemon, s) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")} == dict.fromkeys(
        ("BTCUSDT", "ETHUSDT", "SOLUSDT"), at
    )

    # (ii) remove a pair: only it stops; the clock no longer waits for it
    before, actors = tree(daemon), refs(daemon)
    write(("BTC_USDT", "SOL_USDT"))
    result = daemon.reload()
    assert result == ReloadResult(removed=("ETHUSDT",), unchanged=("BTCUSDT", "SOLUSDT"))
    assert tree(daemon) == {s: before[s] for s in ("BTCUSDT", "SOLUSDT")}
    assert set(refs(daemon)) == {"BTCUSDT", "SOLUSDT"}
    assert all(refs(daemon)[s] is actors[s] for s in ("BTCUSDT", "SOLUSDT"))
    assert not actors["ETHUSDT"].is_alive()
    assert last_open(daemon, "ETHUSDT") is None
    wait_until(lambda: "ethusdt@kline_1m" not in exchange.status()["clients"]["streams"], 10.0, "unsubscribe")
    at += 5 * MINUTE_MS
    clock.run_through(at)
    assert (last_open(daemon, "BTCUSDT"), last_open(daemon, "SOLUSDT")) == (at, at)

    # (iii) change one setting of one pair: only that pair restarts
    before, actors = tree(daemon), refs(daemon)
    write(("BTC_USDT", "SOL_USDT"), BTC_USDT={"sma_short_period": 6})
    result = daemon.reload()
    assert result == ReloadResult(restarted=("BTCUSDT",), unchanged=("SOLUSDT",))
    after = tree(daemon)
    assert after["SOLUSDT"] == before["SOLUSDT"]
    assert after["BTCUSDT"][0] > before["BTCUSDT"][0]
    assert refs(daemon)["SOLUSDT"] is actors["SOLUSDT"]
    assert refs(daemon)["BTCUSDT"] is not actors["BTCUSDT"]
    assert daemon.config.settings_for("BTCUSDT").sma_short_period == 6
    at += 5 * MINUTE_MS
    clock.run_through(at)
    assert (last_open(daemon, "BTCUSDT"), last_open(daemon, "SOLUSDT")) == (at, at)

    # (iv) an invalid config is refused; the running one stays, untouched
    running, before, actors = daemon.config, tree(daemon), refs(daemon)
    write(("BTC_USDT", "SOL_USDT"), BTC_USDT={"sma_short_period": 50})  # not below sma_long_period (20)
    errors = daemon.reload()
    assert isinstance(errors, list)
    assert any("sma_short_period" in e for e in errors)
    save_config(
        path, bot_config(tmp_path / "elsewhere", [data.btc, data.sol], pairs=("BTC_USDT", "SOL_USDT"))
    )
    refused = daemon.reload()  # valid, but a new state_dir needs a process restart
    assert isinstance(refused, list)
    assert any("state_dir" in e for e in refused)
    assert daemon.config is running
    assert tree(daemon) == before
    assert all(refs(daemon)[s] is actors[s] for s in actors)
    at += 5 * MINUTE_MS
    clock.run_through(at)
    assert (last_open(daemon, "BTCUSDT"), last_open(daemon, "SOLUSDT")) == (at, at)


def _affinities() -> set[frozenset[int]]:
    """The CPU set of every thread of this process."""
    return {frozenset(os.sched_getaffinity(int(task.name))) for task in Path("/proc/self/task").iterdir()}


def test_reload_applies_process_wide_settings_in_place_and_refuses_cpus_the_machine_lacks(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    allowed = frozenset(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip("needs 2 CPUs to tell a pinned process from an unpinned one")
    one = min(allowed)
    data = slices(300)
    path = tmp_path / "config.yaml"

    def write(**supervisor: Any) -> None:
        save_config(path, bot_config(tmp_path, [data.btc, data.eth], supervisor=supervisor))

    write(cpu_affinity=[one])
    daemon = cleanup.daemon(load(path))
    exchange = local_exchange(daemon)
    clock = StepClock(exchange)
    daemon.start()
    try:
        at = FIRST_OPEN + 30 * MINUTE_MS
        clock.run_through(at)
        assert _affinities() == {frozenset({one})}  # every thread, the ones started after too
        before, actors = tree(daemon), refs(daemon)

        write(
            gil_switch_interval_ms=2.0, entry_priority_hold_ms=0.0, candle_handoff_ms=0.0, cpu_affinity=None
        )
        result = daemon.reload()
        assert result == ReloadResult(unchanged=("BTCUSDT", "ETHUSDT"))
        assert tree(daemon) == before
        assert all(refs(daemon)[s] is actors[s] for s in actors)
        assert sys.getswitchinterval() == pytest.approx(0.002)
        assert not daemon.priority.enabled
        assert _affinities() == {allowed}  # unset again: every CPU the process started with
        handed = sum(b.snapshot().handoffs for b in daemon.boards.values())
        at += 5 * MINUTE_MS
        clock.run_through(at)
        assert (last_open(daemon, "BTCUSDT"), last_open(daemon, "ETHUSDT")) == (at, at)
        assert sum(b.snapshot().handoffs for b in daemon.boards.values()) == handed  # wait is off

        running = daemon.config
        write(cpu_affinity=[4095])
        refused = daemon.reload()
        assert isinstance(refused, list)
        assert any("cpu_affinity" in e and "4095" in e for e in refused)
        assert daemon.config is running
        assert _affinities() == {allowed}
    finally:
        sys.setswitchinterval(0.005)
        for task in Path("/proc/self/task").iterdir():  # a failed assertion must not leave pytest pinned
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(task.name), allowed)
