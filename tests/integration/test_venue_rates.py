"""Orders budgeted as Binance budgets them, against a free-running exchange in its own process.

Another client on the same IP (the test) keeps the minute's request weight spent, as a 500-symbol warm-up
does. New orders cost no weight on Binance: the bot's entries and stops must go out at once, judged by
the exchange's own clock (how long after its signal candle an entry filled) and its record of positions
without a stop.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import requests

from nancemakina.actors.domain.model import Leg
from nancemakina.actors.tree.ledger.reconciliation import parse_client_id
from tests.integration.system_support import MINUTE_MS, Cleanup, SliceMaker
from tests.integration.venue_support import START_MS, entries, first_entry, venue_config
from tests.waiting import wait_until

SPEED = 300
SPENT = 2250
"""Kept above the bot's usable weight (90 % of 2,400), below the exchange's limit (no 429 for anyone)."""


class WeightBurner(threading.Thread):
    """Spends the exchange's request weight of the current minute, as another client on the IP would."""

    def __init__(self, url: str) -> None:
        super().__init__(name="weight-burner", daemon=True)
        self.url = url
        self.halt = threading.Event()
        self.spent_at: list[float] = []

    def run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        future = 4_000_000_000_000  # an empty answer still costs the weight of its limit (10 for 1,500)
        params = {"symbol": "BTCUSDT", "interval": "1m", "limit": 1500, "startTime": future}
        while not self.halt.is_set():
            status = session.get(f"{self.url}/sim/v1/status", timeout=5).json()  # costs no weight
            if status["stats"]["weight_used_1m"] + 10 > SPENT:
                self.halt.wait(0.01)
                continue
            session.get(f"{self.url}/fapi/v1/klines", params=params, timeout=5)


def test_orders_go_out_at_once_while_the_minutes_request_weight_is_spent(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(900)
    venue = cleanup.venue([data.btc, data.eth], tmp_path / "venue.log", speed=SPEED, start_ms=START_MS)
    remote = venue.remote
    bot = cleanup.bot(venue_config(tmp_path, [data.btc, data.eth], venue.url), tmp_path / "bot.log")
    first = first_entry(remote)  # warm and trading
    burner = WeightBurner(venue.url)
    burner.start()
    try:
        wait_until(lambda: remote.status()["stats"]["weight_used_1m"] > SPENT - 10, 10.0, "the weight spent")
        since = len(entries(remote))
        later = wait_until(lambda: entries(remote)[since + 1 :], 90.0, "entries while the weight is spent")
    finally:
        burner.halt.set()
        burner.join(10)
    assert first not in later
    for entry in later:
        parsed = parse_client_id(entry["clientOrderId"])
        assert parsed is not None
        assert parsed[2] is Leg.ENTRY
        # decided at the close of its signal candle; filled (exchange clock) within a second of wall time
        late_ms = entry["updateTime"] - (parsed[1] + MINUTE_MS)
        assert late_ms / SPEED < 1.5, f"{entry['clientOrderId']} filled {late_ms / SPEED:.1f}s late"
    report = remote.exposure()
    longest = max((e["end"] - e["start"] for e in report["episodes"]), default=0.0)
    assert longest < 1.0, f"a position waited {longest:.2f}s for its stop"
    assert not [s for s, o in report["open"].items() if o["seconds"] > 1.0]
    bot.signal(signal.SIGTERM)
    assert bot.wait(30.0) == 0, bot.output()[-3000:]
