"""Local exchange pieces without a server: kline aggregation, pacers, request admission."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import numpy as np
import pytest

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.sim import rest
from nancemakina.actors.sim.clock import Pacers
from nancemakina.actors.sim.config import SimConfig
from nancemakina.actors.sim.errors import SimError
from nancemakina.actors.sim.guard import SIGNED, WeightWindow, check, klines_weight
from nancemakina.actors.sim.market import Feed, contract_type_of


class Series:
    symbol = "BTCUSDT"

    def __init__(self, n: int, start: int = 1_700_000_040_000):
        self.open_time = start + 60_000 * np.arange(n, dtype=np.int64)
        self.open = 100.0 + np.arange(n, dtype=np.float64)
        self.close = self.open + 0.5
        self.high = self.open + 1.0
        self.low = self.open - 1.0
        self.volume = np.ones(n)


def test_klines_only_closed_and_aggregated_on_boundaries():
    feed = Feed.from_series(Series(20))
    feed.closed = 12
    rows = feed.klines("1m", None, None, 500)
    assert len(rows) == 12
    assert rows[-1][0] == int(feed.t[11])
    five = feed.klines("5m", None, None, 500)
    assert all(r[0] % 300_000 == 0 for r in five)
    assert all(r[6] < int(feed.t[12]) for r in five)  # only closed ones
    last = five[-1]
    members = [i for i in range(12) if int(feed.t[i]) // 300_000 * 300_000 == last[0]]
    assert last[1] == feed.price(float(feed.o[members[0]]))
    assert last[4] == feed.price(float(feed.c[members[-1]]))
    assert float(last[5]) == len(members)


def test_interval_state_closes_with_last_minute():
    feed = Feed.from_series(Series(20))
    closes = []
    for i in range(20):
        partial, _ = feed.interval_state("5m", i, 1)  # the candle in progress, at its open
        assert partial.c == float(feed.o[i])
        agg, closed = feed.interval_state("5m", i, None)
        if closed:
            closes.append(agg)
    for agg in closes:
        idx = [i for i in range(20) if int(feed.t[i]) // 300_000 * 300_000 == agg.open_time]
        assert agg.o == float(feed.o[idx[0]])
        assert agg.c == float(feed.c[idx[-1]])
        assert agg.h == max(float(feed.h[i]) for i in idx)
        assert agg.v == len(idx)
        assert agg.n == 4 * len(idx)  # four synthetic trades per 1m candle


def test_contract_type_of():
    assert contract_type_of("BTCUSD_PERP") is ContractType.COIN_M
    assert contract_type_of("ETHUSD_250926") is ContractType.COIN_M
    assert contract_type_of("BTCUSDT") is ContractType.USDT_M


def test_pacers_wait_for_acks_of_their_interval():
    async def main():
        pacers = Pacers()
        one = pacers.register("1m")
        five = pacers.register("5m")
        step = 1_700_000_040_000  # closes 1_700_000_100_000, a 5m boundary
        assert set(pacers.pending(step)) == {one, five}
        waiter = asyncio.create_task(pacers.wait(step, 2.0))
        pacers.ack(one, step)
        pacers.ack(five, step + 60_000 - 300_000)
        assert await waiter is True
        assert pacers.pending(step + 60_000) == [one]  # the 5m pacer owes nothing until the next 5m close
        assert await pacers.wait(step + 120_000, 0.05) is False
        assert pacers.timeouts == 1
        with pytest.raises(KeyError):
            pacers.ack("nope", 0)

    asyncio.run(main())


def _signed(params: dict[str, str], secret: str) -> tuple[dict[str, str], str]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return params | {"signature": signature}, f"{query}&signature={signature}"


def test_signature_timestamp_and_key_checks():
    config = SimConfig()
    headers = {"X-MBX-APIKEY": config.api_key}
    params, query = _signed(
        {"symbol": "BTCUSDT", "timestamp": str(int(time.time() * 1000))}, config.api_secret
    )
    check(SIGNED, headers=headers, params=params, raw_query=query, raw_body="", config=config)
    bad, bad_query = _signed({"symbol": "BTCUSDT", "timestamp": str(int(time.time() * 1000))}, "wrong")
    with pytest.raises(SimError) as info:
        check(SIGNED, headers=headers, params=bad, raw_query=bad_query, raw_body="", config=config)
    assert info.value.code == -1022
    old, old_query = _signed({"timestamp": str(int(time.time() * 1000) - 10_000)}, config.api_secret)
    with pytest.raises(SimError) as info:
        check(SIGNED, headers=headers, params=old, raw_query=old_query, raw_body="", config=config)
    assert info.value.code == -1021
    with pytest.raises(SimError) as info:
        check(
            SIGNED,
            headers={"X-MBX-APIKEY": "x"},
            params=params,
            raw_query=query,
            raw_body="",
            config=config,
        )
    assert (info.value.code, info.value.status) == (-2015, 401)


def test_weight_window_and_klines_weights():
    window = WeightWindow(limit=10)
    assert window.charge(10, now=120.0) is None
    assert window.charge(1, now=150.0) == 31  # seconds to the next minute, plus one
    assert window.charge(1, now=180.0) is None  # a new minute
    assert [klines_weight(n) for n in (1, 99, 100, 499, 500, 1000, 1001)] == [1, 1, 2, 2, 5, 5, 10]


def test_config_rejects_non_loopback():
    with pytest.raises(ValueError, match="loopback"):
        SimConfig(host="0.0.0.0")


def test_user_trades_weigh_what_binance_charges_per_market() -> None:
    """USDⓈ-M 5; COIN-M 20 by symbol and 40 by pair (Account Trade List, both markets' docs)."""
    weights = {
        (ctype, route.path): route.weight
        for ctype, route in rest.routes()
        if route.path.endswith("/userTrades")
    }
    assert weights[(ContractType.USDT_M, "/fapi/v1/userTrades")]({"symbol": "BTCUSDT"}) == 5
    coin = weights[(ContractType.COIN_M, "/dapi/v1/userTrades")]
    assert (coin({"symbol": "BTCUSD_PERP"}), coin({"pair": "BTCUSD"})) == (20, 40)
