"""The operator's ways into a running bot: the control socket (the shell), the metrics endpoint and its feed.

All three read snapshots (``RunningBot``), never an actor's mailbox. The control socket starts first: a
second bot on the same state directory fails there, before it trades.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..config import StartupError
from .control_protocol import secret_redactor
from .control_server import ControlServer, ControlSocketInUseError
from .inspection import Inspection
from .metrics_feed import MetricsFeed

if TYPE_CHECKING:
    from .bot_view import RunningBot


class OperatorAccess:
    def __init__(self, bot: RunningBot, *, secrets: Iterable[str]) -> None:
        self._bot = bot
        self.telemetry = MetricsFeed(bot)
        self.inspection = Inspection(bot)
        self.control_server = ControlServer(
            bot.config.control_socket_path(), self.inspection, redact=secret_redactor(tuple(secrets))
        )

    def start(self) -> None:
        """Listen on the control socket and the metrics port; ``StartupError`` naming the setting if either
        is taken (another bot on the same state directory, another program on the port)."""
        threads = self._bot.threads
        config = self._bot.config
        source = str(config.config_path or "<defaults>")
        try:
            self.control_server.start()
        except ControlSocketInUseError as exc:
            raise StartupError([f"control.socket_path: {exc}"], source=source) from exc
        threads.watch_named("control-accept", role="the control socket (shell)", essential=False)
        try:
            self.telemetry.start()
        except OSError as exc:
            self.control_server.stop()
            m = config.monitoring
            why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            line = (
                f"monitoring.prometheus_port: cannot listen on {m.host}:{m.prometheus_port}: {why}; "
                "pick another port (0: any free one), or set monitoring.enabled: false"
            )
            raise StartupError([line], source=source) from exc
        threads.watch_named("metrics-http", role="the metrics endpoint", essential=False)
        threads.watch_named("metrics-pump", role="metrics counters", essential=False)

    def stop(self) -> None:
        self.telemetry.stop()
        self.control_server.stop()
