"""Market WS helpers: frame parsing (incl. malformed), sharding, the frame rate limiter, backoff."""

from __future__ import annotations

import functools
import operator
from typing import Any

import pytest

from nancemakina.actors.domain.model import ContractType, Kline
from nancemakina.actors.exchange.kline_frames import MalformedFrameError, kline_stream, parse_kline_frame
from nancemakina.actors.exchange.shard_connection import FrameBucket
from nancemakina.actors.exchange.stream_sockets import backoff_delay
from nancemakina.actors.exchange.ws import MarketConnections, assign_streams
from nancemakina.actors.runtime.scheduling import OrderPriority
from tests.unit.clock_support import FakeClock, finished, started_in


def frame(**k_overrides: Any) -> dict[str, Any]:
    k = {
        "t": 1_748_169_180_000,
        "T": 1_748_169_239_999,
        "s": "BTCUSDT",
        "i": "1m",
        "o": "107187.4",
        "c": "107194.2",
        "h": "107194.2",
        "l": "107165.0",
        "v": "22.670",
        "x": True,
    } | k_overrides
    return {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1, "s": "BTCUSDT", "k": k}}


def test_parses_closed_kline_frame():
    kline = parse_kline_frame(frame())
    assert kline is not None
    assert (kline.symbol, kline.timeframe, kline.open_time_ms, kline.closed) == (
        "BTCUSDT",
        "1m",
        1_748_169_180_000,
        True,
    )
    assert (kline.open, kline.high, kline.low, kline.close, kline.volume) == (
        107187.4,
        107194.2,
        107165.0,
        107194.2,
        22.67,
    )


def test_parses_unclosed_and_continuous_kline():
    unclosed = parse_kline_frame(frame(x=False))
    assert unclosed is not None
    assert unclosed.closed is False
    cont = frame()
    del cont["data"]["k"]["s"]
    cont["data"] = {
        "e": "continuous_kline",
        "E": 1,
        "ps": "BTCUSDT",
        "ct": "PERPETUAL",
        "k": cont["data"]["k"],
    }
    kline = parse_kline_frame(cont)
    assert kline is not None
    assert kline.symbol == "BTCUSDT"


@pytest.mark.parametrize("msg", [{"result": None, "id": 1}, {"stream": "x@trade", "data": {"e": "trade"}}])
def test_non_kline_frames_are_none(msg):
    assert parse_kline_frame(msg) is None


@pytest.mark.parametrize(
    "bad",
    [
        frame(o="not-a-number"),
        frame(x="true"),
        frame(i="7m"),
        frame(t=None),
        {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "s": "BTCUSDT"}},
        {"stream": "btcusdt@kline_1m", "data": "oops"},
    ],
)
def test_malformed_kline_frames_name_their_stream(bad):
    with pytest.raises(MalformedFrameError, match="btcusdt@kline_1m"):
        parse_kline_frame(bad)


def test_non_object_frame_is_malformed():
    with pytest.raises(MalformedFrameError):
        parse_kline_frame(["x"])


class _Roots:
    fstream_url = "ws://127.0.0.1:1/"
    dstream_url = "ws://127.0.0.1:1/"


def connections(*, prices: bool) -> tuple[MarketConnections, list[Kline], list[tuple[str, float, int]]]:
    """A ``MarketConnections`` that is never started: ``handle_frame`` is what its loop thread calls."""
    klines: list[Kline] = []
    ticks: list[tuple[str, float, int]] = []
    conns = MarketConnections(
        contract=ContractType.USDT_M,
        roots=_Roots(),
        on_kline=lambda k, _ns: klines.append(k),
        on_status=lambda _e: None,
        on_price=(lambda s, p, ns: ticks.append((s, p, ns))) if prices else None,
    )
    return conns, klines, ticks


def test_unclosed_updates_are_only_prices_when_a_price_sink_is_given():
    conns, klines, ticks = connections(prices=True)
    conns.handle_frame(frame(x=False, c="107200.5"), 11)
    continuous = frame(x=False, c="2.5")
    del continuous["data"]["k"]["s"], continuous["data"]["s"]
    continuous["data"] |= {"e": "continuous_kline", "ps": "ETHUSDT"}
    conns.handle_frame(continuous, 12)
    conns.handle_frame(frame(), 13)  # closed: the full Kline, always
    assert ticks == [("BTCUSDT", 107200.5, 11), ("ETHUSDT", 2.5, 12)]
    assert [(k.symbol, k.closed) for k in klines] == [("BTCUSDT", True)]
    assert (conns.kline_updates, conns.klines_closed, conns.malformed) == (2, 1, 0)


def test_an_unreadable_unclosed_update_still_counts_as_malformed():
    conns, klines, ticks = connections(prices=True)
    conns.handle_frame(frame(x=False, c="n/a"), 1)
    conns.handle_frame(frame(x=False, c=None), 2)
    assert (ticks, klines, conns.malformed, conns.kline_updates) == ([], [], 2, 0)


