"""Entries against a free-running exchange in its own process, with the answers an entry can get lost in.

Every test arms its faults on the exchange before the bot starts, so they hit the bot's first entry, and
judges by the exchange's own state: a position it holds must get its stop (or be closed) at once, and the
slot of a symbol the exchange shows flat must be free again.
"""

from __future__ import annotations

import signal
from pathlib import Path

from tests.integration.system_support import Cleanup, SliceMaker, ledger
from tests.integration.venue_support import (
    START_MS,
    entries,
    first_entry,
    protected_or_flat,
    read_ledger,
    stops_of,
    unprotected_seconds,
    venue_config,
)
from tests.waiting import wait_until

SPEED = 300


def test_unknown_entry_whose_lookups_fail_is_protected_from_what_the_exchange_says(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(900)
    venue = cleanup.venue([data.btc, data.eth], tmp_path / "venue.log", speed=SPEED, start_ms=START_MS)
    remote = venue.remote
    # The entry executes but its answer is lost; every lookup of it fails for a while; the resend is -4116.
    remote.fail_next("unknown", count=1, path="/fapi/v1/order", method="POST")
    remote.fail_next("503", count=12, path="/fapi/v1/order", method="GET")
    config = venue_config(tmp_path, [data.btc, data.eth], venue.url)
    bot = cleanup.bot(config, tmp_path / "bot.log")

    entry = first_entry(remote)
    symbol = entry["symbol"]
    assert entry["status"] == "FILLED"
    wait_until(lambda: stops_of(remote.state(), symbol) or symbol not in remote.state()["positions"],
               20.0, f"{symbol}'s position to get its stop or be closed")  # fmt: skip
    longest, still_open = unprotected_seconds(remote)
    assert not {s: t for s, t in still_open.items() if t > 2.0}, still_open
    assert longest < 2.0, f"a position went {longest:.2f}s without a stop"
    assert [e["clientOrderId"] for e in entries(remote)].count(entry["clientOrderId"]) == 1

    # The ledger settles to the exchange: the position is held (as ours, with its signal), or both are flat.
    def ledger_matches() -> bool:
        state = remote.state()
        held = read_ledger(tmp_path / "state", lambda s: {p.symbol for p in s.open_positions()}, None)
        return held == set(state["positions"])

    wait_until(ledger_matches, 20.0, "the ledger to hold what the exchange holds")
    wait_until(lambda: protected_or_flat(remote), 10.0, "every position to be protected")
    assert bot.process.poll() is None, bot.output()[-3000:]
    bot.signal(signal.SIGTERM)
    assert bot.wait(30.0) == 0, bot.output()[-3000:]


def test_a_symbol_whose_entry_was_never_confirmed_trades_again_once_the_exchange_shows_it_flat(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(900)
    venue = cleanup.venue([data.btc, data.eth], tmp_path / "venue.log", speed=SPEED, start_ms=START_MS)
    remote = venue.remote
    # Every attempt of the first entry is refused with a 5xx (not executed): the executor cannot confirm it.
    remote.fail_next("502", count=10, path="/fapi/v1/order", method="POST")  # two entries' worth
    config = venue_config(tmp_path, [data.btc, data.eth], venue.url)
    bot = cleanup.bot(config, tmp_path / "bot.log")

    def refused_entry() -> str | None:
        found = read_ledger(tmp_path / "state", lambda s: s.events(kind="entry_rejected"), [])
        unconfirmed = [e for e in found if "entry_unconfirmed" in e.detail]
        return unconfirmed[0].symbol if unconfirmed else None

    symbol = wait_until(refused_entry, 90.0, "an entry the executor could not confirm")
    assert symbol not in remote.state()["positions"]  # never executed: the exchange is flat
    # The slot is freed by the reconciliation that found the exchange flat: the next signal trades.
    wait_until(
        lambda: any(e["symbol"] == symbol and e["status"] == "FILLED" for e in entries(remote)),
        60.0,
        f"{symbol} to enter again",
    )
    with ledger(tmp_path / "state") as store:
        void = min(e.at_ms for e in store.events(kind="entry_void") if e.symbol == symbol)
        refused = [(e.at_ms, e.detail) for e in store.events(kind="entry_rejected") if e.symbol == symbol]
    # while the executor still tried, a signal may be refused as position_open; once flat, none may
    assert not [r for at, r in refused if "position_open" in r and at > void + 1000], refused
    assert bot.process.poll() is None, bot.output()[-3000:]
