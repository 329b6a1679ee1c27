"""Who tells whom the trends (from the config), the publisher's messages, and the funding watch's reads."""

from __future__ import annotations

from loguru import logger

from nancemakina.actors.config import parse_config
from nancemakina.actors.domain.funding import FundingReading
from nancemakina.actors.domain.model import ContractType, Kline
from nancemakina.actors.exchange.errors import TransientError
from nancemakina.actors.messages import PairTimeframeInbox, SendTrend, TrendUpdated
from nancemakina.actors.tree.funding_watch import FundingWatch
from nancemakina.actors.tree.trend_links import TrendLinks, TrendPublisher, paced_keys, trend_links

MIN = 60_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % 3_600_000


def settings() -> dict:
    config = parse_config(
        {
            "global_settings": {
                "strategy": "v2",
                "v2_strategy": {"trend_timeframes": ["15m", "1h"]},
                "filters": {"btc_correlation_filter_enabled": True, "btc_correlation_ema_period": 30},
            },
            "pairs": {"BTC_USDT": {}, "ETH_USDT": {}, "SOL_USDT": {"strategy": "v1"}},
        },
        env={},
    )
    return config.enabled_pairs()


def test_links_from_the_settings() -> None:
    pairs = settings()
    links = trend_links(pairs)
    assert links[("ETHUSDT", "1m")] == TrendLinks(
        follows=(("ETHUSDT", "15m"), ("ETHUSDT", "1h"), ("BTCUSDT", "15m"))
    )
    # BTCUSDT's 15m keeps two tracks: its own trend (EMA 50) for its 1m actor, the filter's (EMA 30) for ETH's
    assert links[("BTCUSDT", "15m")].publish == ((30, (("ETHUSDT", "1m"),)), (50, (("BTCUSDT", "1m"),)))
    assert links[("ETHUSDT", "1h")].publish == ((50, (("ETHUSDT", "1m"),)),)
    assert not any(symbol == "SOLUSDT" for symbol, _ in links)  # V1: no trends
    paced = paced_keys(pairs, links)
    assert paced[:3] == [("BTCUSDT", "1m"), ("ETHUSDT", "1m"), ("SOLUSDT", "1m")]
    assert set(paced[3:]) == {("BTCUSDT", "15m"), ("BTCUSDT", "1h"), ("ETHUSDT", "15m"), ("ETHUSDT", "1h")}


def test_the_publisher_tells_each_reading_once_per_candle_and_on_request() -> None:
    told: list[tuple[str, str, PairTimeframeInbox]] = []

    def tell(symbol: str, timeframe: str, message: PairTimeframeInbox) -> bool:
        told.append((symbol, timeframe, message))
        return True

    links = TrendLinks(publish=((2, (("ETHUSDT", "1m"), ("SOLUSDT", "1m"))),))
    publisher = TrendPublisher("BTCUSDT", "15m", links, tell)
    for k, close in enumerate([10.0, 11.0, 12.0]):
        kline = Kline(
            symbol="BTCUSDT", timeframe="15m", open_time_ms=T0 + k * 15 * MIN, open=close, high=close,
            low=close, close=close, volume=1.0,
        )  # fmt: skip
        publisher.feed(kline, publish=k > 0)  # the first as warm-up: not told
    readings = [m.reading for _, _, m in told if isinstance(m, TrendUpdated)]
    assert [(r.close_time_ms, r.trend) for r in readings] == [(T0 + 30 * MIN, 1)] * 2 + [
        (T0 + 45 * MIN, 1)
    ] * 2
    told.clear()
    publisher.publish_latest(SendTrend(to_symbol="SOLUSDT", to_timeframe="1m"))
    assert [(s, tf) for s, tf, _ in told] == [("SOLUSDT", "1m")]
    publisher.publish_latest(SendTrend(to_symbol="XRPUSDT", to_timeframe="1m"))  # not a follower
    assert len(told) == 1


class Source:
    def __init__(self, *answers: FundingReading | Exception) -> None:
        self.answers = list(answers)
        self.reads = 0

    def funding_reading(self, symbol: str, contract: ContractType) -> FundingReading:
        self.reads += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_funding_is_read_after_the_candle_reaching_the_next_settlement() -> None:
    eight = T0 + 8 * 3_600_000
    source = Source(
        FundingReading(rate=0.0001, next_funding_ms=eight),
        TransientError("GET /fapi/v1/premiumIndex", "HTTP 503"),
        FundingReading(rate=0.0003, next_funding_ms=eight + 8 * 3_600_000),
    )
    watch = FundingWatch("BTCUSDT", ContractType.USDT_M, source, logger)
    watch.refresh(T0)
    assert (watch.due(eight - MIN), watch.due(eight)) == (False, True)  # what the reader asks first
    watch.after_candle(eight - MIN)  # before the settlement: no read
    assert (source.reads, watch.rate_for(eight - MIN)) == (1, 0.0001)
    watch.after_candle(eight)  # the candle closing at 08:00: read (fails, the old reading stays)
    assert (source.reads, watch.rate_for(eight)) == (2, 0.0001)
    assert watch.due(eight + MIN) is False
    watch.after_candle(eight + MIN)  # retried five minutes later, not before
    assert source.reads == 2
    watch.after_candle(eight + 5 * MIN)
    assert (source.reads, watch.rate_for(eight + 5 * MIN)) == (3, 0.0003)
