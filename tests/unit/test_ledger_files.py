"""The ledger's files: refused when empty, damaged or orphaned, never a WAL lost, never moved while open."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nancemakina.actors.domain.model import Leg
from nancemakina.actors.tree.ledger.ledger_files import (
    PREVIOUS_LEDGER_FILE,
    LedgerStoreError,
    archive_previous_ledger,
    check_ledger_file,
    holders,
)
from nancemakina.actors.tree.ledger.ledger_records import OrderRecord
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore


def ledger_with_commits_in_its_wal(state: Path) -> Path:
    """A ledger as a killed bot leaves it: tables checkpointed, the latest rows only in the WAL."""
    store = LedgerStore.in_state_dir(state)
    store._db.execute("PRAGMA wal_autocheckpoint = 0")
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.upsert_orders(
        [OrderRecord(client_id=f"nm-BTCUSDT-{i}-{Leg.ENTRY.value}", symbol="BTCUSDT", leg="E", side="BUY",
                     status="filled", updated_at_ms=i) for i in range(1, 50)]
    )  # fmt: skip
    path = store.path
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):  # copies, as after kill -9
        shutil.copy(path.parent / name, state / f"copy-{name}")
    store.close()
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        (state / f"copy-{name}").replace(path.parent / name)
    assert Path(f"{path}-wal").stat().st_size > 0
    return path


def test_a_new_ledger_is_created_whole(tmp_path):
    store = LedgerStore.in_state_dir(tmp_path)
    store.close()
    assert check_ledger_file(tmp_path / "ledger.sqlite3")
    assert not list(tmp_path.glob("*.creating*"))


def test_an_empty_ledger_file_is_refused_not_taken_for_a_new_one(tmp_path):
    (tmp_path / "ledger.sqlite3").write_bytes(b"")
    with pytest.raises(LedgerStoreError, match=r"empty \(0 bytes\).*truncated.*Restore it from a backup"):
        LedgerStore.in_state_dir(tmp_path)
    assert (tmp_path / "ledger.sqlite3").stat().st_size == 0  # left as it was found


def test_a_damaged_header_is_refused_and_its_wal_kept(tmp_path):
    path = ledger_with_commits_in_its_wal(tmp_path)
    wal = Path(f"{path}-wal")
    before = wal.read_bytes()
    with path.open("r+b") as f:
        f.write(b"garbage garbage garbage garbage!" * 3)
    with pytest.raises(LedgerStoreError, match=r"damaged: its header.*WAL .* holds the latest commits"):
        LedgerStore.in_state_dir(tmp_path)
    assert wal.read_bytes() == before, "the WAL held every recent commit: it must not be touched"


def test_a_wal_without_its_database_is_refused(tmp_path):
    (tmp_path / "ledger.sqlite3-wal").write_bytes(b"x" * 100)
    with pytest.raises(LedgerStoreError, match="missing but its WAL"):
        LedgerStore.in_state_dir(tmp_path)


def test_a_damaged_body_is_refused_through_a_read_only_check(tmp_path):
    store = LedgerStore.in_state_dir(tmp_path)
    store.close()
    path = tmp_path / "ledger.sqlite3"
    data = bytearray(path.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # a table's page
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerStoreError, match=r"damaged|malformed"):
        LedgerStore.in_state_dir(tmp_path)


def test_a_ledger_killed_with_commits_in_its_wal_opens_with_all_of_them(tmp_path):
    ledger_with_commits_in_its_wal(tmp_path)
    store = LedgerStore.in_state_dir(tmp_path)
    assert len(store.orders()) == 49
    store.close()


def test_archiving_folds_the_wal_in_and_keeps_every_commit(tmp_path):
    ledger_with_commits_in_its_wal(tmp_path)
    (tmp_path / f"{PREVIOUS_LEDGER_FILE}-wal").write_bytes(b"stale wal of the run before")
    archive_previous_ledger(tmp_path)
    assert not (tmp_path / "ledger.sqlite3").exists()
    assert not (tmp_path / f"{PREVIOUS_LEDGER_FILE}-wal").exists()  # never paired with the wrong database
    previous = LedgerStore.open_read_only(tmp_path / PREVIOUS_LEDGER_FILE)
    assert len(previous.orders()) == 49
    previous.close()


def test_a_ledger_another_process_has_open_is_never_moved(tmp_path):
    path = ledger_with_commits_in_its_wal(tmp_path)
    script = (
        "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute('select 1 from orders').fetchall();"
        " print('open', flush=True); sys.stdin.read()"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == b"open"
        assert [pid for pid, _ in holders([path])] == [reader.pid]
        with pytest.raises(LedgerStoreError, match=rf"open in pid {reader.pid}"):
            archive_previous_ledger(tmp_path)
        assert path.exists()
        assert not (tmp_path / PREVIOUS_LEDGER_FILE).exists()
    finally:
        reader.communicate(b"", timeout=10)
    assert path.exists()
    sqlite3.connect(path).close()
