"""Live pipeline of the running bot against the local exchange: signal latency, pair restarts, memory.

Prints, all measured in this one invocation:

- baselines: one-way latency of a bare pykka ``tell`` from a plain thread (the WS thread's position) and
  through a 3-hop actor chain (ws → market stream → pair → executor, with no work), and the cost of one
  direct ``PairStrategy.on_closed_kline`` call plus the pair's per-candle status publication;
- signal latency: closed-kline frame read → entry request about to be sent (the executor's ``latency``
  hook), p50/p99/max over ``--signals`` entries with ``--pairs`` synthetic symbols × 5 timeframes streaming
  at ``--speed`` × real time, split into frame → pair emit and emit → executor send, and by whether the
  entry was the first of its candle close or queued behind others in its symbol's executor;
- pair restart: ``daemon.tree.restart_pair`` → every timeframe of the pair running again and warm;
- memory: RSS of this (the bot's) process after warm-up and at the end of ``--klines`` closed klines
  delivered to the pair actors, replayed lock-step at ``max`` speed.

The exchange runs in its own process (``nancemakina exchange``), as the real venue does: its CPU time and
GIL are not the bot's. Its request-weight limit is raised, because the benchmark squeezes hours of signals
into minutes and Binance's 2,400/min would otherwise stall the executor on 429s.

Run: python bench/live_latency.py [--quick] [--pairs N] [--signals N] [--klines N] [--speed X]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pykka
from _harness import (
    Probe,
    Sample,
    TimedRefs,
    TimedRouter,
    alive_actors,
    exchange_process,
    exit_past_lingering_actors,
    load_average,
    quantile,
    rss_mib,
    say,
    summary_ms,
)
from _synthetic import SOURCES, symbol_name, write_symbols
from loguru import logger

from nancemakina.actors.backtest.kline_files import load_klines
from nancemakina.actors.config import Config, parse_config
from nancemakina.actors.domain.strategy import PairStrategy, StrategyParams
from nancemakina.actors.ops.systemd import SdNotifier
from nancemakina.actors.ops.thread_times import ThreadClock
from nancemakina.actors.runtime.status import GroupState
from nancemakina.actors.tree.pair_timeframe import PairBoard, PairStatus
from nancemakina.supervisor import RootSupervisor

TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h")
CLOSES_PER_STEP = sum(1 / m for m in (1, 5, 15, 60, 240))
"""Closed klines per symbol per replayed minute over the five timeframes."""
HISTORY_ROWS = 7_800
"""Candles before the replay start: 32 warm-up candles of 4h (SMA 20 + 1, +10 spare) need 7,680."""
STRATEGY = {
    "sma_short_period": 5,
    "sma_long_period": 20,
    "min_signal_interval_minutes": 0,
    "tp_sl_ratio": 1.5,  # nearer targets than the default 3: positions close sooner, symbols free up
    "default_margin_usdt": 50.0,
    "default_leverage": 10,
    "indicator_timeframes": list(TIMEFRAMES),
    "signal_timeframe": "1m",
}
MEMORY_STRATEGY = {"indicator_timeframes": list(TIMEFRAMES), "signal_timeframe": "1m"}
"""The RSS phase trades with the production defaults (SMA 21/200, 15 min apart): a realistic trade rate."""


# ---- baselines ---------------------------------------------------------------------------------------


class _Hop(pykka.ThreadingActor):
    """Forwards each message to the next hop, or records its one-way latency at the end of the chain."""

    def __init__(self, after: pykka.ActorRef[Any] | None, out: list[int], arrived: threading.Event) -> None:
        super().__init__()
        self.after, self.out, self.arrived = after, out, arrived

    def on_receive(self, message: Any) -> None:
        if self.after is not None:
            self.after.tell(message)
            return
        self.out.append(time.perf_counter_ns() - message)
        self.arrived.set()


def tell_latency(hops: int, count: int) -> list[int]:
    """One-way latency from a plain thread through ``hops`` bare pykka actors, one message at a time."""
    out: list[int] = []
    arrived = threading.Event()
    refs: list[pykka.ActorRef[Any]] = []
    after = None
    for _ in range(hops):
        after = _Hop.start(after, out, arrived)
        refs.append(after)
    head = refs[-1]
    try:
        for _ in range(count):
            arrived.clear()
            head.tell(time.perf_counter_ns())
            arrived.wait(1.0)
    finally:
        for ref in refs:
            ref.stop()
    return out[count // 10 :]  # first tenth: thread start-up and cold caches


def strategy_cost(count: int) -> tuple[list[int], list[int]]:
    """Per-kline ns of a direct ``on_closed_kline``, and of the pair's status snapshot + board publish."""
    series = load_klines(SOURCES[0])
    strategy = PairStrategy("SYM00USDT", "1m", _params())
    board = PairBoard()
    for k in range(50):  # a realistic board: 50 pairs × 5 timeframes already published
        for tf in TIMEFRAMES:
            board.publish(_status(symbol_name(k), tf, strategy))
    calls, publishes = [], []
    for i in range(min(count, len(series))):
        kline = series.kline(i)
        started = time.perf_counter_ns()
        strategy.on_closed_kline(kline, position_open=False, open_positions=0)
        middle = time.perf_counter_ns()
        board.publish(_status("SYM00USDT", "1m", strategy))
        calls.append(middle - started)
        publishes.append(time.perf_counter_ns() - middle)
    return calls[count // 10 :], publishes[count // 10 :]


def _params() -> StrategyParams:
    return StrategyParams(short_period=5, long_period=20, min_interval_ms=0, tp_sl_ratio=1.5)


def _status(symbol: str, timeframe: str, strategy: PairStrategy) -> PairStatus:
    return PairStatus(
        symbol=symbol,
        timeframe=timeframe,
        trading=timeframe == "1m",
        warm=True,
        unrepaired_gap=False,
        strategy=strategy.snapshot(),
        gaps_backfilled=0,
        decisions=0,
    )


# ---- the exchange in its own process ---------------------------------------------------------------


def _split_cores() -> frozenset[int]:
    """Pin this process (and the threads it starts from now on) off the last CPU; return that CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--split-cores needs at least 2 CPUs")
    os.sched_setaffinity(0, cpus[:-1])
    say(f"bot on CPU {','.join(map(str, cpus[:-1]))}; local exchange on CPU {cpus[-1]}")
    return frozenset(cpus[-1:])


def _cpu_list(spec: str | None) -> tuple[int, ...] | None:
    if spec is None or spec.lower() == "none":
        return None
    return tuple(int(c) for c in spec.split(","))


def bot_config(
    url: str,
    symbols: list[str],
    state_dir: Path,
    strategy: dict[str, Any],
    *,
    switch_ms: float | None = None,
    hold_ms: float | None = None,
    handoff_ms: float | None = None,
    cpus: tuple[int, ...] | None = None,
) -> Config:
    supervisor: dict[str, Any] = {"watch_config": False}
    if switch_ms is not None:
        supervisor["gil_switch_interval_ms"] = switch_ms
    if hold_ms is not None:
        supervisor["entry_priority_hold_ms"] = hold_ms
    if handoff_ms is not None:
        supervisor["candle_handoff_ms"] = handoff_ms
    if cpus is not None:
        supervisor["cpu_affinity"] = list(cpus)
    return parse_config(
        {
            "api": {"mode": "replay"},
            "state_dir": str(state_dir),
            "global_settings": {"v1_strategy": strategy},
            "pairs": {s: {} for s in symbols},
            "logging": {"level": "WARNING"},
            "monitoring": {"enabled": False},
            "replay": {"exchange_url": url, "exit_at_end": False},
            "supervisor": supervisor,
        },
        source="bench/live_latency.py",
        base_dir=state_dir,
        env={},
    )


# ---- instrumentation (bench side only: hooks the daemon exposes, nothing patched in a library) --------


def instrumented(config: Config, *, keep_all_latencies: bool) -> tuple[RootSupervisor, Probe, TimedRefs]:
    """A ``RootSupervisor`` with the probes attached (before ``start``)."""
    probe = Probe()
    refs = TimedRefs()
    # not in the RSS phase: its per-frame records would be part of what it measures
    router = TimedRouter() if keep_all_latencies else None
    refs.router = router
    daemon = RootSupervisor(config, notifier=SdNotifier(None), refs=refs, router=router)
    daemon.relays.executor_latency = probe.latency
    daemon.relays.order_probe = probe.event
    if keep_all_latencies:  # the stream actor picks its board's deque up when it starts
        for board in daemon.boards.values():
            board.latencies_ns = deque()
    return daemon, probe, refs


def delivered(daemon: RootSupervisor) -> int:
    return sum(b.snapshot().sequencer.delivered for b in daemon.boards.values())


def replay_steps(daemon: RootSupervisor) -> int:
    exchange = daemon.connections.exchange
    return int(exchange.status().get("processed", 0)) if exchange is not None else 0


# ---- phases ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Options:
    pairs: int
    signals: int
    klines: int
    speed: float
    restarts: int
    signal_timeout_s: float
    memory_timeout_s: float
    switch_ms: float | None = None
    hold_ms: float | None = None
    handoff_ms: float | None = None
    cpus: tuple[int, ...] | None = None
    exchange_nice: int = 0
    exchange_cpus: frozenset[int] = frozenset()
    start_ms: int = 0
    paths: list[Path] = field(default_factory=list)


def run_signals(opts: Options, state_dir: Path) -> None:
    symbols = [symbol_name(k) for k in range(opts.pairs)]
    speed = f"{opts.speed:g}"
    exchange_on = opts.exchange_cpus or frozenset(os.sched_getaffinity(0))
    with exchange_process(
        opts.paths,
        speed=speed,
        start_ms=opts.start_ms,
        updates=3,
        nice=opts.exchange_nice,
        cpus=opts.exchange_cpus,
    ) as exchange:
        config = bot_config(
            exchange.url,
            symbols,
            state_dir / "signals",
            STRATEGY,
            switch_ms=opts.switch_ms,
            hold_ms=opts.hold_ms,
            handoff_ms=opts.handoff_ms,
            cpus=opts.cpus,
        )
        daemon, probe, refs = instrumented(config, keep_all_latencies=True)
        try:
            started = time.perf_counter()
            daemon.start(ready_timeout_s=120)
            warm_s = time.perf_counter() - started
            pinned = daemon.cpu.current
            actors = opts.pairs * len(TIMEFRAMES)
            say(f"signals: {actors} pair actors warm in {warm_s:.2f} s; streaming at {speed}×")
            steps0, wall0 = replay_steps(daemon), time.perf_counter()
            clock = ThreadClock()
            clock.start()
            deadline = time.monotonic() + opts.signal_timeout_s
            last = time.monotonic()
            while len(probe.samples) < opts.signals and time.monotonic() < deadline:
                time.sleep(0.2)
                if time.monotonic() - last >= 10:
                    last = time.monotonic()
                    say(f"  {len(probe.samples):,} entries, {delivered(daemon):,} closed klines delivered")
            clock.stop()
            wall = time.perf_counter() - wall0
            steps = replay_steps(daemon) - steps0
            samples = list(probe.samples)
            board_ns = [x for b in daemon.boards.values() for x in list(b.latencies_ns)]
            emitted = dict(refs.emitted)
            handled = len(probe.samples) + sum(probe.rejected.values())
            backlog = f"{len(emitted):,} SubmitEntry told to the executor, {handled:,} handled so far"
            priority = daemon.priority.stats()
            restarts = measure_restarts(daemon, symbols, opts.restarts)
            stats = [b.snapshot() for b in daemon.boards.values()]
        finally:
            code = daemon.shutdown()
    lingering = alive_actors()
    print(f"\n== 1. Signal latency: closed-kline frame read → entry request sent ({opts.pairs} pairs × 5 tf)")
    print(f"load average (1, 5, 15 min) at the end of the phase: {load_average()}")
    achieved = steps * 60 / wall
    print(f"replay at {speed}× requested; achieved {achieved:,.0f}× ({steps:,} 1m steps in {wall:.1f} s)")
    setting = config.supervisor.cpu_affinity
    where = f"CPU {','.join(map(str, sorted(pinned)))}" if pinned else "every CPU"
    where += f" (cpu_affinity: {setting if isinstance(setting, str) else setting or 'unset'})"
    print(f"bot threads on {where}; local exchange on CPU {','.join(map(str, sorted(exchange_on)))}")
    _print_signal_latency(samples, emitted, board_ns, probe, opts.signals, router=refs.router)
    seq = [s.sequencer for s in stats]
    print(
        f"stream: {sum(s.delivered for s in seq):,} closed klines delivered, "
        f"{sum(s.gaps_detected for s in seq)} gaps, {sum(s.candles_backfilled for s in seq)} backfilled, "
        f"{sum(s.reconnects for s in stats)} reconnects"
    )
    print(f"executor: {backlog}; rejections by reason {dict(sorted(probe.rejected.items()))}")
    hold = config.supervisor.entry_priority_hold_ms
    print(
        f"entry priority (hold {hold:g} ms): {priority.begun:,} entries announced, {priority.ended:,} sent "
        f"or refused within the hold, {priority.expired:,} outlasted it; {priority.waits:,} waits "
        f"by the reader, ledger and other pairs, {priority.waited_s * 1e3:,.0f} ms in all"
    )
    handoffs = sum(s.handoffs for s in stats)
    here = sum(s.handoffs_here for s in stats)
    timeouts = sum(s.handoff_timeouts for s in stats)
    print(
        f"candle hand-off ({config.supervisor.candle_handoff_ms:g} ms): {handoffs:,} closed klines, {here:,} "
        f"of them decided on the reader's thread (their pair idle), the others waited for, "
        f"{timeouts:,} past the limit"
    )
    print("threads over the streaming window (CPU, and time runnable but waiting for a core):")
    print("\n".join(clock.lines(wall)))
    print(f"\n== 2. Pair restart → all 5 timeframes running and warm again ({len(restarts)} restarts)")
    if restarts:
        r = sorted(restarts)
        verdict = "met" if r[-1] < 0.2 else "NOT met"
        print(f"p50 {quantile(r, 0.5) * 1e3:6.1f} ms  max {r[-1] * 1e3:6.1f} ms   goal < 200 ms: {verdict}")
    print(f"(daemon shutdown exit code {code}; actors still alive after it: {lingering or 'none'})")


def _print_signal_latency(
    samples: list[Sample],
    emitted: dict[tuple[str, int], tuple[int, int]],
    board_ns: list[int],
    probe: Probe,
    goal: int,
    *,
    router: TimedRouter | None,
) -> None:
    total = [s.latency_ns for s in samples]
    print(f"frame → entry sent      {summary_ms(total)}")
    if router is not None:
        from_burst: list[int] = []
        for s in samples:
            stamp = emitted.get(s.key)
            close = router.close_of.get(stamp[0]) if stamp is not None else None
            if close is not None:
                from_burst.append(s.sent_ns - router.burst_start[close])
        print(
            f"  first frame of close  {summary_ms(from_burst)}   (→ entry sent: also counts the frames of "
            "the same close read before the entry's own)"
        )
    to_pair, in_exec, first, queued = [], [], [], []
    by_candle: dict[int, list[Sample]] = {}
    for s in samples:
        by_candle.setdefault(s.key[1], []).append(s)
        stamp = emitted.get(s.key)
        if stamp is not None:
            received, at = stamp
            to_pair.append(at - received)
            in_exec.append(s.sent_ns - at)
    for group in by_candle.values():
        group.sort(key=lambda s: s.sent_ns)
        first.append(group[0].latency_ns)
        queued.extend(s.latency_ns for s in group[1:])
    print(f"  frame → router.tell   {summary_ms(board_ns)}  (market stream board, klines told on read)")
    print(f"  frame → pair emits    {summary_ms(to_pair)}   (stream hop + pair mailbox + strategy)")
    print(f"  emit → entry sent     {summary_ms(in_exec)}   (executor mailbox, gate, sizing)")
    print(f"  first entry of candle {summary_ms(first)}")
    print(f"  later entries         {summary_ms(queued)}   (other symbols' entries of the same candle close)")
    sizes = [len(g) for g in by_candle.values()]
    if sizes:
        print(f"  entries per candle close: mean {statistics.mean(sizes):.1f}, max {max(sizes)}")
    print(
        f"  executor time per accepted entry (entry, stop, take-profit REST): {summary_ms(probe.service_ns)}"
    )
    if total:
        p99 = quantile(sorted(total), 0.99) / 1e6
        met = "met" if p99 < 5 else "NOT met"
        enough = "" if len(total) >= goal else f" (only {len(total):,} of the {goal:,} samples asked for)"
        print(f"goal p99 < 5 ms: {met} (p99 {p99:.2f} ms){enough}")


def measure_restarts(daemon: RootSupervisor, symbols: list[str], count: int) -> list[float]:
    """Seconds from ``restart_pair`` to every child of the pair alive in a new generation and warm."""
    out = []
    for i in range(count):
        symbol = symbols[(i * 7) % len(symbols)]
        keys = {(symbol, tf) for tf in TIMEFRAMES}
        before = daemon.tree.board.groups.get(symbol)
        old_generations = {c.child_id: c.generation for c in before.children} if before else {}
        started = time.perf_counter()
        if not daemon.restart_pair(symbol):
            say(f"  restart_pair({symbol}) refused")
            continue
        deadline = started + 10
        while time.perf_counter() < deadline:
            group = daemon.tree.board.groups.get(symbol)
            if (
                group is not None
                and group.state is GroupState.RUNNING
                and group.children
                and all(c.alive and c.generation > old_generations.get(c.child_id, 0) for c in group.children)
                and daemon.pair_board.warm(keys)
            ):
                out.append(time.perf_counter() - started)
                break
            time.sleep(0.0005)
        else:
            say(f"  {symbol}: not warm again within 10 s")
        time.sleep(0.3)  # let the stream run between restarts
    return out


def run_memory(opts: Options, state_dir: Path) -> None:
    symbols = [symbol_name(k) for k in range(opts.pairs)]
    with exchange_process(
        opts.paths,
        speed="max",
        start_ms=opts.start_ms,
        updates=0,
        nice=opts.exchange_nice,
        cpus=opts.exchange_cpus,
    ) as venue:
        config = bot_config(
            venue.url,
            symbols,
            state_dir / "memory",
            MEMORY_STRATEGY,
            switch_ms=opts.switch_ms,
            hold_ms=opts.hold_ms,
            handoff_ms=opts.handoff_ms,
            cpus=opts.cpus,
        )
        daemon, probe, _ = instrumented(config, keep_all_latencies=False)
        points: list[tuple[int, float, float]] = []
        try:
            rss_before = rss_mib()
            daemon.start(ready_timeout_s=120)
            say(f"memory: replaying {opts.klines:,} closed klines lock-step at max speed")
            started = time.perf_counter()
            warm_at = max(min(100_000, opts.klines // 10), 1)
            marks = [warm_at, *(opts.klines * k // 10 for k in range(2, 11))]
            deadline = time.monotonic() + opts.memory_timeout_s
            exchange = daemon.connections.exchange
            while marks and time.monotonic() < deadline:
                time.sleep(0.25)
                done = delivered(daemon)
                while marks and done >= marks[0]:
                    points.append((done, time.perf_counter() - started, rss_mib()))
                    say(f"  {done:,} klines, {points[-1][1]:.0f} s, RSS {points[-1][2]:.1f} MiB")
                    marks.pop(0)
                if exchange is not None and exchange.status().get("done"):
                    break
            final = delivered(daemon)
            if not points or points[-1][0] != final:
                points.append((final, time.perf_counter() - started, rss_mib()))
            actors_running = len(pykka.ActorRegistry.get_all())
        finally:
            code = daemon.shutdown()
    left = alive_actors()
    print(f"\n== 3. RSS over {points[-1][0]:,} closed klines delivered to {opts.pairs * 5} pair actors")
    print(f"load average (1, 5, 15 min) at the end of the phase: {load_average()}")
    print(f"RSS before start {rss_before:.1f} MiB; {actors_running} actors while running")
    print(f"{len(probe.samples):,} entries opened; rejections {dict(sorted(probe.rejected.items()))}")
    for n, t, rss in points:
        print(f"  {n:>10,} klines  {t:7.1f} s  {n / t if t else 0:9,.0f} klines/s  RSS {rss:7.1f} MiB")
    if len(points) >= 2:
        growth = (points[-1][2] - points[0][2]) / points[0][2] * 100
        verdict = "met" if growth < 5 else "NOT met"
        span = f"{points[0][0]:,} klines → {points[-1][0]:,}"
        print(f"growth after warm-up ({span}): {growth:+.2f} %   goal < 5 %: {verdict}")
    if points[-1][0] < opts.klines:
        print(f"(stopped before {opts.klines:,} klines: timeout or end of data)")
    print(f"(daemon shutdown exit code {code}; actors still alive after it: {left or 'none'})")


def run_baselines() -> None:
    print("== 0. Baselines (same process, same machine)")
    one = tell_latency(1, 5_000)
    three = tell_latency(3, 5_000)
    print(f"bare pykka tell, thread → actor            {summary_ms(one)}")
    print(f"bare pykka chain, thread → 3 actors         {summary_ms(three)}   (the pipeline's hops, no work)")
    calls, publishes = strategy_cost(20_000)
    print(f"PairStrategy.on_closed_kline, direct call   {summary_ms(calls)}")
    print(f"pair status snapshot + PairBoard.publish    {summary_ms(publishes)}   (250 keys on the board)")


# ---- entry point -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="small sizes, finishes in under a minute")
    p.add_argument("--pairs", type=int, help="synthetic symbols (5 timeframes each); default 50, quick 10")
    p.add_argument("--signals", type=int, help="entry latency samples to collect; default 1000, quick 150")
    p.add_argument(
        "--klines", type=int, help="closed klines for the RSS phase; default 1,000,000, quick 30,000"
    )
    p.add_argument("--speed", type=float, help="replay speed (× real time) of the latency phase; default 600")
    p.add_argument("--restarts", type=int, default=20, help="pair restarts to time (default 20)")
    p.add_argument(
        "--switch-interval-ms",
        type=float,
        help="the bot's supervisor.gil_switch_interval_ms (sys.setswitchinterval); default: the config's",
    )
    p.add_argument(
        "--entry-priority-hold-ms",
        type=float,
        help="the bot's supervisor.entry_priority_hold_ms (0: no pause for entries); default: the config's",
    )
    p.add_argument(
        "--candle-handoff-ms",
        type=float,
        help="the bot's supervisor.candle_handoff_ms (0: the reader does not wait for the pair it told); "
        "default: the config's",
    )
    p.add_argument(
        "--exchange-nice",
        type=int,
        default=0,
        help="run the local exchange at this nice level (19: it gets only CPU the bot leaves, as a remote "
        "venue would; default 0, an equal share of this machine's cores)",
    )
    p.add_argument(
        "--split-cores",
        action="store_true",
        help="run the local exchange on the last CPU and the bot on the others (a venue on another "
        "machine does not take the bot's CPU); default: both share every CPU",
    )
    p.add_argument(
        "--cpu-affinity",
        help="the bot's supervisor.cpu_affinity, e.g. 0 (comma-separated CPUs; 'none': unset); "
        "the exchange, started first, keeps every CPU; default: the config's",
    )
    p.add_argument(
        "--state-on-disk",
        action="store_true",
        help="keep state_dir (the SQLite ledger, fsync per event) on disk instead of /dev/shm",
    )
    p.add_argument("--skip", choices=("signals", "memory"), action="append", default=[], help="skip a phase")
    args = p.parse_args(argv)
    quick = args.quick
    opts = Options(
        pairs=args.pairs or (10 if quick else 50),
        signals=args.signals or (150 if quick else 1_000),
        klines=args.klines or (30_000 if quick else 1_000_000),
        speed=args.speed or 600.0,
        restarts=args.restarts,
        signal_timeout_s=20 if quick else 240,
        memory_timeout_s=20 if quick else 540,
        switch_ms=args.switch_interval_ms,
        hold_ms=args.entry_priority_hold_ms,
        handoff_ms=args.candle_handoff_ms,
        exchange_nice=args.exchange_nice,
        exchange_cpus=_split_cores() if args.split_cores else frozenset(),
        cpus=_cpu_list(args.cpu_affinity),
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the daemon and the exchange
    if opts.pairs > 1000:
        p.error("--pairs: at most 1000 (the symbol names have three digits)")
    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("BENCH_LOG", "ERROR"))
    steps_signals = int(opts.signal_timeout_s * opts.speed / 60) + 60
    steps_memory = int(opts.klines / (opts.pairs * CLOSES_PER_STEP) * 1.02) + 60
    rows = HISTORY_ROWS + max(steps_signals, steps_memory)
    first_open = int(load_klines(SOURCES[0]).open_time[0])
    opts.start_ms = first_open + HISTORY_ROWS * 60_000
    wall = time.perf_counter()
    shm = Path("/dev/shm")
    tmp_root = None if args.state_on_disk or not shm.is_dir() else str(shm)
    with tempfile.TemporaryDirectory(prefix="nm-live-latency-", dir=tmp_root) as tmp:
        opts.paths = write_symbols(Path(tmp) / "data", opts.pairs, rows)
        capped = min(rows, 43_200)
        start = datetime.fromtimestamp(opts.start_ms / 1000, tz=UTC)
        print(
            f"setup: {opts.pairs} synthetic symbols × {capped:,} 1m candles, replay from "
            f"{start:%Y-%m-%d %H:%M} after {HISTORY_ROWS:,} candles of history; timeframes "
            f"{', '.join(TIMEFRAMES)}; signals phase SMA 5/20, min interval 0, TP:SL 1.5; "
            "memory phase production defaults (SMA 21/200, 15 min); margin 50 USDT × 10; "
            f"state_dir {'on disk' if tmp_root is None else 'on /dev/shm'}"
        )
        print(f"load average (1, 5, 15 min) at the start: {load_average()}")
        run_baselines()
        if "signals" not in args.skip:
            run_signals(opts, Path(tmp))
        if "memory" not in args.skip:
            run_memory(opts, Path(tmp))
    print(f"\ntotal wall time {time.perf_counter() - wall:.0f} s", flush=True)
    exit_past_lingering_actors()
    return 0


if __name__ == "__main__":
    sys.exit(main())
