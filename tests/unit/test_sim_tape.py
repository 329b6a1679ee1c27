"""The local exchange's synthetic trade tape and the kline statistics it gives (n, f/L, q, V, Q)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nancemakina.actors.backtest.kline_files import ArchiveColumns
from nancemakina.actors.sim.market import Feed

T0 = 1_700_000_040_000


@dataclass
class Series:
    symbol: str
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    archive: ArchiveColumns | None = None


def series(n: int = 10, *, archive: bool = False, symbol: str = "BTCUSDT") -> Series:
    o = 100.0 + np.arange(n) % 3
    c = o + np.where(np.arange(n) % 2, 0.5, -0.5)  # green, red, green ...
    stats = None
    if archive:
        stats = ArchiveColumns(
            np.full(n, 1000.0), np.arange(n, dtype=np.int64) + 1, np.full(n, 1.5), np.full(n, 150.0)
        )
    return Series(
        symbol, T0 + 60_000 * np.arange(n, dtype=np.int64), o, o + 1, o - 1, c, np.full(n, 2.345), stats
    )


def test_synthetic_trades_partition_ids_and_volume_and_take_sides_from_the_path():
    feed = Feed.from_series(series())
    trades = [tr for i in range(10) for tr in feed.tape.trades(i)]
    assert [tr.first_id for tr in trades] == list(range(1, 41))  # four per candle, consecutive
    for i in range(10):
        four = feed.tape.trades(i)
        assert round(sum(tr.qty for tr in four), 9) == 2.345
        assert [tr.price for tr in four] == list(feed.path(i))
        assert [tr.time - T0 - 60_000 * i for tr in four] == [0, 15_000, 30_000, 45_000]
        prev = float(feed.c[i - 1]) if i else float(feed.o[0])
        assert [tr.buyer_maker for tr in four] == [
            p < q
            for p, q in zip([tr.price for tr in four], [prev, *[tr.price for tr in four[:3]]], strict=True)
        ]
    feed.closed = 10
    row = feed.klines("1m", None, None, 1)[0]
    last = feed.tape.trades(9)
    assert row[8] == 4
    assert float(row[7]) == round(sum(tr.qty * tr.price for tr in last), 8)
    assert float(row[9]) == round(sum(tr.qty for tr in last if not tr.buyer_maker), 3)


def test_archive_statistics_are_carried_through_and_summed_for_longer_intervals():
    feed = Feed.from_series(series(10, archive=True))
    feed.closed = 10
    rows = feed.klines("1m", None, None, 10)
    assert [r[8] for r in rows] == list(range(1, 11))
    assert {r[7] for r in rows} == {"1000.00000000"}
    assert {r[9] for r in rows} == {"1.500"}
    five = feed.klines("5m", None, None, 10)
    minutes = [int(t) for t in feed.t]
    first_bucket = [i for i, t in enumerate(minutes) if t // 300_000 * 300_000 == five[0][0]]
    assert five[0][8] == sum(i + 1 for i in first_bucket)
    event = feed.kline_event("1m", feed.candle(3), closed=True, event_ms=0)["k"]
    assert (event["f"], event["L"], event["n"]) == (1 + 1 + 2 + 3, 1 + 1 + 2 + 3 + 3, 4)
    assert [len(feed.tape.trades(i)) for i in range(4)] == [1, 2, 3, 4]  # fewer trades than path points


def test_a_candle_in_progress_is_a_share_of_its_trades():
    feed = Feed.from_series(series())
    half = feed.candle(0, 2)
    whole = feed.candle(0)
    assert (half.n, half.first_id, half.last_id) == (2, 1, 2)
    assert half.v == whole.v * feed.tape.share(0, 2)
    assert (half.o, half.c) == (whole.o, feed.path(0)[1])
    feed.closed, feed.live = 5, 3
    window = feed.window(T0 + 5 * 60_000 + 30_000)
    assert window is not None
    assert window.n == 5 * 4 + 3
    assert window.c == feed.path(5)[2]


def test_coin_m_quote_volume_is_in_coins():
    feed = Feed.from_series(series(symbol="BTCUSD_PERP"))  # 2.345 contracts: 2 whole ones traded
    trades = feed.tape.trades(0)
    assert sum(t.qty for t in trades) == 2
    assert feed.tape.quote[0] == sum(t.qty * 100 / t.price for t in trades)
