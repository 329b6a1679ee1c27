"""``nancemakina run`` as systemd runs it: READY=1 when trading, SIGHUP reloads the config file (framed by
RELOADING=1 … READY=1), SIGTERM stops in order (STOPPING=1) and exits 0 within the shutdown timeout.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.integration.system_support import (
    Cleanup,
    SliceMaker,
    bot_config,
    load,
    save_config,
)
from tests.waiting import wait_until


def test_sighup_applies_the_changed_config_and_sigterm_exits_cleanly(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(300)
    path = tmp_path / "config.yaml"
    save_config(path, bot_config(tmp_path, [data.btc, data.eth], replay={"exit_at_end": False}))
    config = load(path)
    notify = cleanup.notify_socket(tmp_path / "notify")
    bot = cleanup.bot(path, tmp_path / "bot.log", env={"NOTIFY_SOCKET": str(notify.path)})

    assert "STATUS=trading 2 pairs (replay)" in notify.expect("READY=1", 60.0)
    save_config(
        path, bot_config(tmp_path, [data.btc, data.eth], pairs=("BTC_USDT",), replay={"exit_at_end": False})
    )
    bot.signal(signal.SIGHUP)
    reloading = notify.expect("RELOADING=1", 30.0)
    assert any(line.startswith("MONOTONIC_USEC=") for line in reloading.splitlines())
    notify.expect("READY=1", 30.0)
    wait_until(lambda: "removed ('ETHUSDT',)" in bot.output(), 10.0, "the reload to be logged as applied")
    assert bot.process.poll() is None

    started = time.monotonic()
    bot.signal(signal.SIGTERM)
    notify.expect("STOPPING=1", 10.0)
    assert bot.wait(config.supervisor.shutdown_timeout_s + 5.0) == 0, bot.output()[-3000:]
    assert time.monotonic() - started <= config.supervisor.shutdown_timeout_s
    assert "tree stopped, exit code 0" in bot.output()
