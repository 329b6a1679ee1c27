"""The whole Binance futures universe from a cold start: 590 symbols × 5 timeframes, at 1×, at Binance's frame
rate and weight limit, with the configuration a user runs (``config/config.yaml.example``).

The local exchange runs in its own process at real time (1×) from before the bot starts, as Binance does,
pushing an unclosed kline update every 250 ms of market time on every stream (``--update-interval-ms 250``:
590 × 5 streams ≈ 11,800 frames/s) and answering 429 past 2,400 request weight a minute. The symbols are
synthetic (``bench/_synthetic.py``: the bundled BTC and ETH months rotated and scaled), listed with
ETHUSDT-like filters. The bot runs in this process with the example config's settings, its pairs replaced by
the synthetic symbols. Prints, all measured in this one invocation:

- cold start: time to READY against the budget-limited ideal (the warm-up's klines weight at 2,400 a minute:
  the issue's baseline) and against the old warm-up's weight; 429 and 418 answers; the requests by path;
  warnings logged; the first close after READY: how many of its 1m candles came on the stream (not by
  repair) and how long until the last pair decided it;
- then ``--closes`` closes: bot CPU as % of one core (and the exchange's), RSS, threads; per close, first
  closed frame read → last 1m pair decided (p50/p99/max) against first → last closed frame read (the
  reader's own pace, the floor); closed-kline frame → entry request sent (p50/p99);
- ``--restart``: the process restarted against the same exchange (its account keeps what the first start
  set): time to READY again.

Run: python bench/universe.py [--symbols 590] [--closes 12] [--restart]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pykka
import requests
import yaml
from _harness import (
    Probe,
    TimedRefs,
    TimedRouter,
    alive_actors,
    cpu_s,
    exchange_process,
    exit_past_lingering_actors,
    free_port,
    load_average,
    pin_process,
    quantile,
    rss_mib,
    say,
    summary_ms,
)
from _synthetic import SOURCES, symbol_name, write_symbols
from loguru import logger

from nancemakina.actors.backtest.kline_files import load_klines
from nancemakina.actors.bundled import EXAMPLE_CONFIG
from nancemakina.actors.config import Config, parse_config
from nancemakina.actors.domain.model import Decision, Kline
from nancemakina.actors.exchange.kline_pages import klines_weight
from nancemakina.actors.ops.systemd import SdNotifier
from nancemakina.actors.ops.thread_times import ThreadClock
from nancemakina.actors.runtime.gc_schedule import GcSchedule
from nancemakina.actors.tree.pair_timeframe import history_weight
from nancemakina.supervisor import RootSupervisor

TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h")
MINUTE_MS = 60_000
FOUR_HOURS_MS = 4 * 60 * MINUTE_MS
HISTORY_ROWS = 3_200
"""1m candles before the replay start: the 15m warm-up (212 candles) needs 3,180; 1h and 4h get fewer."""
WEIGHT_LIMIT = 2_400
OLD_PER_SYMBOL_EXTRA = 8 + 5 * 2
"""The warm-up before this benchmark's issue, per symbol beyond its klines: an executor's time sync,
margin type, leverage and balance (8), and per timeframe a ``GET /time`` before its klines and another for
its subscription (2 × 5)."""


@dataclass(slots=True)
class Decisions:
    """When each 1m pair decided each streamed candle (the pairs' ``observe`` hook, on their threads)."""

    at: dict[int, list[int]] = field(default_factory=dict)
    """1m close time (ms) → ``perf_counter_ns`` at each pair's decision of that candle."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    forward: Any = None

    def observe(self, kline: Kline, seconds: float, decision: Decision | None) -> None:
        if kline.timeframe == "1m":
            now = time.perf_counter_ns()
            with self.lock:
                self.at.setdefault(kline.open_time_ms + MINUTE_MS, []).append(now)
        if self.forward is not None:
            self.forward(kline, seconds, decision)


@dataclass(slots=True)
class LogCount:
    """Counts log records by level; keeps the warm-up's progress lines."""

    levels: Counter[str] = field(default_factory=Counter)
    progress: list[str] = field(default_factory=list)

    def sink(self, message: Any) -> None:
        record = message.record
        self.levels[record["level"].name] += 1
        if record["message"].startswith("warm-up"):
            self.progress.append(record["message"])


def bot_config(
    url: str, symbols: list[str], state_dir: Path, supervisor: dict[str, Any] | None = None
) -> Config:
    """The example config as shipped, with the synthetic symbols as its pairs and the exchange's URL
    (``supervisor``: settings changed from the example's, to compare)."""
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    raw["supervisor"] = {**raw.get("supervisor", {}), **(supervisor or {})}
    raw["pairs"] = {s: {} for s in symbols}
    raw["state_dir"] = str(state_dir)
    raw["replay"] = {"exchange_url": url, "exit_at_end": False}
    raw["monitoring"]["prometheus_port"] = free_port()
    raw["logging"] = {"level": "INFO"}
    return parse_config(raw, source=str(EXAMPLE_CONFIG), base_dir=state_dir, env={})


def start_ms_before_4h_close(first_open: int, minutes_before: int) -> int:
    """A replay start after ``HISTORY_ROWS`` candles of history and ``minutes_before`` a 4h boundary, so the
    measured closes include one where every timeframe closes together."""
    earliest = first_open + HISTORY_ROWS * MINUTE_MS
    boundary = -(-(earliest + minutes_before * MINUTE_MS) // FOUR_HOURS_MS) * FOUR_HOURS_MS
    return boundary - minutes_before * MINUTE_MS


def sim_status(url: str) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(f"{url}/sim/v1/status", timeout=5).json()
    return body


def threads_now() -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return threading.active_count()


@dataclass(slots=True)
class Started:
    daemon: RootSupervisor
    ready_s: float
    probe: Probe
    refs: TimedRefs
    router: TimedRouter
    decisions: Decisions
    collector: GcSchedule
    """Started after READY, as ``run_service`` does for the service."""


def keep_apart(daemon: RootSupervisor, exchange_pid: int) -> None:
    """Once the bot has picked its CPU (``cpu_affinity: auto``, at the start of its tree), move the local
    exchange to the others, as a venue on another machine takes none of the bot's CPU."""

    def follow() -> None:
        deadline = time.monotonic() + 60
        while daemon.cpu.current is None and time.monotonic() < deadline:
            time.sleep(0.005)
        bot = daemon.cpu.current
        rest = daemon.cpu.allowed - bot if bot else frozenset()
        if rest:
            pin_process(exchange_pid, rest)
            print(f"bot threads on CPU {', '.join(map(str, sorted(bot or ())))}; the exchange moved to CPU "
                  f"{', '.join(map(str, sorted(rest)))}")  # fmt: skip

    threading.Thread(target=follow, name="bench-keep-apart", daemon=True).start()


def cold_start(config: Config, exchange_pid: int | None) -> Started:
    probe, refs, router, decisions = Probe(), TimedRefs(), TimedRouter(), Decisions()
    refs.router = router
    started = time.perf_counter()
    daemon = RootSupervisor(config, notifier=SdNotifier(None), refs=refs, router=router)
    if exchange_pid is not None:
        keep_apart(daemon, exchange_pid)
    daemon.relays.executor_latency = probe.latency
    daemon.relays.order_probe = probe.event
    decisions.forward = daemon.relays.observe
    daemon.relays.observe = decisions.observe
    daemon.start()
    ready_s = time.perf_counter() - started
    collector = GcSchedule()
    collector.start()
    return Started(daemon, ready_s, probe, refs, router, decisions, collector)


def print_start(run: Started, symbols: int, url: str, before: Counter[str], logs: LogCount) -> None:
    daemon = run.daemon
    params = next(iter(daemon.settings.values())).strategy_params()
    klines = symbols * len(TIMEFRAMES) * history_weight(params)
    ideal_s = klines / WEIGHT_LIMIT * 60
    old = symbols * (len(TIMEFRAMES) * klines_weight(params.warmup_candles() + 11) + OLD_PER_SYMBOL_EXTRA)
    budget = daemon.connections.budget.snapshot()
    asked = Counter(sim_status(url)["stats"]["requests"]) - before
    pinned = daemon.cpu.current
    where = ", ".join(map(str, sorted(pinned))) if pinned else "every CPU"
    print(f"time to READY {run.ready_s:6.1f} s   (load average {load_average()}; bot threads on CPU {where})")
    verdict = "met" if run.ready_s <= 1.1 * ideal_s else "NOT met"
    print(
        f"  budget-limited ideal (klines only, {klines:,} weight at {WEIGHT_LIMIT:,}/min): {ideal_s:6.1f} s"
        f"   ratio {run.ready_s / ideal_s:.2f}   goal ≤ 1.10: {verdict}"
    )
    print(
        f"  the warm-up before (≈{old:,} weight): {old / WEIGHT_LIMIT * 60:6.1f} s of budget "
        f"({old / klines:.2f}× the klines)"
    )
    print(
        f"weight charged by the bot: {budget.charged:,} ({budget.charged_bulk:,} klines, "
        f"{budget.charged_bulk / symbols:.1f} per symbol); 429s {budget.responses_429}, 418s "
        f"{budget.responses_418}; waits for the next minute {budget.waits}"
    )
    print("requests by path: " + ", ".join(f"{k} {v:,}" for k, v in sorted(asked.items())))
    print(
        f"log records during start-up: {dict(logs.levels)}; progress lines {len(logs.progress)}"
        + (f", the last: {logs.progress[-1]!r}" if logs.progress else "")
    )


def wait_for_close(daemon: RootSupervisor, url: str, after_ms: int) -> int:
    """Block until the exchange's clock passed the first minute close after ``after_ms``; returns it."""
    close = (after_ms // MINUTE_MS + 1) * MINUTE_MS
    while int(sim_status(url)["clockMs"]) < close + MINUTE_MS // 2:
        time.sleep(0.5)
    del daemon
    return close


def close_report(run: Started, close: int, symbols: int) -> tuple[int, int, int, int | None]:
    """(streamed 1m candles, repaired ones, pairs decided, first frame → last pair decided ns)."""
    streamed = run.router.streamed.get((close, "1m"), 0)
    repaired = run.router.backfilled.get((close, "1m"), 0)
    with run.decisions.lock:
        decided = list(run.decisions.at.get(close, ()))
    first = run.router.burst_start.get(close)
    last = max(decided) - first if decided and first is not None else None
    del symbols
    return streamed, repaired, len(decided), last


def settled(run: Started, url: str) -> int:
    """Wait until the account has every pair's margin type and leverage (set after the warm-up on a fresh
    account); returns the replay clock then."""
    daemon, started = run.daemon, time.perf_counter()
    account = daemon.connections.account
    pairs = list(daemon.settings.values())
    while not all(account.has(p.symbol, margin_type=p.margin_mode, leverage=p.leverage) for p in pairs):
        time.sleep(0.5)
    print(f"account settings of every pair in place {time.perf_counter() - started:.1f} s after READY")
    return int(sim_status(url)["clockMs"])


def measure_closes(run: Started, url: str, symbols: int, closes: int, exchange_pid: int) -> None:
    daemon = run.daemon
    first = wait_for_close(daemon, url, int(sim_status(url)["clockMs"]))
    streamed, repaired, decided, last = close_report(run, first, symbols)
    print(f"\n== first close after READY ({datetime.fromtimestamp(first / 1000, tz=UTC):%H:%M})")
    verdict = "complete" if streamed == symbols and decided == symbols else "NOT complete"
    print(
        f"1m candles: {streamed} of {symbols} on the stream, {repaired} by repair; {decided} pairs decided; "
        f"first closed frame → last pair decided {last / 1e6 if last else float('nan'):.1f} ms   {verdict}"
    )
    close = max(first, settled(run, url))
    cpu0, xcpu0, wall0 = cpu_s(), cpu_s(exchange_pid), time.perf_counter()
    samples0 = len(run.probe.samples)
    clock = ThreadClock()
    clock.start()
    per_close: list[int] = []
    reads: list[int] = []
    rows = []
    boards = list(daemon.boards.values())
    waited = sum(b.handoff_wait_ns for b in boards)
    here = sum(b.handoffs_here for b in boards)
    for _ in range(closes):
        close = wait_for_close(daemon, url, close)
        before, waited = waited, sum(b.handoff_wait_ns for b in boards)
        handoff_ns = waited - before
        here_before, here = here, sum(b.handoffs_here for b in boards)
        streamed, repaired, decided, last = close_report(run, close, symbols)
        begin, end = run.router.burst_start.get(close), run.router.burst_end.get(close)
        if last is not None:
            per_close.append(last)
        if begin is not None and end is not None:
            reads.append(end - begin)
        frames = sum(run.router.streamed.get((close, tf), 0) for tf in TIMEFRAMES)
        rows.append(
            f"  {datetime.fromtimestamp(close / 1000, tz=UTC):%H:%M}  closed frames {frames:5,}  1m streamed "
            f"{streamed:4}/{symbols} repaired {repaired:3}  decided {decided:4}  → last decided "
            f"{last / 1e6 if last else float('nan'):7.1f} ms  (frames read in "
            f"{(end - begin) / 1e6 if begin and end else float('nan'):6.1f} ms; the reader decided "
            f"{here - here_before:4} itself and waited {handoff_ns / 1e6:5.1f} ms for the other pairs)"
        )
    wall = time.perf_counter() - wall0
    clock.stop()
    cpu = (cpu_s() - cpu0) / wall * 100
    xcpu = (cpu_s(exchange_pid) - xcpu0) / wall * 100
    print(f"\n== then {closes} closes at 1× ({wall:.0f} s; load average {load_average()})")
    print("\n".join(rows))
    print(
        f"bot CPU {cpu:.1f} % of one core   goal < 50 %: {'met' if cpu < 50 else 'NOT met'}   "
        f"(the local exchange's process: {xcpu:.1f} %)"
    )
    actors = len(pykka.ActorRegistry.get_all())
    print(f"bot RSS {rss_mib():.0f} MiB, threads {threads_now():,}, actors {actors:,}")
    print("the bot's threads over the closes (CPU, and time runnable but waiting for a core):")
    print("\n".join(clock.lines(wall)))
    if per_close:
        v = sorted(per_close)
        p99 = quantile(v, 0.99) / 1e6
        print(
            f"first closed frame → last 1m pair decided, per close: p50 {quantile(v, 0.5) / 1e6:.1f}  "
            f"p99 {p99:.1f}  max {v[-1] / 1e6:.1f} ms   goal p99 < 250 ms: "
            + ("met" if p99 < 250 else "NOT met")
        )
    if reads:
        r = sorted(reads)
        print(
            f"  baseline, first → last closed frame read: p50 {quantile(r, 0.5) / 1e6:.1f}  "
            f"max {r[-1] / 1e6:.1f} ms (decisions cannot end before the last frame is read)"
        )
    entries = [s.latency_ns for s in run.probe.samples[samples0:]]
    print(f"frame → entry request sent   {summary_ms(entries)}")
    print(f"entries refused by reason {dict(sorted(run.probe.rejected.items()))}")


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--symbols", type=int, default=590, help="synthetic USDⓈ-M symbols (default 590)")
    p.add_argument("--closes", type=int, default=12, help="closes measured after the first (default 12)")
    p.add_argument("--minutes-before-4h", type=int, default=9, help="replay start before a 4h close")
    p.add_argument(
        "--restart", action="store_true", help="then restart the process against the same exchange"
    )
    p.add_argument(
        "--exchange-on-every-cpu",
        action="store_true",
        help="let the local exchange run on every CPU, the bot's too (default: once the bot has picked its "
        "CPU itself, with the shipped cpu_affinity: auto, the exchange moves to the others, as a remote "
        "venue takes none of the bot's)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        type=_setting,
        metavar="KEY=VALUE",
        help="a supervisor setting other than the example's, e.g. candle_handoff_ms=0 (repeatable)",
    )
    args = p.parse_args(argv)
    logs = LogCount()
    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("BENCH_LOG", "WARNING"))
    logger.add(logs.sink, level="INFO")
    symbols = [symbol_name(k) for k in range(args.symbols)]
    first_open = int(load_klines(SOURCES[0]).open_time[0])
    start_ms = start_ms_before_4h_close(first_open, args.minutes_before_4h)
    rows = (start_ms - first_open) // MINUTE_MS + args.minutes_before_4h + args.closes + 30
    with tempfile.TemporaryDirectory(prefix="nm-universe-", dir="/dev/shm") as tmp:
        say(f"writing {args.symbols} synthetic symbols × {rows:,} 1m candles")
        paths = write_symbols(Path(tmp) / "data", args.symbols, rows)
        print(
            f"setup: {args.symbols} synthetic symbols (bundled BTC/ETH rotated and scaled) × 5 timeframes; "
            f"exchange at 1×, an update every 250 ms per stream, weight limit {WEIGHT_LIMIT:,}/min; replay "
            f"from {datetime.fromtimestamp(start_ms / 1000, tz=UTC):%Y-%m-%d %H:%M}; the example config's "
            f"settings; load average {load_average()}"
        )
        apart = not args.exchange_on_every_cpu and len(os.sched_getaffinity(0)) > 1
        print(
            "local exchange: "
            + ("on the CPUs the bot does not pick" if apart else "on every CPU")
            + "; the bot's threads where supervisor.cpu_affinity (auto) puts them"
        )
        with exchange_process(
            paths,
            speed="1",
            start_ms=start_ms,
            update_interval_ms=250,
            weight_limit=WEIGHT_LIMIT,
            order_limits=(300, 1200),  # Binance's, as at 1× the bot trades in real time
            paused=False,
        ) as venue:
            before = Counter(sim_status(venue.url)["stats"]["requests"])
            config = bot_config(venue.url, symbols, Path(tmp) / "state", supervisor=dict(args.set))
            print(f"\n== cold start: {args.symbols} pairs × {len(TIMEFRAMES)} timeframes")
            run = cold_start(config, venue.pid if apart else None)
            print_start(run, args.symbols, venue.url, before, logs)
            try:
                measure_closes(run, venue.url, args.symbols, args.closes, venue.pid)
            finally:
                code = run.daemon.shutdown()
                run.collector.stop()
            print(f"(shutdown exit code {code}; actors alive after it: {len(alive_actors())})")
            if args.restart:
                logs.levels.clear()
                logs.progress.clear()
                before = Counter(sim_status(venue.url)["stats"]["requests"])
                print(
                    "\n== process restart against the same exchange (its account as the first start left it)"
                )
                again = cold_start(config, None)  # the exchange stays where it was moved
                print_start(again, args.symbols, venue.url, before, logs)
                again.daemon.shutdown()
                again.collector.stop()
    exit_past_lingering_actors()
    return 0


if __name__ == "__main__":
    sys.exit(main())
