"""Chaos soak: the bot against a free-running exchange process under a seeded schedule of every fault.

The exchange (``nancemakina exchange``) replays three symbols at ``--speed`` × real time in its own process;
the bot (``nancemakina run``, three pairs × three timeframes) trades against it. For ``--duration`` seconds
a seeded schedule (``_chaos_schedule``: same seed, same schedule) injects every fault of ``/sim/v1/faults``,
kills the bot with SIGKILL and restarts it, and reloads it with SIGHUP (good configs and bad). An observer
that never asks the bot's ledger (``_chaos_observer``) checks, and prints at the end:

- the longest time any position had no stop on the exchange (its own wall-clock record), p50/p99, split into
  windows when the bot was down or the exchange refused every order, and the rest;
- entries per signal on the exchange (must be ≤ 1), and entries added to an already open position;
- closed candles decided vs the data: the ledger's decisions (read after the run) against the backtester's
  crossovers of the same candles (0 lost, 0 twice);
- ledger = exchange after every recovery (restart, reload) and periodically;
- every actor alive, or its pair parked with an alert.

Run: python bench/chaos_soak.py [--duration 180] [--seed 1] [--speed 600] [--json FILE] [--workdir DIR]
Exit code 0 when every invariant held.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from _chaos_observer import Observer
from _chaos_schedule import Event, apply_exchange_fault, digest, end_exchange_fault, schedule

from nancemakina.actors.backtest.engine import run_backtest
from nancemakina.actors.backtest.kline_files import load_klines
from nancemakina.actors.cli.backtest import account_settings, build_runs
from nancemakina.actors.config import load_config
from nancemakina.actors.sim.process import ExchangeProcess, command
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore

ROOT = Path(__file__).resolve().parents[1]
DATA = {
    "BTCUSDT": ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
    "ETHUSDT": ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
    "SOLUSDT": ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv",  # ETH's candles as a third pair
}
FIRST_OPEN = 1748169180000
START_MS = FIRST_OPEN + 120 * 60_000
EDGE_MS = 3 * 60_000
"""Decisions this close to the first READY or the final stop may or may not be the bot's: not judged."""
CLASSES = ("clean", "slow", "damaged", "refused", "bot_down")
"""Unprotected episodes by what overlapped them (``classify``)."""
GOAL_S = 1.0
"""Unprotected goal beyond the exchange's own order latency (outside bot-down and order-outage windows)."""


def say(text: str) -> None:
    print(text, flush=True)


