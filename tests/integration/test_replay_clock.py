"""The replay clock of a local exchange in another process, as the bot's actors read it: from what the
exchange's frames and answers last reported, not by asking before every record.

The executor stamps an entry's ``submitted`` report with ``Connections.clock_ms`` just before the order
leaves; when that was a request to the exchange, a loopback round trip sat in front of every entry
(``bench/live_latency.py``: emit → entry sent p50 4–12 ms instead of 0.3 ms).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nancemakina.actors.config import load_config
from nancemakina.actors.connections import Connections
from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.kline_frames import kline_stream
from nancemakina.actors.exchange.server_clock import OBSERVATION_TTL_S
from nancemakina.actors.exchange.ws import MarketConnections
from nancemakina.actors.sim.launch import trading_pairs
from tests.integration.system_support import Cleanup, SliceMaker
from tests.integration.venue_support import START_MS, venue_config
from tests.waiting import wait_until

SPEED = 60
"""An unclosed update every 15 s of market time (the exchange's default 3 per candle): 4 frames a second."""


def test_the_replay_clock_is_read_from_the_frames_without_a_request(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(900)
    venue = cleanup.venue([data.btc, data.eth], tmp_path / "exchange.log", speed=SPEED, start_ms=START_MS)
    config = load_config(venue_config(tmp_path, [data.btc, data.eth], venue.url), env={})
    connections = Connections(config, dict(trading_pairs(config)))
    requests: list[str] = []
    exchange: Any = connections.exchange
    send = exchange._http.request

    def counted(verb: str, url: str, *args: Any, **kwargs: Any) -> Any:
        requests.append(url)
        return send(verb, url, *args, **kwargs)

    exchange._http.request = counted
    frames = MarketConnections(
        contract=ContractType.USDT_M,
        roots=connections.market_endpoints,
        on_kline=lambda _k, _ns: None,
        on_status=lambda _e: None,
        on_event_time=connections.frame_clock(),
    )
    try:
        frames.start()
        frames.subscribe([kline_stream("BTCUSDT", "1m")])
        wait_until(lambda: connections.clock.replay_ms() is not None, 10.0, "a frame's event time")

        before = venue.remote.clock_ms
        stamps = [connections.clock_ms() for _ in range(200)]
        after = venue.remote.clock_ms
        assert requests == []  # 200 stamps while the stream flows: not one request
        assert stamps == sorted(stamps)
        assert after >= stamps[-1]  # a lower bound of the replay clock ...
        assert stamps[0] >= before - 2 * SPEED * 1000  # ... at most a frame or two behind it

        frames.stop()
        time.sleep(OBSERVATION_TTL_S + 0.3)  # nothing reported the clock for longer than it is trusted
        late = connections.clock_ms()
        assert [url.rsplit("/", 1)[-1] for url in requests] == ["status"]  # asked once, then known
        assert late >= after
        assert connections.clock_ms() >= late
        assert len(requests) == 1
    finally:
        frames.stop()
        connections.close()