def test_without_a_price_sink_unclosed_updates_arrive_as_klines():
    conns, klines, _ = connections(prices=False)  # paper trading: its broker follows every update
    conns.handle_frame(frame(x=False, c="107200.5"), 5)
    assert [(k.close, k.closed) for k in klines] == [(107200.5, False)]


def test_stream_name():
    assert kline_stream("BTCUSD_PERP", "5m") == "btcusd_perp@kline_5m"


def test_sharding_fills_connections_up_to_cap_then_opens_new_ones():
    streams = [f"s{i}" for i in range(450)]
    placed = assign_streams({}, streams, 200, next_id=1)
    assert {cid: len(v) for cid, v in placed.items()} == {1: 200, 2: 200, 3: 50}
    assert functools.reduce(operator.iadd, placed.values(), []) == streams


def test_sharding_uses_room_in_existing_connections_first():
    current = {1: {f"a{i}" for i in range(199)}, 2: {"b"}}
    placed = assign_streams(current, ["x", "y", "z"], 200, next_id=3)
    assert placed == {1: ["x"], 2: ["y", "z"]}
    full = {1: {f"a{i}" for i in range(200)}}
    assert assign_streams(full, ["x"], 200, next_id=2) == {2: ["x"]}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_frame_bucket_allows_a_burst_then_paces_at_rate():
    clock = Clock()
    bucket = FrameBucket(5.0, 5.0, clock)
    assert [bucket.reserve() for _ in range(5)] == [0.0] * 5
    assert bucket.reserve() == pytest.approx(0.2)
    assert bucket.reserve() == pytest.approx(0.4)  # reservations queue up
    clock.now += 10.0
    assert bucket.reserve() == 0.0


def test_frame_bucket_with_burst_one_stays_under_binance_limit_in_any_second():
    clock = Clock()
    bucket = FrameBucket(5.0, 1.0, clock)
    sends = []
    for _ in range(40):
        wait = bucket.reserve()
        sends.append(clock.now + wait)
    for start in sends:
        assert (
            sum(1 for s in sends if start <= s < start + 1.0) <= 6
        )  # 5/s plus the one token at the window's edge: < 10


def test_backoff_full_jitter_grows_and_caps():
    assert backoff_delay(0, base_s=0.5, cap_s=30, rand=lambda: 1.0) == 0.5
    assert backoff_delay(3, base_s=0.5, cap_s=30, rand=lambda: 1.0) == 4.0
    assert backoff_delay(50, base_s=0.5, cap_s=30, rand=lambda: 1.0) == 30.0
    assert backoff_delay(5, base_s=0.5, cap_s=30, rand=lambda: 0.0) == 0.0


def test_every_frame_waits_for_a_pending_entry_before_it_is_handled():
    clock = FakeClock()
    priority = OrderPriority(hold_ms=100, clock=clock)
    klines: list[Kline] = []
    conns = MarketConnections(
        contract=ContractType.USDT_M,
        roots=_Roots(),
        on_kline=lambda k, _ns: klines.append(k),
        on_status=lambda _e: None,
        on_price=lambda *_: None,
        before_frame=priority.step_aside,
    )
    priority.begin("ETHUSDT")  # ETHUSDT's pair told its executor to enter
    reader = started_in(clock, lambda: conns.handle_frame(frame(), 1))
    clock.advance_ms(30)
    assert klines == []  # held: the reader is still inside step_aside (the hold is 100 ms)
    priority.end("ETHUSDT")
    assert finished(reader)
    assert priority.stats().waited_s == pytest.approx(0.030)  # held until the entry went out, then handled
    assert [k.symbol for k in klines] == ["BTCUSDT"]
    conns.handle_frame(frame(x=False), 2)  # nothing pending: no wait
    assert priority.stats().waits == 1


def test_every_frame_tells_its_event_time_when_asked():
    times: list[int] = []
    conns = MarketConnections(
        contract=ContractType.USDT_M,
        roots=_Roots(),
        on_kline=lambda _k, _ns: None,
        on_status=lambda _e: None,
        on_price=lambda _s, _p, _ns: None,
        on_event_time=times.append,
    )
    for event_ms, closed in ((101, False), (102, True)):
        f = frame(x=closed)
        f["data"]["E"] = event_ms
        conns.handle_frame(f, 1)
    damaged = frame()
    damaged["data"]["E"] = "soon"
    conns.handle_frame(damaged, 2)  # not a time: left out, the frame itself still read
    conns.handle_frame({"result": None, "id": 1}, 3)
    conns.handle_frame(["not", "an", "object"], 4)
    assert times == [101, 102]
    assert (conns.kline_updates, conns.klines_closed) == (1, 2)
