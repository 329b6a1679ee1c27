"""The local exchange serves a funding-rate archive file as of its replay clock (premiumIndex, fundingRate,
markPrice), and the bot's gateway reads it as the funding filter's reading.

The file is SYNTHETIC (``tests/funding_support.py``: the archive's layout, made-up rates).
"""

from __future__ import annotations

from pathlib import Path

import requests

from nancemakina.actors.backtest.funding_files import load_funding
from nancemakina.actors.domain.funding import FundingReading
from nancemakina.actors.domain.model import ContractType
from tests.funding_support import write_synthetic_funding
from tests.integration.gateway_support import make_gateway
from tests.integration.sim_support import BTC, START, running

HOUR = 3_600_000


def test_premium_index_follows_the_archive_as_of_the_clock(tmp_path: Path) -> None:
    synthetic = write_synthetic_funding(tmp_path, "BTCUSDT")
    history = load_funding("BTCUSDT", [synthetic])
    with running(data=(BTC,), funding_rates=(str(synthetic),)) as exchange:
        gateway = make_gateway(exchange, timeout_s=5.0)
        first = gateway.funding_reading("BTCUSDT", ContractType.USDT_M)
        assert first == history.reading_at(START)
        settlement = first.next_funding_ms
        exchange.step((settlement - START) // 60_000)  # the replay clock reaches the next settlement
        after = gateway.funding_reading("BTCUSDT", ContractType.USDT_M)
        assert after == history.reading_at(settlement)
        assert after == FundingReading(rate=after.rate, next_funding_ms=settlement + 8 * HOUR)
        rows = requests.get(
            f"{exchange.rest_url}/fapi/v1/fundingRate", params={"symbol": "BTCUSDT", "limit": 2}, timeout=5
        ).json()
        assert [r["fundingTime"] for r in rows] == [settlement - 8 * HOUR, settlement]
        assert float(rows[-1]["fundingRate"]) == after.rate


def test_without_a_file_the_rate_is_zero_every_eight_hours() -> None:
    with running(data=(BTC,)) as exchange:
        reading = make_gateway(exchange, timeout_s=5.0).funding_reading("BTCUSDT", ContractType.USDT_M)
        assert reading.rate == 0.0
        assert reading.next_funding_ms % (8 * HOUR) == 0
