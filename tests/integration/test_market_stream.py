"""MarketStream against the local exchange: exactly-once, in-order closed klines through drops and stalls."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pykka
import pytest

from nancemakina.actors.domain.model import TIMEFRAME_MS, ContractType
from nancemakina.actors.exchange.endpoints import Endpoints
from nancemakina.actors.exchange.gateway import BinanceGateway
from nancemakina.actors.exchange.ratelimit import WeightBudget
from nancemakina.actors.exchange.shard_connection import WsConfig
from nancemakina.actors.messages import KlineClosed, KlineGapUnrepaired
from nancemakina.actors.runtime.actor import Actor
from nancemakina.actors.runtime.routing import Router
from nancemakina.actors.sim import LocalExchange, SimConfig
from nancemakina.actors.tree.market.market_stream import (
    MarketStream,
    Subscribe,
)
from nancemakina.actors.tree.market.market_stream_board import MarketStreamBoard
from tests.integration.sim_support import BTC, ETH, START
from tests.waiting import wait_until

M = 60_000
STALL_S = 30.0
"""A stream stall the test ends itself (``stall_stream(0.0)``) once it has seen what it waits for."""
SYMBOLS = ("BTCUSDT", "ETHUSDT")
TIMEFRAMES = ("1m", "3m", "5m", "15m")


@dataclass
class Record:
    """What one fake pair actor saw; ``reached`` fires once ``want`` closed klines arrived."""

    want: int = 0
    klines: list[KlineClosed] = field(default_factory=list)
    gaps: list[KlineGapUnrepaired] = field(default_factory=list)
    reached: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, count: int) -> None:
        with self.lock:
            self.want = count
            if len(self.klines) >= count:
                self.reached.set()
            else:
                self.reached.clear()

    def open_times(self) -> list[int]:
        with self.lock:
            return [m.kline.open_time_ms for m in self.klines]


@dataclass
class Overlap:
    """How many fake pairs were inside ``on_kline_closed`` at once, at most, and in which order they ran."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    inside: int = 0
    most: int = 0
    order: list[tuple[str, str, int]] = field(default_factory=list)
    threads: list[tuple[str, str]] = field(default_factory=list)
    """(timeframe, name of the thread that handled its candle), in the order they ran."""


@dataclass(frozen=True)
class PairBehaviour:
    """How the fake pairs handle a candle: ``busy_s`` of work, and whether they finish its turn."""

    busy_s: float = 0.0
    finish_turn: bool = True
    here: bool = False
    """Whether the reader may decide a candle on its own thread while the pair is idle (``takes_here``)."""


class FakePair(Actor[KlineClosed | KlineGapUnrepaired]):
    """Stands in for ``PairTimeframe``: takes what a market stream sends a pair."""

    def __init__(
        self, record: Record, name: str, overlap: Overlap | None = None, how: PairBehaviour | None = None
    ) -> None:
        super().__init__(name=name)
        self.record = record
        self.overlap = overlap or Overlap()
        self.how = how or PairBehaviour()

    def on_kline_closed(self, msg: KlineClosed) -> None:
        with self.overlap.lock:
            self.overlap.inside += 1
            self.overlap.most = max(self.overlap.most, self.overlap.inside)
            self.overlap.order.append((msg.kline.symbol, msg.kline.timeframe, msg.kline.open_time_ms))
            self.overlap.threads.append((msg.kline.timeframe, threading.current_thread().name))
        if self.how.busy_s:
            # The work under test: a pair deciding for busy_s (releasing the GIL, as waiting does).
            threading.Event().wait(self.how.busy_s)
        with self.overlap.lock:
            self.overlap.inside -= 1
        with self.record.lock:
            self.record.klines.append(msg)
            if self.record.want and len(self.record.klines) >= self.record.want:
                self.record.reached.set()
        if self.how.finish_turn and msg.turn is not None:
            msg.turn.done()

    def on_kline_gap_unrepaired(self, msg: KlineGapUnrepaired) -> None:
        self.record.gaps.append(msg)

    def takes_here(self, message: object) -> bool:
        return self.how.here and isinstance(message, KlineClosed)


@dataclass
class Rig:
    exchange: LocalExchange
    stream: pykka.ActorRef[MarketStream]
    board: MarketStreamBoard
    records: dict[tuple[str, str], Record]
    overlap: Overlap


def expected_open_times(tf: str, steps: int) -> list[int]:
    """Open times of the ``tf`` candles that close within ``steps`` 1m steps from START."""
    ms = TIMEFRAME_MS[tf]
    first = START // ms * ms
    return [t for t in range(first, START + steps * M, ms) if t + ms <= START + steps * M]


