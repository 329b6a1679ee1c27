"""Fixtures of the contract tests: one local exchange for the package, loopback only, SDK warnings fail.

The exchange replays the bundled BTCUSDT and ETHUSDT month (and BTC's as BTCUSD_PERP) with its clock
paused after 600 candles of history; a test that needs the market to move steps it (``exchange.step``).
Each test leaves both accounts flat and without orders.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from nancemakina.actors.sim import LocalExchange, SimConfig

DATA = Path(__file__).resolve().parents[2] / "data"
BTC = DATA / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = DATA / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
START = 1748169180000 + 600 * 60_000
"""Replay start: 600 candles (10 h) of history for klines, tickers and funding."""
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@pytest.fixture(scope="package", autouse=True)
def loopback_only() -> Iterator[None]:
    """No name but loopback resolves while the contract tests run: a client can reach nothing else."""
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if host not in _LOOPBACK and host is not None:
            raise OSError(f"contract tests stay on loopback; refused to resolve {host!r}")
        return real(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", guarded)
        yield


@pytest.fixture(scope="package")
def exchange() -> Iterator[LocalExchange]:
    config = SimConfig(port=0, paused=True, start_ms=START, updates_per_candle=3)
    with LocalExchange([BTC, ETH, ("BTCUSD_PERP", BTC)], config) as ex:
        yield ex


def signed(exchange: LocalExchange, method: str, path: str, **params) -> object:
    """A signed raw request (the tests' own checks, outside any client)."""
    params["timestamp"] = int(time.time() * 1000)
    query = urlencode(params)
    signature = hmac.new(exchange.api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    answer = requests.request(
        method,
        f"{exchange.rest_url}{path}?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": exchange.api_key},
        timeout=5,
    )
    return answer.json()


def flatten(exchange: LocalExchange) -> None:
    """Cancel every order and close every position on both markets."""
    for root, symbols in (("/fapi", ("BTCUSDT", "ETHUSDT")), ("/dapi", ("BTCUSD_PERP",))):
        for symbol in symbols:
            signed(exchange, "DELETE", f"{root}/v1/allOpenOrders", symbol=symbol)
            signed(exchange, "DELETE", f"{root}/v1/algoOpenOrders", symbol=symbol)
        for row in signed(
            exchange, "GET", f"{root}/v2/positionRisk" if root == "/fapi" else f"{root}/v1/positionRisk"
        ):
            amount = float(row["positionAmt"])
            if amount:
                side = "SELL" if amount > 0 else "BUY"
                qty = row["positionAmt"].lstrip("-")
                signed(
                    exchange,
                    "POST",
                    f"{root}/v1/order",
                    symbol=row["symbol"],
                    side=side,
                    type="MARKET",
                    quantity=qty,
                    reduceOnly="true",
                )


@pytest.fixture(autouse=True)
def clean_account(exchange: LocalExchange) -> Iterator[None]:
    yield
    flatten(exchange)


class SdkComplaints(logging.Handler):
    """The official SDKs never fail on a schema mismatch: they log and loosen. Collect what they log."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "binance_common" in record.pathname or "binance_sdk" in record.pathname:
            self.records.append(record.getMessage())


@pytest.fixture
def sdk_complaints() -> Iterator[SdkComplaints]:
    """Fails the test when the SDK logged a model mismatch, a parse failure or loosened a model."""
    handler = SdkComplaints()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
    from binance_common import utils

    loosened = sorted(m.__name__ for m in utils._relaxed_models)
    complaints = [m for m in handler.records if "match" in m or "parse" in m.lower() or "callback" in m]
    assert not loosened, f"the SDK loosened these models after a mismatch: {loosened}"
    assert not complaints, f"the SDK complained: {complaints}"
