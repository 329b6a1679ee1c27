"""KlineSequencer: every verdict, gaps at edges, reconnect ranges, overlap dedupe, unrepaired gaps."""

from __future__ import annotations

import pytest

from nancemakina.actors.domain.kline_sequencer import KlineSequencer, OpenRange, Verdict
from nancemakina.actors.domain.model import Kline

M = 60_000
T0 = 1_748_169_180_000  # a 1m boundary
H = 3_600_000


def k(t: int, tf: str = "1m", symbol: str = "BTCUSDT") -> Kline:
    return Kline(symbol=symbol, timeframe=tf, open_time_ms=t, open=1, high=1, low=1, close=1, volume=1)


def test_first_kline_of_untracked_key_is_delivered_then_next_in_order():
    seq = KlineSequencer()
    assert seq.accept(k(T0)).verdict is Verdict.DELIVER
    assert seq.accept(k(T0 + M)).verdict is Verdict.DELIVER
    assert seq.last_open("BTCUSDT", "1m") == T0 + M
    assert seq.stats().delivered == 2


@pytest.mark.parametrize("t", [T0, T0 - M, T0 - 10 * M])
def test_same_or_older_open_time_is_a_duplicate_and_counted(t):
    seq = KlineSequencer()
    seq.accept(k(T0))
    assert seq.accept(k(t)).verdict is Verdict.DUPLICATE
    assert seq.stats().duplicates == 1
    assert seq.last_open("BTCUSDT", "1m") == T0


def test_gap_returns_exact_missing_range_and_does_not_consume_the_kline():
    seq = KlineSequencer()
    seq.accept(k(T0))
    got = seq.accept(k(T0 + 4 * M))
    assert got.verdict is Verdict.GAP
    assert got.missing == OpenRange(symbol="BTCUSDT", timeframe="1m", start_ms=T0 + M, end_ms=T0 + 3 * M)
    assert got.missing.count == 3
    assert seq.last_open("BTCUSDT", "1m") == T0
    assert seq.stats().gaps_detected == 1


def test_single_missing_candle_is_a_one_candle_range():
    seq = KlineSequencer()
    seq.accept(k(T0))
    missing = seq.accept(k(T0 + 2 * M)).missing
    assert missing is not None
    assert (missing.start_ms, missing.end_ms, missing.count) == (T0 + M, T0 + M, 1)


def test_gap_repaired_by_backfill_then_newer_delivered_and_overlap_deduped():
    seq = KlineSequencer()
    seq.accept(k(T0))
    gap = seq.accept(k(T0 + 3 * M))
    for t in (T0 + M, T0 + 2 * M):
        assert seq.accept(k(t), backfilled=True).verdict is Verdict.DELIVER
    assert gap.missing is not None
    assert seq.settle_gap(gap.missing) is None
    assert seq.accept(k(T0 + 3 * M)).verdict is Verdict.DELIVER
    # the stream replays the overlap after a reconnect: all dropped
    assert [seq.accept(k(T0 + i * M)).verdict for i in range(4)] == [Verdict.DUPLICATE] * 4
    s = seq.stats()
    assert (s.delivered, s.candles_backfilled, s.duplicates, s.unrepaired_gaps) == (4, 2, 4, 0)


def test_exchange_missing_the_tail_of_a_gap_is_unrepaired_and_newer_still_delivered():
    seq = KlineSequencer()
    seq.accept(k(T0))
    gap = seq.accept(k(T0 + 4 * M))
    seq.accept(k(T0 + M), backfilled=True)  # REST has only the first of three
    assert gap.missing is not None
    hole = seq.settle_gap(gap.missing)
    assert hole == OpenRange(symbol="BTCUSDT", timeframe="1m", start_ms=T0 + 2 * M, end_ms=T0 + 3 * M)
    assert seq.accept(k(T0 + 4 * M)).verdict is Verdict.DELIVER
    assert seq.unrepaired("BTCUSDT", "1m") == (hole,)
    assert seq.stats().unrepaired_candles == 2


def test_hole_before_a_backfilled_candle_is_unrepaired_never_invented():
    seq = KlineSequencer()
    seq.accept(k(T0))
    seq.accept(k(T0 + 4 * M))  # GAP [T0+1, T0+3]
    got = seq.accept(k(T0 + 3 * M), backfilled=True)  # REST lacks T0+1 and T0+2
    assert got.verdict is Verdict.DELIVER
    (hole,) = seq.unrepaired("BTCUSDT", "1m")
    assert (hole.start_ms, hole.end_ms) == (T0 + M, T0 + 2 * M)
    assert seq.stats().delivered == 2  # nothing invented for the hole


