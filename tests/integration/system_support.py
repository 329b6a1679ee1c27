"""Shared helpers of the whole-system tests (``test_system_*.py``): data slices, configs, a test-held replay
clock, ledger reads, bot subprocesses and what stops everything a test started (the ``slices`` and
``cleanup`` fixtures in conftest.py).

Every system test runs the real actor tree against the local exchange; nothing of ours is faked. Where a
test needs to look at the system between two candles it registers its own lock-step pacer on the
exchange (:class:`StepClock`): the replay then cannot move past a step the test has not acknowledged.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka
import yaml

from nancemakina.actors.backtest.engine import BacktestResult, Trade, run_backtest
from nancemakina.actors.backtest.kline_files import parse_data_arg
from nancemakina.actors.cli.backtest import account_settings, build_runs
from nancemakina.actors.config import Config, load_config
from nancemakina.actors.sim.process import ExchangeProcess
from nancemakina.actors.sim.server import LocalExchange
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore
from nancemakina.supervisor import RootSupervisor
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BTC_CSV = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH_CSV = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
MINUTE_MS = 60_000
FIRST_OPEN = 1748169180000
"""Open time of the first candle of both bundled files."""


# ---- data -----------------------------------------------------------------------------------------------


def write_slice(source: Path, target: Path, rows: int) -> Path:
    """The header and the first ``rows`` candles of ``source``."""
    lines = source.read_text(encoding="utf-8").splitlines()[: rows + 1]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@dataclass(frozen=True, slots=True)
class Slices:
    """Slices of the bundled month: BTC, ETH, and ETH's candles replayed as a third symbol (SOLUSDT)."""

    btc: Path
    eth: Path
    sol: Path
    rows: int

    @property
    def last_open(self) -> int:
        return FIRST_OPEN + (self.rows - 1) * MINUTE_MS


class SliceMaker:
    """Writes each slice length once per session."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._made: dict[int, Slices] = {}
        self._lock = threading.Lock()

    def __call__(self, rows: int) -> Slices:
        with self._lock:
            if rows not in self._made:
                folder = self._root / f"rows{rows}"
                folder.mkdir(parents=True, exist_ok=True)
                self._made[rows] = Slices(
                    btc=write_slice(BTC_CSV, folder / "BTCUSDT_PERP_1m_slice.csv", rows),
                    eth=write_slice(ETH_CSV, folder / "ETHUSDT_PERP_1m_slice.csv", rows),
                    sol=write_slice(ETH_CSV, folder / "SOLUSDT_PERP_1m_slice.csv", rows),
                    rows=rows,
                )
            return self._made[rows]


def entry_step(t: Trade) -> int:
    """Open time of the 1m step whose close decided trade ``t`` (its entry fills at that close)."""
    return t.entry_time_ms - MINUTE_MS


def exit_step(t: Trade) -> int:
    """Open time of the 1m step ``t``'s exit filled in (its exit time is that candle's close time)."""
    return t.exit_time_ms + 1 - MINUTE_MS


# ---- configuration ----------------------------------------------------------------------------------------


def bot_config(
    tmp: Path,
    data: Sequence[Path],
    *,
    pairs: Sequence[str] = ("BTC_USDT", "ETH_USDT"),
    short: int = 5,
    long: int = 20,
    timeframes: Sequence[str] = ("1m",),
    replay: dict[str, Any] | None = None,
    supervisor: dict[str, Any] | None = None,
    execution: dict[str, Any] | None = None,
    pair_overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A replay config as YAML data: short SMAs so a few thousand candles give dozens of trades."""
    overrides = pair_overrides or {}
    return {
        "state_dir": str(tmp / "state"),
        "replay": {"data": [str(p) for p in data], "speed": "max", "exit_at_end": True} | (replay or {}),
        "global_settings": {
            "v1_strategy": {
                "sma_short_period": short,
                "sma_long_period": long,
                "min_signal_interval_minutes": 0,
                "pivot_lookback_candles": 10,
                "indicator_timeframes": list(timeframes),
            }
        },
        "pairs": {key: dict(overrides.get(key, {})) for key in pairs},
        "monitoring": {"enabled": False},
        "supervisor": {"watch_config": False} | (supervisor or {}),
        "execution": execution or {},
    }


def save_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def load(path: Path) -> Config:
    return load_config(path, env={})


def local_exchange(daemon: RootSupervisor) -> LocalExchange:
    """The in-process exchange a replay daemon started (with its fault-injection methods)."""
    exchange = daemon.connections.exchange
    assert isinstance(exchange, LocalExchange)
    return exchange


def backtest(config: Config) -> BacktestResult:
    """What ``nancemakina backtest`` computes on the config's replay data."""
    data = [parse_data_arg(str(p)) for p in config.replay_data_paths()]
    return run_backtest(build_runs(config, data), account_settings(config))


# ---- pacing ----------------------------------------------------------------------------------------------


