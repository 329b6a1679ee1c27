"""The bot as a systemd service: signals in, READY/WATCHDOG/STOPPING out, an exit code for the unit.

``run_service`` wraps any bot that can start, wait, reload and say whether it is alive (the root
supervisor): SIGTERM/SIGINT stop it in order, SIGHUP reloads it framed by RELOADING=1 … READY=1, and while
``WATCHDOG_USEC`` is set the watchdog is fed only as long as ``alive()`` holds — a wedged root, a dead
shared actor or a dead essential thread lets systemd restart the process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from loguru import logger

from ..config import StartupError
from ..runtime.gc_schedule import GcSchedule
from ..tree.ledger.ledger_files import LedgerStoreError
from .state_lock import StateDirInUseError
from .systemd import SdNotifier, Watchdog, service_signals, watchdog_interval_s

if TYPE_CHECKING:
    from ..runtime.thread_watch import ThreadWatch


class Service(Protocol):
    @property
    def notifier(self) -> SdNotifier: ...
    @property
    def threads(self) -> ThreadWatch: ...
    @property
    def replay_completed(self) -> bool: ...
    def start(self) -> None: ...
    def wait(self) -> int: ...
    def stop(self) -> None: ...
    def shutdown(self) -> int: ...
    def reload(self) -> object: ...
    def alive(self) -> bool: ...


def run_service(build: Callable[[], Service]) -> int:
    """Build the bot and run it until a signal, an escalation or (replay) the end of the data; returns the
    exit code: 2 when it cannot start (its state directory or ledger may not be used, a setting is wrong:
    one line each saying why and what to do; nothing was changed)."""
    try:
        bot = build()
    except (StateDirInUseError, LedgerStoreError) as exc:
        logger.error(f"refusing to start: {exc}")
        return 2
    except Exception as exc:  # a StartupError has one line per setting to change
        for line in exc.errors if isinstance(exc, StartupError) else (str(exc),):
            logger.error(f"cannot start: {line}")
        return 2
    relay = service_signals(bot.stop, bot.reload, bot.notifier)
    bot.threads.watch(relay.thread, role="signal handling (SIGTERM, SIGHUP)", essential=True)
    watchdog: Watchdog | None = None
    collector: GcSchedule | None = None
    try:
        bot.start()
        collector = GcSchedule()  # READY: the warm-up's heap frozen, full collections at mid-minute
        bot.threads.watch(collector.start(), role="full garbage collections at mid-minute", essential=False)
        interval = watchdog_interval_s()
        if interval is not None:
            watchdog = Watchdog(bot.notifier, bot.alive, interval)
            watchdog.start()
        code = bot.wait()
    except KeyboardInterrupt:
        code = bot.shutdown()
    except StartupError as exc:  # a port in use, ...: one line each, naming the setting
        for line in exc.errors:
            logger.error(f"cannot start: {line}")
        bot.shutdown()
        code = 2
    except Exception:
        logger.exception("fatal error; shutting down")
        bot.shutdown()
        code = 1
    finally:
        if watchdog is not None:
            watchdog.stop()
        if collector is not None:
            collector.stop()
        relay.restore()
    if code == 0 and bot.replay_completed:
        logger.info(
            "replay done: `nancemakina report` writes decisions.csv, trades.csv, summary.json, equity.png"
        )
    return code
