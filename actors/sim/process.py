"""``nancemakina exchange`` as a child process: a venue that outlives the bots it serves, as a real one does.

The exchange runs free (its own clock, its own process and GIL), and is driven and read only over HTTP
(:class:`RemoteExchange`): what tests and the chaos soak judge is the exchange's own state, never the bot's.

    with ExchangeProcess(["data/BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"], speed=600, log=log) as venue:
        venue.remote.fail_next("503", count=3, path="/fapi/v1/order", method="GET")
        config["replay"]["exchange_url"] = venue.url
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from .remote import RemoteExchange

_LISTENING = re.compile(r"local exchange on (http://127\.0\.0\.1:\d+)")


def command() -> list[str]:
    """How to run ``nancemakina``: the console script beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("nancemakina")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("nancemakina")
    if found is None:
        raise FileNotFoundError("the `nancemakina` command is not installed beside Python nor on PATH")
    return [found]


class ExchangeProcess:
    """One ``nancemakina exchange`` child process on an ephemeral loopback port (see the module docstring)."""

    def __init__(
        self,
        data: Sequence[str | Path],
        *,
        speed: float | str,
        log: Path,
        start_ms: int | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.args = [*command(), "exchange", "--port", "0", "--speed", str(speed)]
        for source in data:
            self.args += ["--data", str(source)]
        if start_ms is not None:
            self.args += ["--start", str(start_ms)]
        self.args += list(extra)
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._remote: RemoteExchange | None = None

    @property
    def remote(self) -> RemoteExchange:
        if self._remote is None:
            raise RuntimeError("the exchange process is not started")
        return self._remote

    def start(self, timeout_s: float = 60.0) -> Self:
        """Start it and wait until it listens; raises ``RuntimeError`` with its output if it does not."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
                self.args, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout_s
        while not self.url:
            found = _LISTENING.search(self.output())
            if found is not None:
                self.url = found.group(1)
                break
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the exchange did not start: {self.output()[-2000:]}")
            time.sleep(0.05)
        self._remote = RemoteExchange(self.url)
        return self

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not end in time."""
        process, self._process = self._process, None
        if self._remote is not None:
            self._remote.stop()
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
