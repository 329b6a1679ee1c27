"""PairBoard: the pair actors' status board, written by 250 actors per minute close, read by the shell."""

from __future__ import annotations

import threading

from nancemakina.actors.domain.strategy import PairStrategy, StrategyParams
from nancemakina.actors.tree.pair_timeframe import PairBoard, PairStatus

SNAPSHOT = PairStrategy("BTCUSDT", "1m", StrategyParams(short_period=5, long_period=20)).snapshot()


def status(symbol: str, timeframe: str, decisions: int = 0, *, warm: bool = True) -> PairStatus:
    return PairStatus(
        symbol=symbol,
        timeframe=timeframe,
        trading=timeframe == "1m",
        warm=warm,
        unrepaired_gap=False,
        strategy=SNAPSHOT,
        gaps_backfilled=0,
        decisions=decisions,
    )


def test_a_known_key_is_updated_in_place_and_a_new_key_swaps_in_a_copy() -> None:
    board = PairBoard()
    board.publish(status("BTCUSDT", "1m"))
    first = board.statuses
    board.publish(status("BTCUSDT", "1m", decisions=7))
    assert board.statuses is first  # no copy of every other key per kline
    assert board.statuses[("BTCUSDT", "1m")].decisions == 7
    board.publish(status("ETHUSDT", "1m"))
    assert board.statuses is not first  # a reader holding ``first`` never sees it grow
    assert set(first) == {("BTCUSDT", "1m")}
    assert set(board.statuses) == {("BTCUSDT", "1m"), ("ETHUSDT", "1m")}


def test_warm_and_drop() -> None:
    board = PairBoard()
    board.publish(status("BTCUSDT", "1m", warm=False))
    board.publish(status("BTCUSDT", "5m"))
    board.publish(status("ETHUSDT", "1m"))
    assert not board.warm({("BTCUSDT", "1m"), ("BTCUSDT", "5m")})
    board.publish(status("BTCUSDT", "1m"))
    assert board.warm({("BTCUSDT", "1m"), ("BTCUSDT", "5m")})
    assert not board.warm({("SOLUSDT", "1m")})
    board.drop("BTCUSDT")
    assert set(board.statuses) == {("ETHUSDT", "1m")}


def test_readers_iterating_while_pairs_publish_never_see_a_resize() -> None:
    board = PairBoard()
    keys = [(f"SYM{i:02d}USDT", tf) for i in range(50) for tf in ("1m", "5m")]
    stop = threading.Event()
    errors: list[BaseException] = []

    def publisher() -> None:
        n = 0
        while not stop.is_set():
            for symbol, tf in keys:
                board.publish(status(symbol, tf, decisions=n))
            n += 1

    def newcomer() -> None:  # pairs added by reloads: new keys while everyone reads and writes
        for i in range(3_000):
            board.publish(status(f"NEW{i}USDT", "1m"))

    def reader() -> None:
        try:
            for _ in range(2_000):
                for st in board.statuses.values():  # what the shell and metrics do
                    assert st.symbol
        except RuntimeError as exc:  # "dictionary changed size during iteration"
            errors.append(exc)

    threads = [threading.Thread(target=publisher) for _ in range(2)] + [threading.Thread(target=newcomer)]
    for t in threads:
        t.start()
    try:
        reader()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert len(board.statuses) == len(keys) + 3_000
