"""Helpers of the tests that run the bot against a free-running exchange in its own process.

The exchange (``nancemakina exchange``) replays at hundreds of times real time and never waits for the bot;
the bot is a real ``nancemakina run`` process. Everything is judged by what the exchange itself says: its
orders, positions and open algo orders (``/sim/v1/orders``, ``/sim/v1/state``) and the wall-clock time its
positions spent without a stop (``/sim/v1/exposure``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from nancemakina.actors.sim.remote import RemoteExchange
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore, LedgerStoreError
from tests.integration.system_support import FIRST_OPEN, MINUTE_MS, bot_config, ledger, save_config
from tests.waiting import wait_until

T = TypeVar("T")
HISTORY_MINUTES = 60
"""The exchange starts its replay this far into the data, so the bot warms up from real history."""
START_MS = FIRST_OPEN + HISTORY_MINUTES * MINUTE_MS


def venue_config(
    tmp: Path,
    data: Sequence[Path],
    url: str,
    *,
    name: str = "config.yaml",
    execution: dict[str, Any] | None = None,
    **overrides: Any,
) -> Path:
    """A bot config paired with the exchange at ``url`` (short SMAs: trades every few dozen candles)."""
    raw = bot_config(tmp, data, execution=execution, **overrides)
    raw["replay"] |= {"exchange_url": url, "exit_at_end": False}
    return save_config(tmp / name, raw)


def entries(remote: RemoteExchange) -> list[dict[str, Any]]:
    """Every entry order the exchange holds (our client ids end in ``-E``)."""
    return [o for o in remote.orders() if o["clientOrderId"].endswith("-E")]


def first_entry(remote: RemoteExchange, timeout_s: float = 90.0) -> dict[str, Any]:
    found: list[dict[str, Any]] = wait_until(lambda: entries(remote), timeout_s, "the bot's first entry")
    return found[0]


def stops_of(state: dict[str, Any], symbol: str) -> list[dict[str, Any]]:
    return [a for a in state["openAlgoOrders"] if a["symbol"] == symbol and a["type"] == "STOP_MARKET"]


def unprotected_seconds(remote: RemoteExchange) -> tuple[float, dict[str, float]]:
    """The longest finished episode without a stop, and the ones still open (seconds), per the exchange."""
    report = remote.exposure()
    longest = report["longest"]["seconds"] if report["longest"] else 0.0
    return longest, {s: o["seconds"] for s, o in report["open"].items()}


def protected_or_flat(remote: RemoteExchange) -> bool:
    """Every position the exchange holds has a STOP_MARKET on the exchange."""
    state = remote.state()
    return all(stops_of(state, symbol) for symbol in state["positions"])


def read_ledger(state: Path, read: Callable[[LedgerStore], T], default: T) -> T:
    """``read`` on a read-only view of the bot's ledger, or ``default`` while the bot has not made it yet."""
    try:
        with ledger(state) as store:
            return read(store)
    except LedgerStoreError:
        return default