def bot_config(work: Path, url: str, variant: int = 0, *, valid: bool = True) -> dict[str, Any]:
    pairs: dict[str, Any] = {"BTC_USDT": {}, "ETH_USDT": {}, "SOL_USDT": {"leverage": 10 + variant % 2}}
    if not valid:
        pairs["ETH_USDT"]["leverage"] = 0  # refused: the running config is kept
    return {
        "state_dir": str(work / "state"),
        "api": {"request_timeout_s": 2.0},
        "replay": {
            "data": [str(DATA["BTCUSDT"]), str(DATA["ETHUSDT"])],
            "exchange_url": url,
            "exit_at_end": False,
        },
        "global_settings": {
            "v1_strategy": {
                "sma_short_period": 5,
                "sma_long_period": 20,
                "min_signal_interval_minutes": 0,
                "pivot_lookback_candles": 10,
                "tp_sl_ratio": 2.0 + 0.5 * (variant // 2 % 2),
                "indicator_timeframes": ["1m", "5m", "15m"],
            }
        },
        "pairs": pairs,
        "monitoring": {"enabled": False},
        "supervisor": {"watch_config": False, "candle_handoff_ms": 1 + variant % 3},
        "execution": {"reconcile_interval_s": 5.0},
    }


class Bot:
    """``nancemakina run`` as a child process, killed and restarted at will."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"NOTIFY_SOCKET", "NANCEMAKINA_CONFIG"}}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*command(), "run", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.starts += 1

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def wait_ready(observer: Observer, bot: Bot, timeout_s: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not bot.alive():
            return False
        check = observer.check_actors("startup")
        observer.found.checks.pop()  # a probe, not a finding
        if check.ok:
            return True
        time.sleep(0.5)
    return False


def actors_ok(observer: Observer, why: str, attempts: int = 10) -> None:
    """Every actor alive (a reload or a restart may take a few seconds to bring pairs back)."""
    for _ in range(attempts - 1):
        check = observer.check_actors(why)
        if check.ok:
            return
        observer.found.checks.pop()
        time.sleep(1.0)
    observer.check_actors(why)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.workdir or tempfile.mkdtemp(prefix="chaos-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    events = schedule(args.seed, args.duration, mean_gap_s=args.mean_gap)
    say(f"chaos soak: seed {args.seed}, {len(events)} events (schedule {digest(events)}), {args.duration:g}s "
        f"at {args.speed}x, work dir {work}")  # fmt: skip
    venue = ExchangeProcess(
        [f"{s}={p}" for s, p in DATA.items()], speed=args.speed, log=work / "exchange.log", start_ms=START_MS
    ).start()
    remote = venue.remote
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(bot_config(work, venue.url)), encoding="utf-8")
    bot = Bot(config, work / "bot.log")
    started = time.monotonic()
    observer = Observer(remote, work / "state", work / "state" / "control.sock", started)
    windows: dict[str, list[tuple[float, float]]] = {"bot_down": [], "outage": []}
    try:
        bot.start()
        if not wait_ready(observer, bot):
            raise RuntimeError(f"the bot did not start: {bot.log.read_text()[-3000:]}")
        first_clock = remote.status()["clockMs"]
        observer.start()
        started = observer.started = time.monotonic()
        ends: list[tuple[float, Event]] = []
        next_check, variant = 30.0, 0
        for event in events:
            while True:
                now = time.monotonic() - started
                for end in [e for e in ends if e[0] <= now]:
                    end_exchange_fault(remote, end[1])
                    ends.remove(end)
                if now >= next_check:
                    observer.check_ledger("periodic", 20.0)
                    actors_ok(observer, "periodic")
                    next_check += 30.0
                    continue
                if now >= event.at:
                    break
                time.sleep(min(0.05, event.at - now))
            wall = time.time()
            if event.kind == "kill":
                bot.kill()
                time.sleep(event.seconds)
                bot.start()
                ready = wait_ready(observer, bot)
                windows["bot_down"].append((wall, time.time() + 2.0))
                if not ready:
                    raise RuntimeError(f"the bot did not come back: {bot.log.read_text()[-3000:]}")
                observer.check_ledger("after restart", 20.0)
                actors_ok(observer, "after restart")
            elif event.kind == "reload":
                p = event.params
                changed = bot_config(work, venue.url, p["variant"], valid=p["valid"])
                config.write_text(yaml.safe_dump(changed), encoding="utf-8")
                bot.signal(signal.SIGHUP)
                time.sleep(2.0)
                actors_ok(observer, "after reload")
                observer.check_ledger("after reload", 20.0)
                if p["valid"]:
                    variant = p["variant"]
                else:  # refused and the running config kept; a restart must find a valid file again
                    config.write_text(yaml.safe_dump(bot_config(work, venue.url, variant)), encoding="utf-8")
            else:
                apply_exchange_fault(remote, event)
                if event.kind in {"latency", "clock-skew"}:
                    ends.append((event.at + event.seconds, event))
                if event.kind == "outage":
                    windows["outage"].append((wall, wall + event.seconds))
        while time.monotonic() - started < args.duration - 10.0:
            time.sleep(0.2)
        for _, event in ends:
            end_exchange_fault(remote, event)
        remote.clear_faults()
        time.sleep(5.0)
        observer.check_ledger("final", 30.0)
        actors_ok(observer, "final")
        last_clock = remote.status()["clockMs"]
        bot.signal(signal.SIGTERM)
        stopped = bot.process.wait(60) if bot.process is not None else None
    finally:
        bot.kill()
        observer.stop()
        exposure = remote.exposure()
        fired = remote.faults()["fired"]
        venue.stop()
    decisions = judge_decisions(load_config(config, env={}), work / "state", first_clock, last_clock)
    classify(exposure["episodes"], windows, fired)
    result = report(args, events, observer, exposure, decisions, stopped, bot.starts)
    result["money"] = judge_money(observer.found.realized.values(), work / "state")
    result["ok"] = result["ok"] and result["money"]["ok"]
    return result


def judge_money(exchange: Iterable[tuple[str, float]], state: Path) -> dict[str, Any]:
    """The ledger's closed trades against the exchange's realised PnL, per symbol: every trade's PnL known
    (a superseded row apart, see below), and the sums equal to 1e-6 (the exchange keeps floats and reports
    each fill's PnL to 8 decimals). Positions still open at the end have realised nothing (the strategy
    closes whole positions)."""
    venue: dict[str, Fraction] = {}
    for symbol, pnl in exchange:
        venue[symbol] = venue.get(symbol, Fraction(0)) + Fraction(pnl)
    store = LedgerStore.open_read_only(state / "ledger.sqlite3")
    try:
        trades = store.trades()
    finally:
        store.close()
    booked: dict[str, Fraction] = {}
    for t in trades:
        booked[t.symbol] = booked.get(t.symbol, Fraction(0)) + Fraction(t.realized_pnl or 0.0)
    unknown = [
        f"{t.symbol}@{t.signal_open_time_ms} {t.close_reason}"
        for t in trades
        if t.realized_pnl is None and t.close_reason != "superseded"
    ]
    # A row a new entry superseded may be the same position, adopted a moment before its own entry was
    # heard (no fill of its own): listed apart; the sums below say whether money was lost.
    superseded = [
        f"{t.symbol}@{t.opened_at_ms}"
        for t in trades
        if t.realized_pnl is None and t.close_reason == "superseded"
    ]
    diff = {s: float(booked.get(s, 0) - venue.get(s, 0)) for s in sorted(venue.keys() | booked.keys())}
    return {
        "trades_closed": len(trades),
        "by_reason": dict(Counter(t.close_reason for t in trades)),
        "pnl_unknown": unknown,
        "superseded_unpriced": superseded,
        "exchange_realized_pnl": {s: float(v) for s, v in sorted(venue.items())},
        "ledger_minus_exchange": diff,
        "ok": not unknown and all(abs(d) < 1e-6 for d in diff.values()),
    }


def judge_decisions(config: Any, state: Path, first_ms: int, last_ms: int) -> dict[str, Any]:
    """The ledger's decisions against the backtester's crossovers of the same candles, inside the window.

    A crossover lost or extra where the exact SMA(short) − SMA(long) of its candle or of the candle before it
    is 0 (a tie, computed in fractions from the data) is counted ``at_ties``, not lost or extra: both run
    talipp's float recurrence, whose last bits depend on the candle it started from (a restarted pair starts
    later than the backtest), so at an exact tie the sign is float noise — a crossover one candle later, or
    a cross and a cross back around the tie.
    """
    data = list(DATA.items())
    expected = run_backtest(build_runs(config, data), account_settings(config)).decisions
    low, high = first_ms + EDGE_MS, last_ms - EDGE_MS
    want = {(d.symbol, d.signal_open_time_ms) for d in expected if low <= d.decided_open_time_ms <= high}
    store = LedgerStore.open_read_only(state / "ledger.sqlite3")
    try:
        rows = [r.decision for r in store.decisions()]
        repeated = len(store.events(1_000_000, kind="decision_repeated"))
    finally:
        store.close()
    have = [(d.symbol, d.signal_open_time_ms) for d in rows if low <= d.decided_open_time_ms <= high]
    lost, extra = want - set(have), set(have) - want
    ties = {k for k in lost | extra if _at_tie(*k, config)}
    lost, extra = lost - ties, extra - ties
    return {
        "window_candles": (high - low) // 60_000,
        "expected": len(want),
        "decided": len(set(have)),
        "lost": sorted(lost)[:20],
        "lost_count": len(lost),
        "extra": sorted(extra)[:20],
        "extra_count": len(extra),
        "at_ties": sorted(ties),
        "twice": repeated + len(have) - len(set(have)),
        "late": sum(1 for d in rows if d.reason is not None and d.reason.value == "late"),
    }


def _at_tie(symbol: str, open_ms: int, config: Any) -> bool:
    """The crossover at ``open_ms`` touches an exact tie: on its candle or on the one before."""
    return _exact_tie(symbol, open_ms, config) or _exact_tie(symbol, open_ms - 60_000, config)


def _exact_tie(symbol: str, open_ms: int, config: Any) -> bool:
    p = config.settings_for(symbol).strategy_params()
    series = load_klines(DATA[symbol], symbol=symbol)
    i = int(np.searchsorted(np.asarray(series.open_time), open_ms))
    closes = [Fraction(repr(float(x))) for x in series.close[i - p.long_period + 1 : i + 1]]
    short = sum(closes[-p.short_period :]) / p.short_period
    return short == sum(closes) / p.long_period


ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/algoOrder", "/fapi/v3/positionRisk", "/fapi/v1/openAlgoOrders",
               "/fapi/v1/openOrders")  # fmt: skip
"""Where a fault can delay a stop: placing it, looking it up, and the reads of a reconciliation."""
REFUSED = {"500", "502", "503", "504", "html", "-1021", "reject"}
DAMAGED_ANSWERS = {"unknown", "truncated", "empty", "reset"}
LOOKBACK_S = 3.0


def classify(
    episodes: list[dict[str, Any]], windows: dict[str, list[tuple[float, float]]], fired: list[list[Any]]
) -> None:
    """Name what overlapped each unprotected episode, from the exchange's own log of the faults it fired:
    ``bot_down``; ``refused`` (a ban, an order outage, an order or one of its reads refused); ``damaged`` (an
    answer lost after the request ran); ``slow`` (injected latency, an answer past the bot's timeout);
    ``clean`` (nothing: the bot's own time, held to the goal)."""
    for e in episodes:
        e["seconds"] = e["end"] - e["start"]
        hits = [
            (kind, what) for t, kind, what in fired
            if e["start"] - LOOKBACK_S <= t <= e["end"]
            and (kind in {"429", "418", "reject", "latency"} or any(p in what for p in ORDER_PATHS))
        ]  # fmt: skip
        kinds = {k for k, _ in hits}
        if _overlaps(e, windows["bot_down"]):
            e["class"] = "bot_down"
        elif kinds & ({"429", "418"} | REFUSED) or _overlaps(e, windows["outage"], pad=1.0):
            e["class"] = "refused"
        elif kinds & DAMAGED_ANSWERS:
            e["class"] = "damaged"
        elif kinds & {"slow", "latency"}:
            e["class"] = "slow"
        else:
            e["class"] = "clean"
        e["faults"] = sorted({f"{k} {w}" for k, w in hits})[:6]


def _overlaps(episode: dict[str, Any], spans: list[tuple[float, float]], pad: float = 0.0) -> bool:
    return any(episode["start"] < end + pad and episode["end"] > start - pad for start, end in spans)


def report(  # noqa: PLR0917 - one call site, every part of the run
    args: argparse.Namespace,
    events: list[Event],
    observer: Observer,
    exposure: dict[str, Any],
    decisions: dict[str, Any],
    stopped: int | None,
    starts: int,
) -> dict[str, Any]:
    episodes = exposure["episodes"]

    def stats(selected: list[dict[str, Any]]) -> dict[str, Any]:
        secs = sorted(e["seconds"] for e in selected)
        if not secs:
            return {"count": 0}
        p99 = secs[min(len(secs) - 1, int(len(secs) * 0.99))]
        return {"count": len(secs), "p50": statistics.median(secs), "p99": p99, "max": secs[-1]}

    entries = observer.found.entries
    checks = observer.found.checks
    by_kind = {k: sum(1 for e in events if e.kind == k) for k in sorted({e.kind for e in events})}
    result = {
        "seed": args.seed,
        "schedule": digest(events),
        "duration_s": args.duration,
        "speed": args.speed,
        "events": by_kind,
        "bot_starts": starts,
        "exit_code": stopped,
        "unprotected": {
            "all": stats(episodes),
            **{c: stats([e for e in episodes if e["class"] == c]) for c in CLASSES},
            "still_open": exposure["open"],
            "longest": sorted(episodes, key=lambda e: -e["seconds"])[:5],
        },
        "positions_opened": exposure["opened"],
        "entries_added_to_open_position": exposure["increased"],
        "signals_entered": len(entries),
        "max_entries_per_signal": max((len(v) for v in entries.values()), default=0),
        "duplicate_entries": {f"{s}@{t}": ids for (s, t), ids in entries.items() if len(ids) > 1},
        "decisions": decisions,
        "checks": {
            "ledger_equals_exchange": f"{sum(c.ok for c in checks if c.what.startswith('ledger'))}/"
            f"{sum(1 for c in checks if c.what.startswith('ledger'))}",
            "actors_alive": f"{sum(c.ok for c in checks if c.what.startswith('actors'))}/"
            f"{sum(1 for c in checks if c.what.startswith('actors'))}",
            "failed": [asdict(c) for c in checks if not c.ok],
            "ledger_converged_max_s": max(
                (c.seconds for c in checks if c.what.startswith("ledger")), default=0
            ),
        },
        "user_stream": dict(observer.found.stream),
    }
    result["ok"] = (
        result["max_entries_per_signal"] <= 1
        and result["entries_added_to_open_position"] == 0
        and decisions["lost_count"] == 0
        and decisions["twice"] == 0
        and decisions["extra_count"] == 0
        and not result["checks"]["failed"]
        and not [s for s, o in exposure["open"].items() if o["seconds"] > GOAL_S]
        and all(e["seconds"] < GOAL_S for e in episodes if e["class"] == "clean")
        and stopped == 0
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of chaos (default 180)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=600.0, help="replay speed, × real time (default 600)")
    parser.add_argument("--mean-gap", type=float, default=3.0, help="mean seconds between events (default 3)")
    parser.add_argument(
        "--workdir", help="where the exchange, the bot and their logs live (default: a temp dir)"
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        Path(args.json).write_text(text, encoding="utf-8")
    say(text)
    say("chaos soak: every invariant held" if result["ok"] else "chaos soak: an invariant was broken")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