class StepClock:
    """A lock-step pacer held by the test: the replay cannot finish a step the test has not acked.

    The exchange runs step T (fills, then closed klines) and then waits for every pacer's ack of T. The bot
    acks T once its pairs, executor and ledger have fully reacted to it. :meth:`run_through` releases the
    steps before T and returns when the bot has acked T: the exchange and the ledger then hold exactly the
    state after candle T, and keep it until the next call.
    """

    def __init__(self, exchange: LocalExchange) -> None:
        self.exchange = exchange
        self.pacer = exchange.register_pacer("1m")

    def bot_acked(self) -> int:
        others = [ms for pid, ms in self.exchange.status()["pacers"].items() if pid != self.pacer]
        return max(others, default=-1)

    def run_through(self, open_ms: int, timeout_s: float = 30.0) -> None:
        self.exchange.ack(self.pacer, open_ms - MINUTE_MS)
        wait_until(
            lambda: self.bot_acked() >= open_ms, timeout_s, f"the bot to ack the step opened at {open_ms}"
        )

    def release(self) -> None:
        """Stop holding the clock: the replay runs at the bot's pace again."""
        self.exchange.unregister_pacer(self.pacer)


# ---- ledger -------------------------------------------------------------------------------------------------


@contextmanager
def ledger(state_dir: Path) -> Iterator[LedgerStore]:
    """A read-only view of the ledger file (WAL lets it run next to the writer)."""
    store = LedgerStore.open_read_only(state_dir / "ledger.sqlite3")
    try:
        yield store
    finally:
        store.close()


def ledger_exists(state_dir: Path) -> bool:
    return (state_dir / "ledger.sqlite3").is_file()


def event_kinds(state_dir: Path, limit: int = 1000) -> list[str]:
    with ledger(state_dir) as store:
        return [e.kind for e in reversed(store.events(limit))]


# ---- processes and clean-up ------------------------------------------------------------------------------------


@dataclass(slots=True)
class BotProcess:
    """``python -m actors run --config X`` as a user (or systemd) starts it; output goes to ``log``."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout_s)


class NotifySocket:
    """A datagram socket standing in for systemd's ``$NOTIFY_SOCKET``; reads notifications in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self.messages: list[str] = []
        self._next = 0

    def expect(self, line: str, timeout_s: float) -> str:
        """The next notification (after the last one expected) holding ``line``; earlier ones are skipped."""
        deadline = time.monotonic() + timeout_s
        while True:
            for index in range(self._next, len(self.messages)):
                if line in self.messages[index].splitlines():
                    self._next = index + 1
                    return self.messages[index]
            self._next = len(self.messages)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {line} from the bot within {timeout_s:g}s; got {self.messages}")
            self._sock.settimeout(remaining)
            try:
                self.messages.append(self._sock.recv(4096).decode())
            except TimeoutError:
                continue

    def close(self) -> None:
        self._sock.close()


@dataclass(slots=True)
class Cleanup:
    """Everything a test started, stopped after it whatever happened."""

    daemons: list[RootSupervisor] = field(default_factory=list)
    exchanges: list[LocalExchange] = field(default_factory=list)
    bots: list[BotProcess] = field(default_factory=list)
    sockets: list[NotifySocket] = field(default_factory=list)
    venues: list[ExchangeProcess] = field(default_factory=list)

    def daemon(self, config: Config) -> RootSupervisor:
        daemon = RootSupervisor(config)
        self.daemons.append(daemon)
        return daemon

    def exchange(self, exchange: LocalExchange) -> LocalExchange:
        self.exchanges.append(exchange.start())
        return exchange

    def bot(self, config_path: Path, log: Path, env: dict[str, str] | None = None) -> BotProcess:
        full_env = {k: v for k, v in os.environ.items() if k not in {"NOTIFY_SOCKET", "NANCEMAKINA_CONFIG"}}
        full_env.update(env or {})
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("nancemakina")), "run", "--config", str(config_path)],
                cwd=ROOT,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        bot = BotProcess(process=process, log=log)
        self.bots.append(bot)
        return bot

    def venue(
        self, data: Sequence[Path], log: Path, *, speed: float | str, start_ms: int | None = None
    ) -> ExchangeProcess:
        """A free-running ``nancemakina exchange`` in its own process (it outlives the bots of the test)."""
        venue = ExchangeProcess(data, speed=speed, log=log, start_ms=start_ms)
        self.venues.append(venue)
        return venue.start()

    def notify_socket(self, path: Path) -> NotifySocket:
        sock = NotifySocket(path)
        self.sockets.append(sock)
        return sock

    def close(self) -> None:
        for bot in self.bots:
            if bot.process.poll() is None:
                bot.process.send_signal(signal.SIGKILL)
                bot.process.wait(10)
        for daemon in self.daemons:
            daemon.shutdown()
        for exchange in self.exchanges:
            exchange.stop()
        for venue in self.venues:
            venue.stop()
        for sock in self.sockets:
            sock.close()
        pykka.ActorRegistry.stop_all()
