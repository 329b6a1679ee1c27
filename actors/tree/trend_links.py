"""Which pair actors publish trends to which, built from the pairs' settings; and the publishing itself.

A V2 pair's signal-timeframe actor follows its own ``trend_timeframes`` actors and, with the BTC
correlation filter, the reference pair's ``btc_correlation_timeframe`` actor. ``trend_links`` turns the
effective settings of every trading pair into one ``TrendLinks`` per (symbol, timeframe): the EMA periods it
publishes and to whom, and the actors it follows. ``TrendPublisher`` keeps an actor's tracks and tells their
readings (``TrendUpdated``) through the router — immutable messages between pair actors, no shared state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..config import PairSettings
from ..domain.model import Kline
from ..domain.strategy_v2 import V2Params
from ..domain.trend import TrendReading, TrendTrack
from ..messages import PairTimeframeInbox, SendTrend, TrendUpdated

Key = tuple[str, str]
"""(symbol, timeframe) of a pair actor."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendLinks:
    """One pair actor's part in the trend messages (hashable: it is part of its pair's reload fingerprint)."""

    publish: tuple[tuple[int, tuple[Key, ...]], ...] = ()
    """(EMA period, the deciding actors told each reading) for every track this actor keeps."""
    follows: tuple[Key, ...] = ()
    """The actors whose readings this (deciding) actor needs; asked with ``SendTrend`` when it starts."""


def trend_links(pairs: Mapping[str, PairSettings]) -> dict[Key, TrendLinks]:
    """Every trading pair's links; keys absent from the result neither publish nor follow."""
    publish: dict[Key, dict[int, list[Key]]] = {}
    follows: dict[Key, list[Key]] = {}
    for settings in pairs.values():
        params = settings.strategy_params()
        if not isinstance(params, V2Params):
            continue
        me = (settings.symbol, settings.signal_timeframe)
        sources = [((settings.symbol, tf), params.trend_ema) for tf in params.trend_timeframes]
        btc = params.btc_filter
        if btc is not None and btc.symbol != settings.symbol and btc.symbol in pairs:
            sources.append(((btc.symbol, btc.timeframe), btc.ema_period))
        for source, period in sources:
            recipients = publish.setdefault(source, {}).setdefault(period, [])
            if me not in recipients:
                recipients.append(me)
            follows.setdefault(me, [])
            if source not in follows[me]:
                follows[me].append(source)
    keys = publish.keys() | follows.keys()
    return {
        key: TrendLinks(
            publish=tuple((period, tuple(to)) for period, to in sorted(publish.get(key, {}).items())),
            follows=tuple(follows.get(key, ())),
        )
        for key in sorted(keys)
    }


def paced_keys(pairs: Mapping[str, PairSettings], links: Mapping[Key, TrendLinks]) -> list[Key]:
    """The actors a lock-step replay waits for at each step: every signal timeframe, and every actor that
    publishes a trend (so its reading is told before the next step's candles reach the deciding actors)."""
    keys = [(s.symbol, s.signal_timeframe) for s in pairs.values()]
    return keys + [k for k, link in links.items() if link.publish and k not in keys]


Tell = Callable[[str, str, PairTimeframeInbox], bool]
"""``Router.tell``: to the current incarnation of the actor (symbol, timeframe)."""


class TrendPublisher:
    """The trend tracks of one pair actor, and telling their readings to the actors that follow them."""

    def __init__(self, symbol: str, timeframe: str, links: TrendLinks, tell: Tell) -> None:
        self._tracks = [(TrendTrack(symbol, timeframe, period), to) for period, to in links.publish]
        self._tell = tell

    def feed(self, kline: Kline, *, publish: bool) -> None:
        """A closed candle of this actor's timeframe (in order, once); tell the readings when ``publish``."""
        for track, to in self._tracks:
            reading = track.add(kline.open_time_ms, kline.close)
            if publish:
                self._send(reading, to)

    def publish_latest(self, request: SendTrend | None = None) -> None:
        """Tell the latest readings to everyone (after warm-up), or to the one actor that asked."""
        for track, to in self._tracks:
            if track.latest is None:
                continue
            if request is None:
                self._send(track.latest, to)
            elif (request.to_symbol, request.to_timeframe) in to:
                self._send(track.latest, ((request.to_symbol, request.to_timeframe),))

    def _send(self, reading: TrendReading, to: tuple[Key, ...]) -> None:
        for symbol, timeframe in to:
            self._tell(symbol, timeframe, TrendUpdated(reading=reading))
