"""The operator's ways into a running bot: the control socket (the shell), the metrics endpoint and its feed.

All three read snapshots (``RunningBot``), never an actor's mailbox. The control socket starts first: a
second bot on the same state directory fails there, before it trades.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .control_protocol import secret_redactor
from .control_server import ControlServer
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
        threads = self._bot.threads
        self.control_server.start()
        threads.watch_named("control-accept", role="the control socket (shell)", essential=False)
        self.telemetry.start()
        threads.watch_named("metrics-http", role="the metrics endpoint", essential=False)
        threads.watch_named("metrics-pump", role="metrics counters", essential=False)

    def stop(self) -> None:
        self.telemetry.stop()
        self.control_server.stop()