@pytest.fixture
def rig(request) -> Iterator[Rig]:
    overrides = dict(getattr(request, "param", {}))
    handoff_ms = overrides.pop("handoff_ms", 0.0)
    decides = overrides.pop("decides", None)
    how = PairBehaviour(**overrides.pop("pairs", {}))
    overlap = Overlap()
    exchange = LocalExchange(
        [BTC, ETH], SimConfig(port=0, paused=True, start_ms=START, updates_per_candle=3)
    ).start()
    try:
        venue = Endpoints.local(exchange.rest_url, exchange.ws_url)
        gateway = BinanceGateway(venue, api_key=None, api_secret=None, budget=WeightBudget())
        router = Router()
        records = {}
        for symbol in SYMBOLS:
            for tf in TIMEFRAMES:
                records[(symbol, tf)] = Record()
                pair = FakePair.start(records[(symbol, tf)], f"pair-{symbol}-{tf}", overlap, how)
                router.register(symbol, tf, pair)
        board = MarketStreamBoard(ContractType.USDT_M)
        config = WsConfig(
            **{
                "stall_timeout_s": 30.0,
                "backoff_base_s": 0.05,
                "backoff_cap_s": 0.2,
                "check_interval_s": 0.05,
                **overrides,
            }
        )
        stream = MarketStream.start(
            contract=ContractType.USDT_M,
            router=router,
            gateway=gateway,
            roots=venue,
            board=board,
            config=config,
            handoff_ms=handoff_ms,
            decides=decides,
        )
        for symbol in SYMBOLS:
            stream.tell(Subscribe.of(symbol, TIMEFRAMES))
        yield Rig(exchange, stream, board, records, overlap)
    finally:
        pykka.ActorRegistry.stop_all(timeout=10)
        exchange.stop()


def wait_subscribed(rig: Rig, streams: int) -> None:
    """Until the exchange lists every stream (SUBSCRIBE frames included)."""
    wait_until(
        lambda: len(rig.exchange.status()["clients"]["streams"]) >= streams,
        10,
        f"{streams} streams subscribed",
    )


def run_and_check(rig: Rig, steps: int) -> None:
    for key, record in rig.records.items():
        record.expect(len(expected_open_times(key[1], steps)))
    for key, record in rig.records.items():
        assert record.reached.wait(10), f"{key}: got {len(record.klines)} of {record.want}"
    for (symbol, tf), record in rig.records.items():
        assert record.open_times() == expected_open_times(tf, steps), (symbol, tf)
        assert all(
            m.kline.closed and m.kline.symbol == symbol and m.kline.timeframe == tf for m in record.klines
        )


def test_every_closed_kline_delivered_once_in_order_for_two_symbols_and_four_timeframes(rig):
    wait_subscribed(rig, 8)
    rig.exchange.step(60)
    run_and_check(rig, 60)
    snap = rig.board.snapshot()
    assert snap.streams == 8
    assert len(snap.connections) == 1
    assert snap.sequencer.gaps_detected == 0
    assert snap.sequencer.duplicates == 0
    assert snap.messages["kline_update"] > 0
    assert snap.messages["malformed"] == 0
    assert rig.board.prices.get("BTCUSDT") is not None
    assert not any(m.backfilled for r in rig.records.values() for m in r.klines)


def test_drop_all_connections_mid_run_loses_and_duplicates_nothing(rig):
    wait_subscribed(rig, 8)
    rig.exchange.step(20)
    run_and_check(rig, 20)
    assert rig.exchange.drop_connections() >= 1
    rig.exchange.step(10)  # published while we are disconnected: must come back over REST
    wait_subscribed(rig, 8)
    rig.exchange.step(20)
    run_and_check(rig, 50)
    one_minute = rig.records[("BTCUSDT", "1m")].klines
    backfilled = [m.kline.open_time_ms for m in one_minute if m.backfilled]
    assert backfilled
    # Candles published while disconnected come over REST; so may later ones, if they closed before the
    # backfill asked the server for its time (the stream's copies are then dropped as duplicates).
    assert set(backfilled) <= set(expected_open_times("1m", 50)[20:])
    assert backfilled == sorted(backfilled)
    snap = rig.board.snapshot()
    assert snap.reconnects >= 1
    assert snap.sequencer.candles_backfilled >= 10
    assert snap.sequencer.unrepaired_gaps == 0
    assert not snap.unrepaired


