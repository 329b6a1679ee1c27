"""Hand-written fakes for the control-socket and shell tests (no tests here): a scripted ControlTarget."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nancemakina.actors.ops.control_commands import ControlError
from nancemakina.actors.ops.control_protocol import secret_redactor
from nancemakina.actors.ops.control_server import ControlServer

SECRET = "sk-LIVE-7f3a9c0de1b2"  # what a careless target might leak; never may reach a client
WAIT_S = 5.0
PAIRS = ("BTCUSDT", "ETHUSDT")


class FakeTarget:
    """Answers from canned snapshots and records every call. ``slow`` makes ``health`` block until
    ``release`` is set (``entered`` tells the test it is blocking); ``explode`` makes ``orders`` raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self.slow = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.explode = False
        self.leak = False

    def _record(self, *call: Any) -> None:
        with self._lock:
            self.calls.append(call)

    def _known(self, symbol: str) -> str:
        if symbol not in PAIRS:
            raise ControlError(f"unknown pair {symbol} (pairs: {', '.join(PAIRS)})")
        return symbol

    def actor_tree(self) -> list[dict[str, Any]]:
        self._record("actor_tree")
        rows = [_actor("Root", "root", None, mailbox=0, rate=0.2, messages=40)]
        rows.append(_actor("Supervisor[shared]", "supervisor", "Root", mailbox=0, rate=0.0, messages=8))
        rows.append(
            _actor("PositionLedger", "ledger", "Supervisor[shared]", mailbox=1, rate=3.0, messages=900)
        )
        rows.append(
            _actor("OrderExecutor", "executor", "Supervisor[shared]", mailbox=0, rate=0.5, messages=30)
        )
        for n, symbol in enumerate(PAIRS):
            pair = f"PairSupervisor[{symbol}]"
            rows.append(
                _actor(pair, "pair_supervisor", "Root", mailbox=0, rate=0.0, messages=3, symbol=symbol)
            )
            for tf in ("1m", "5m"):
                busy = 7 if (symbol, tf) == ("ETHUSDT", "1m") else n
                name = f"PairTimeframe[{symbol},{tf}]"
                rows.append(_actor(name, "pair_timeframe", pair, mailbox=busy, rate=1.5, messages=5000))
        return rows

    def inspect(self, symbol: str, timeframe: str | None) -> dict[str, Any]:
        self._record("inspect", symbol, timeframe)
        self._known(symbol)
        frames = [tf for tf in ("1m", "5m") if timeframe in {None, tf}]
        return {
            "symbol": symbol,
            "paused": False,
            "parked": False,
            "position": {"side": "LONG", "quantity": "0.010", "entry_price": "65000.0"},
            "timeframes": [
                {
                    "timeframe": tf,
                    "sma_short": 65010.25,
                    "sma_long": float("nan"),
                    "side": "LONG",
                    "warm": tf == "1m",
                    "unrepaired_gap": False,
                    "pending": None,
                    "last_decision": {"action": "ENTER_LONG", "candle": "2025-06-01T12:00:00Z"},
                    "last_klines": [
                        {
                            "open_time": "2025-06-01T12:00:00Z",
                            "open": 64990.0,
                            "close": 65012.5,
                            "volume": 12.5,
                        }
                    ],
                }
                for tf in frames
            ],
        }

    def positions(self) -> list[dict[str, Any]]:
        self._record("positions")
        row: dict[str, Any] = {
            "symbol": "BTCUSDT",
            "side": "LONG",
            "quantity": "0.010",
            "entry_price": 65000.0,
        }
        if self.leak:
            row |= {"note": f"signed with {SECRET}", "api_secret": "whatever-it-is"}
        return [row]

    def orders(self) -> list[dict[str, Any]]:
        self._record("orders")
        if self.explode:
            raise RuntimeError("ledger snapshot missing")
        return [{"symbol": "BTCUSDT", "type": "STOP_MARKET", "side": "SELL", "stop_price": 64000.0}]

    def decisions(self, symbol: str | None, limit: int) -> list[dict[str, Any]]:
        self._record("decisions", symbol, limit)
        return [{"symbol": symbol or "BTCUSDT", "timeframe": "1m", "action": "ENTER_LONG", "reason": "cross"}]

    def restart_pair(self, symbol: str) -> dict[str, Any]:
        self._record("restart_pair", symbol)
        return {"symbol": self._known(symbol), "restarted": True}

    def pause_pair(self, symbol: str) -> dict[str, Any]:
        self._record("pause_pair", symbol)
        return {"symbol": self._known(symbol), "paused": True}

    def resume_pair(self, symbol: str) -> dict[str, Any]:
        self._record("resume_pair", symbol)
        return {"symbol": self._known(symbol), "paused": False}

    def reload(self) -> dict[str, Any]:
        self._record("reload")
        return {"added": [], "removed": [], "restarted": ["ETHUSDT"], "unchanged": ["BTCUSDT"]}

    def health(self) -> dict[str, Any]:
        self._record("health")
        if self.slow:
            self.entered.set()
            self.release.wait(WAIT_S)
        return {"status": "ok", "checks": {"tree": "running", "naked_positions": 0}}

    def threads(self) -> dict[str, Any]:
        self._record("threads")
        kinds = [
            {"kind": "PairTimeframe", "threads": 250, "cpu_s": 12.5, "wait_s": 3.25, "wakeups": 90_000,
             "wait_per_wakeup_us": 36.1, "cpus": "0"},
        ]  # fmt: skip
        return {"cpu_affinity": [0], "gil_switch_interval_ms": 0.5, "kinds": kinds}


def _actor(
    name: str, kind: str, parent: str | None, *, mailbox: int, rate: float, messages: int, symbol: str = ""
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "parent": parent,
        "state": "running",
        "mailbox": mailbox,
        "msgs_per_s": rate,
        "messages": messages,
        "restarts": 0,
        "uptime_s": 3725.0,
        "last_message_age_s": 0.4,
    }
    return row | ({"symbol": symbol} if symbol else {})


@contextmanager
def socket_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory whose socket paths fit ``sun_path`` (108 bytes) even when pytest's tmp_path is long."""
    if len(str(tmp_path)) < 80:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="nm-", dir="/tmp"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


@contextmanager
def serving(path: Path, target: FakeTarget, **options: Any) -> Iterator[ControlServer]:
    server = ControlServer(path, target, redact=secret_redactor([SECRET]), **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class RawClient:
    """Speaks the wire protocol directly, so the tests pin it down independently of the shell."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT_S)
        self.sock.connect(str(path))
        self.lines = self.sock.makefile("rb")
        self.hello = self.read()
        self._id = 0

    def read(self) -> dict[str, Any] | None:
        line = self.lines.readline()
        return json.loads(line) if line else None

    def send(self, cmd: str, *args: str) -> int:
        self._id += 1
        self.sock.sendall(json.dumps({"id": self._id, "cmd": cmd, "args": list(args)}).encode() + b"\n")
        return self._id

    def ask(self, cmd: str, *args: str) -> dict[str, Any] | None:
        self.send(cmd, *args)
        return self.read()

    def close(self) -> None:
        self.lines.close()
        self.sock.close()


def other_uid() -> int:
    """A uid that is not ours (the fake daemon's 'own' uid in the refusal test)."""
    return os.geteuid() + 4242
