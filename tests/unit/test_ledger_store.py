"""LedgerStore: schema and migrations, atomicity, the one-open-position rule, durability, corrupt files."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from nancemakina.actors.domain.model import ContractType, Decision, Direction, Outcome, SkipReason
from nancemakina.actors.tree.ledger.ledger_records import EventRecord, OrderRecord, PositionRecord
from nancemakina.actors.tree.ledger.ledger_schema import MIGRATIONS, SCHEMA_VERSION
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore, LedgerStoreError


def position(symbol: str = "BTCUSDT", **changes: Any) -> PositionRecord:
    base = PositionRecord(
        symbol=symbol, direction=Direction.LONG, qty=Decimal("0.010"), entry_price=100.0, stop_loss=95.0,
        take_profit=115.0, signal_open_time_ms=1, opened_at_ms=2, contract_type=ContractType.USDT_M,
        margin_asset="USDT",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def decision(signal: int, symbol: str = "BTCUSDT") -> Decision:
    return Decision(
        symbol=symbol, timeframe="1m", signal_open_time_ms=signal, decided_open_time_ms=signal + 60_000,
        direction=Direction.SHORT, outcome=Outcome.SKIPPED, reason=SkipReason.MIN_INTERVAL,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path):
    s = LedgerStore.in_state_dir(tmp_path / "state")
    yield s
    s.close()


def test_fresh_file_has_the_current_schema_in_wal_mode(store):
    assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._db.execute("PRAGMA cache_size").fetchone()[0] == -512  # KiB: a bounded page cache


def test_reopening_does_not_migrate_again(tmp_path):
    LedgerStore(tmp_path / "l.db").close()
    again = LedgerStore(tmp_path / "l.db")
    assert again.schema_version() == SCHEMA_VERSION
    again.close()


def test_a_v1_file_is_migrated_keeping_its_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute(
        "INSERT INTO orders (client_id, symbol, status, updated_at_ms) VALUES ('nm-X-1-E', 'X', 'new', 5)"
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = LedgerStore(path)
    [order] = store.orders()
    assert (order.client_id, order.filled_qty, order.realized_pnl) == ("nm-X-1-E", Decimal(0), 0.0)
    assert store.schema_version() == SCHEMA_VERSION
    store.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(LedgerStoreError, match=r"new\.sqlite3.*newer"):
        LedgerStore(path)


def test_a_corrupt_file_is_a_clear_error_naming_it(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(LedgerStoreError, match=str(path)):
        LedgerStore(path)


def test_an_unreadable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LedgerStoreError, match="file"):
        LedgerStore(blocker / "ledger.sqlite3")


def test_failure_mid_transaction_writes_nothing(store):
    class BoomError(Exception):
        pass

    def half_way() -> None:
        with store.atomic():
            store.open_position(position())
            store.add_events([EventRecord(kind="x", symbol=None, detail="", at_ms=1)])
            raise BoomError

    with pytest.raises(BoomError):
        half_way()
    assert store.open_positions() == []
    assert store.events() == []


def test_a_second_open_position_for_a_symbol_is_refused_atomically(store):
    store.open_position(position())

    def event_then_second_open() -> None:
        with store.atomic():
            store.add_events([EventRecord(kind="before", symbol="BTCUSDT", detail="", at_ms=1)])
            store.open_position(position(signal_open_time_ms=9))

    with pytest.raises(sqlite3.IntegrityError):
        event_then_second_open()
    assert [p.signal_open_time_ms for p in store.open_positions()] == [1]
    assert store.events() == []
    assert store.close_position("BTCUSDT", at_ms=3, exit_price=95.0, realized_pnl=-0.05, reason="stop_loss")
    store.open_position(position(signal_open_time_ms=9))  # allowed once the first is closed
    assert [t.close_reason for t in store.trades()] == ["stop_loss"]
    assert not store.close_position("ETHUSDT", at_ms=3, exit_price=None, realized_pnl=None, reason="x")


def test_decisions_are_idempotent(store):
    assert store.record_decisions([decision(1), decision(2)], at_ms=10) == 2
    assert store.record_decisions([decision(1)], at_ms=11) == 0
    assert [r.decision for r in store.decisions()] == [decision(1), decision(2)]


def test_committed_state_survives_a_crash_without_close(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    writer = LedgerStore(path)
    writer.open_position(position())
    writer.upsert_orders(
        [OrderRecord(client_id="nm-BTCUSDT-1-S", symbol="BTCUSDT", leg="S", side="SELL", status="new")]
    )
    # No close(): a second process opening the file sees exactly what was committed (kill -9 semantics).
    survivor = LedgerStore(path)
    assert survivor.open_positions() == [position()]
    assert [o.client_id for o in survivor.orders(open_only=True)] == ["nm-BTCUSDT-1-S"]
    survivor.close()
    writer.close()


def test_read_only_connection_in_another_thread_sees_commits(store):
    store.open_position(position())
    seen: list[list[PositionRecord]] = []
    done = threading.Event()

    def read() -> None:
        reader = LedgerStore.open_read_only(store.path)
        seen.append(reader.open_positions())
        reader.close()
        done.set()

    threading.Thread(target=read).start()
    assert done.wait(5)
    assert seen == [[position()]]


def test_read_only_connection_cannot_write(store):
    reader = LedgerStore.open_read_only(store.path)
    with pytest.raises(sqlite3.OperationalError):
        reader.add_events([EventRecord(kind="x", symbol=None, detail="", at_ms=1)])
    reader.close()


def test_orders_open_only_and_events_newest_first(store):
    store.upsert_orders(
        [
            OrderRecord(client_id="a", symbol="BTCUSDT", leg="S", side="SELL", status="new", updated_at_ms=1),
            OrderRecord(
                client_id="b", symbol="BTCUSDT", leg="T", side="SELL", status="canceled", updated_at_ms=2
            ),
        ]
    )
    assert [o.client_id for o in store.orders()] == ["a", "b"]
    assert [o.client_id for o in store.orders(open_only=True)] == ["a"]
    store.add_events(EventRecord(kind=f"k{i}", symbol=None, detail="", at_ms=i) for i in range(5))
    assert [e.kind for e in store.events(2)] == ["k4", "k3"]
    assert [e.kind for e in store.events(kind="k1")] == ["k1"]


def test_thousands_of_rows_per_second(store):
    started = time.perf_counter()
    store.record_decisions(decision(i * 60_000) for i in range(5000))
    store.upsert_orders(
        OrderRecord(client_id=f"nm-X-{i}-E", symbol="X", leg="E", side="BUY", status="filled")
        for i in range(5000)
    )
    assert time.perf_counter() - started < 2.0
    assert len(store.decisions()) == 5000