@pytest.mark.parametrize("rig", [{"stall_timeout_s": 0.3}], indirect=True)
def test_stall_is_detected_and_the_silent_period_backfilled(rig):
    wait_subscribed(rig, 8)
    rig.exchange.step(10)
    run_and_check(rig, 10)
    rig.exchange.stall_stream(STALL_S)
    rig.exchange.step(10)  # nothing is sent on the streams meanwhile
    wait_until(lambda: rig.board.snapshot().restarts.get("stall", 0) >= 1, 5, "a restart for the stall")
    rig.exchange.stall_stream(0.0)  # the stall fault ends before the next candles
    wait_subscribed(rig, 8)
    rig.exchange.step(5)
    run_and_check(rig, 25)
    assert any(m.backfilled for m in rig.records[("ETHUSDT", "1m")].klines)


@pytest.mark.parametrize("rig", [{"stall_timeout_s": 0.3}], indirect=True)
def test_a_market_silent_as_a_whole_is_not_a_stall(rig):
    """A replay waiting for the bot's warm-up sends nothing: its connections are not churned meanwhile."""
    wait_subscribed(rig, 8)
    silent_until = time.monotonic() + 1.5  # five stall timeouts without a frame on any connection
    while time.monotonic() < silent_until:
        assert rig.board.snapshot().reconnects == 0
        time.sleep(0.05)
    rig.exchange.step(10)
    run_and_check(rig, 10)
    assert rig.board.snapshot().restarts.get("stall", 0) == 0


def test_a_gap_on_one_stream_is_repaired_in_order_while_the_other_keys_keep_the_fast_path(rig):
    """Frames of one stream lost on a live connection: its next candle shows the gap; the key is handed
    to the actor, backfilled over REST before that candle, and handed back; nothing reconnects."""
    wait_subscribed(rig, 8)
    rig.exchange.step(10)
    run_and_check(rig, 10)
    rig.exchange.stall_stream(STALL_S, "btcusdt@kline_1m")  # only this stream goes silent
    rig.exchange.step(5)
    rig.exchange.stall_stream(0.0, "btcusdt@kline_1m")  # the stall ends; the connection never noticed (30 s)
    rig.exchange.step(10)
    run_and_check(rig, 25)
    btc = rig.records[("BTCUSDT", "1m")].klines
    assert [m.kline.open_time_ms for m in btc if m.backfilled] == expected_open_times("1m", 15)[10:15]
    others = [r for key, r in rig.records.items() if key != ("BTCUSDT", "1m")]
    assert not any(m.backfilled for r in others for m in r.klines)
    snap = rig.board.snapshot()
    assert snap.reconnects == 0
    assert snap.sequencer.gaps_detected == 1
    assert snap.sequencer.candles_backfilled == 5
    assert snap.sequencer.duplicates == 0
    assert snap.held_keys == 0
    assert not any(r.gaps for r in rig.records.values())


@pytest.mark.parametrize("rig", [{"max_connection_age_s": 0.6, "rotation_overlap_s": 0.2}], indirect=True)
def test_rotation_opens_the_new_connection_first_and_loses_or_repeats_nothing(rig):
    wait_subscribed(rig, 8)
    for _ in range(8):  # candles before, during and after several make-before-break rotations
        rig.exchange.step(5)
        threading.Event().wait(0.15)  # time passing is the point: connections rotate by age (0.6 s)
    run_and_check(rig, 40)
    snap = rig.board.snapshot()
    assert snap.connections[0].rotations >= 1
    assert snap.reconnects == 0
    assert snap.sequencer.gaps_detected == 0
    assert not any(m.backfilled for r in rig.records.values() for m in r.klines)


BUSY = {"busy_s": 0.002}


@pytest.mark.parametrize("rig", [{"handoff_ms": 0.0, "pairs": BUSY}], indirect=True)
def test_without_a_handoff_the_pairs_of_a_close_run_at_the_same_time(rig):
    """The baseline the hand-off changes: woken pair actors overlap (and finish in any order)."""
    wait_subscribed(rig, 8)
    rig.exchange.step(15)
    run_and_check(rig, 15)
    assert rig.overlap.most > 1
    assert rig.board.snapshot().handoffs == 0


@pytest.mark.parametrize("rig", [{"handoff_ms": 500.0, "pairs": BUSY}], indirect=True)
def test_with_a_handoff_each_candle_is_decided_before_the_reader_reads_the_next(rig):
    """One pair at a time, in the order the frames arrived: a later candle of the same close never jumps
    ahead of an earlier one still being decided."""
    wait_subscribed(rig, 8)
    rig.exchange.step(15)
    run_and_check(rig, 15)
    assert rig.overlap.most == 1
    delivered = sum(len(r.klines) for r in rig.records.values())
    # The reader counts the last hand-off just after that pair records its candle.
    wait_until(lambda: rig.board.snapshot().handoffs >= delivered, 5, f"{delivered} hand-offs counted")
    snap = rig.board.snapshot()
    assert snap.handoffs == delivered
    assert snap.handoff_timeouts == 0
    # Candles of a later close never run before every candle of an earlier close has run.
    close_ms = [t + TIMEFRAME_MS[tf] for _, tf, t in rig.overlap.order]
    assert close_ms == sorted(close_ms)