def test_empty_backfill_makes_whole_gap_unrepaired():
    seq = KlineSequencer()
    seq.accept(k(T0))
    gap = seq.accept(k(T0 + 3 * M))
    assert gap.missing is not None
    assert seq.settle_gap(gap.missing) == gap.missing
    assert seq.accept(k(T0 + 3 * M)).verdict is Verdict.DELIVER


def test_keys_are_independent():
    seq = KlineSequencer()
    seq.accept(k(T0))
    assert seq.accept(k(T0, symbol="ETHUSDT")).verdict is Verdict.DELIVER
    assert seq.accept(k(T0, tf="5m")).verdict is Verdict.DELIVER
    assert seq.accept(k(T0 + 2 * M, symbol="ETHUSDT")).verdict is Verdict.GAP
    assert seq.accept(k(T0 + M)).verdict is Verdict.DELIVER


def test_higher_timeframe_steps():
    seq = KlineSequencer()
    seq.accept(k(T0 - T0 % H, tf="1h"))
    assert seq.accept(k(T0 - T0 % H + H, tf="1h")).verdict is Verdict.DELIVER
    gap = seq.accept(k(T0 - T0 % H + 4 * H, tf="1h"))
    assert gap.missing is not None
    assert gap.missing.count == 2


def test_after_reconnect_range_ends_at_last_candle_closed_by_now():
    seq = KlineSequencer()
    seq.accept(k(T0))
    seq.accept(k(T0 - T0 % H, tf="1h"))
    now = T0 + 5 * M + 30_000  # candles T0+1..T0+4 have closed; T0+5 is still open
    assert seq.after_reconnect(now) == [
        OpenRange(symbol="BTCUSDT", timeframe="1m", start_ms=T0 + M, end_ms=T0 + 4 * M)
    ]  # the 1h candle cannot have closed yet: left out


def test_after_reconnect_exactly_at_a_close_includes_that_candle_and_filters_keys():
    seq = KlineSequencer()
    seq.accept(k(T0))
    seq.accept(k(T0, symbol="ETHUSDT"))
    ranges = seq.after_reconnect(T0 + 2 * M, keys=[("ETHUSDT", "1m"), ("XRPUSDT", "1m")])
    assert ranges == [OpenRange(symbol="ETHUSDT", timeframe="1m", start_ms=T0 + M, end_ms=T0 + M)]


def test_after_reconnect_nothing_when_up_to_date():
    seq = KlineSequencer()
    seq.accept(k(T0))
    assert seq.after_reconnect(T0 + 2 * M - 1) == []


def test_reconnect_backfill_then_stream_overlap_is_exactly_once():
    seq = KlineSequencer()
    seq.accept(k(T0))
    delivered = [T0]
    for r in seq.after_reconnect(T0 + 4 * M):
        backfill = range(r.start_ms, r.end_ms + 1, M)
        delivered += [t for t in backfill if seq.accept(k(t), backfilled=True).verdict is Verdict.DELIVER]
    resumed = (T0 + 2 * M, T0 + 3 * M, T0 + 4 * M)  # the resumed stream repeats what REST gave
    delivered += [t for t in resumed if seq.accept(k(t)).verdict is Verdict.DELIVER]
    assert delivered == [T0 + i * M for i in range(5)]


def test_track_seeds_a_key_so_the_first_streamed_candle_proves_continuity():
    seq = KlineSequencer()
    seq.track("BTCUSDT", "1m", T0)
    seq.track("BTCUSDT", "1m", T0 + 99 * M)  # already tracked: no-op
    assert seq.accept(k(T0 + 2 * M)).verdict is Verdict.GAP


def test_forget_drops_key_and_its_gaps():
    seq = KlineSequencer()
    seq.accept(k(T0))
    gap = seq.accept(k(T0 + 2 * M))
    assert gap.missing is not None
    seq.settle_gap(gap.missing)
    seq.forget("BTCUSDT", "1m")
    assert seq.last_open("BTCUSDT", "1m") is None
    assert seq.unrepaired("BTCUSDT", "1m") == ()
    assert seq.after_reconnect(T0 + 100 * M) == []