def one_minute_decides(_symbol: str, timeframe: str) -> bool:
    return timeframe == "1m"


@pytest.mark.parametrize(
    "rig", [{"handoff_ms": 500.0, "pairs": BUSY, "decides": one_minute_decides}], indirect=True
)
def test_the_deciding_candles_of_a_close_reach_their_pairs_before_the_indicator_only_ones(rig):
    """The exchange sends each symbol's closing candles together (1m, 3m, 5m, 15m); the 1m pairs decide,
    the others only keep indicators: those wait until both 1m candles of their close are told."""
    wait_subscribed(rig, 8)
    rig.exchange.step(15)
    run_and_check(rig, 15)
    by_close: dict[int, list[str]] = {}
    for _, tf, t in rig.overlap.order:
        by_close.setdefault(t + TIMEFRAME_MS[tf], []).append(tf)
    shared = {close: tfs for close, tfs in by_close.items() if len(set(tfs)) > 1}
    assert len(shared) >= 5  # 3m, 5m and 15m closes within 15 minutes
    for close, tfs in shared.items():
        assert tfs[:2] == ["1m", "1m"], (close, tfs, sorted(by_close))
    held = rig.board.snapshot().candles_held_back
    assert held > 0


@pytest.mark.parametrize(
    "rig", [{"handoff_ms": 500.0, "pairs": {"here": True}, "decides": one_minute_decides}], indirect=True
)
def test_idle_deciding_pairs_have_their_candles_decided_on_the_readers_thread(rig):
    """No thread switch for a deciding candle whose pair is idle: the reader runs its handler itself,
    in arrival order; the indicator-only candles still go to their pairs' threads."""
    wait_subscribed(rig, 8)
    rig.exchange.step(15)
    run_and_check(rig, 15)
    deciding = sum(len(r.klines) for (_, tf), r in rig.records.items() if tf == "1m")
    snap = rig.board.snapshot()
    assert snap.handoffs == snap.handoffs_here == deciding == 30
    assert snap.handoff_timeouts == 0
    by_tf: dict[str, set[str]] = {}
    for tf, thread in rig.overlap.threads:
        by_tf.setdefault(tf, set()).add(thread)
    assert by_tf["1m"] == {"market-stream-USDT_M-ws"}
    assert all("market-stream" not in name for tf, names in by_tf.items() if tf != "1m" for name in names)


@pytest.mark.parametrize("rig", [{"decides": one_minute_decides}], indirect=True)
def test_indicator_candles_held_for_a_deciding_key_under_repair_go_after_the_limit_in_order(rig):
    """BTC 1m goes silent, so no close is ever complete: the indicator-only candles are told anyway once
    held for ``MAX_HOLD_S``, and every key still gets each candle once, in order, repair included."""
    wait_subscribed(rig, 8)
    rig.exchange.step(10)
    run_and_check(rig, 10)
    rig.exchange.stall_stream(STALL_S, "btcusdt@kline_1m")
    for _ in range(5):
        rig.exchange.step(3)  # a 3m close each time: ETH 1m told, BTC 1m missing
        threading.Event().wait(0.1)
    rig.exchange.stall_stream(0.0, "btcusdt@kline_1m")
    rig.exchange.step(5)
    run_and_check(rig, 30)
    snap = rig.board.snapshot()
    assert snap.candles_held_back > 0
    assert snap.sequencer.duplicates == 0
    assert snap.sequencer.gaps_detected == 1


@pytest.mark.parametrize("rig", [{"decides": one_minute_decides}], indirect=True)
def test_with_deciding_first_a_dropped_market_loses_and_repeats_nothing(rig):
    test_drop_all_connections_mid_run_loses_and_duplicates_nothing(rig)


@pytest.mark.parametrize(
    "rig", [{"handoff_ms": 20.0, "pairs": {"busy_s": 0.0, "finish_turn": False}}], indirect=True
)
def test_a_pair_that_never_finishes_its_turn_holds_the_reader_only_for_the_limit(rig):
    wait_subscribed(rig, 8)
    rig.exchange.step(5)
    run_and_check(rig, 5)
    delivered = sum(len(r.klines) for r in rig.records.values())
    # The last wait ends up to 20 ms after the last pair got its candle.
    wait_until(
        lambda: rig.board.snapshot().handoff_timeouts >= delivered, 5, f"{delivered} hand-off timeouts"
    )
    snap = rig.board.snapshot()
    assert snap.handoffs == snap.handoff_timeouts == delivered
    assert snap.sequencer.duplicates == 0
