"""``LedgerStore``: the position ledger's durable state in one SQLite file (``<state_dir>/ledger.sqlite3``).

One read-write connection, owned by the ledger actor's thread; the shell and the ``report`` command open
their own read-only connection (:meth:`LedgerStore.open_read_only`), which WAL allows alongside the writer.
The tables and their migrations are in :mod:`.ledger_schema`, the records it returns in
:mod:`.ledger_records`.

``synchronous=FULL``: in WAL mode NORMAL already survives ``kill -9`` (a committed transaction is in the
WAL file, in the OS page cache), but a power cut or kernel panic can drop the last commits. A lost
``positions`` row would turn our own, fully known trade (stop, take-profit, signal) into an "unknown"
position on restart. The ledger commits a handful of rows per trade, and bulk writes go through one
transaction, so one fsync per commit is cheap insurance.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from ...domain.model import Decision
from .ledger_files import LedgerStoreError, check_ledger_file, ledger_path
from .ledger_records import TERMINAL, DecisionRecord, EventRecord, OrderRecord, PositionRecord
from .ledger_schema import (
    DECISION_COLUMNS,
    EVENT_COLUMNS,
    MIGRATIONS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    SCHEMA_VERSION,
    decision_from_row,
    event_from_row,
    order_from_row,
    position_from_row,
)

LEDGER_CACHE_KIB = 512
"""Page cache of the ledger's own connection (``PRAGMA cache_size``)."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that can never write, checkpoint or delete the WAL (it still reads its commits)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


def _verify(path: Path) -> None:
    """``quick_check`` through a read-only connection: a damaged ledger is refused before a read-write
    connection could fold its WAL into it."""
    db = _read_only(path)
    try:
        check = db.execute("PRAGMA quick_check").fetchone()
    finally:
        db.close()
    if check is None or check[0] != "ok":
        raise LedgerStoreError(
            f"ledger database {path} is damaged ({check[0] if check else 'no answer'}): the bot will not "
            "trade on it. Keep it and its -wal file together; restore it from a backup, or move the files "
            f"aside to start a new, empty ledger (mv {path} {path}.damaged)"
        )


def _create(path: Path) -> None:
    """A new ledger, built whole under a temporary name and renamed into place: a ``ledger.sqlite3`` that
    exists always has its tables (so an empty one is damage, never a fresh start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(path.name + ".creating")
    for leftover in (building, Path(f"{building}-wal"), Path(f"{building}-shm")):
        leftover.unlink(missing_ok=True)  # a creation killed half-way: nothing was ever committed there
    db = sqlite3.connect(building, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        for version, statements in enumerate(MIGRATIONS, start=1):
            db.execute("BEGIN IMMEDIATE")
            for statement in statements:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")
            db.execute("COMMIT")
    finally:
        db.close()
    building.replace(path)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class LedgerStore:
    """Typed reads and atomic writes over the ledger database (see the module docstring)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._depth = 0
        try:
            if read_only:
                check_ledger_file(path)
                self._db = _read_only(path)
            else:
                if not check_ledger_file(path):
                    _create(path)
                _verify(path)
                # Built on the caller's thread, then owned by the ledger actor's thread alone.
                self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 5000")
            if not read_only:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
                # The ledger appends and reads back the newest rows: 512 KiB of pages hold that working
                # set. SQLite's default (2 MiB) fills up over days and showed as 1.9 MiB of RSS growth
                # across 1M replayed klines in bench/live_latency.py.
                self._db.execute(f"PRAGMA cache_size = -{LEDGER_CACHE_KIB}")
                self._migrate()
            elif self.schema_version() != SCHEMA_VERSION:
                raise LedgerStoreError(f"ledger database {path} has schema v{self.schema_version()}")
        except (sqlite3.Error, OSError) as exc:
            raise LedgerStoreError(f"cannot open ledger database {path}: {exc}") from exc

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> LedgerStore:
        return cls(ledger_path(state_dir))

    @classmethod
    def open_read_only(cls, path: Path) -> LedgerStore:
        """A reader for another thread or process (shell, ``report``); never blocks the ledger's writes."""
        return cls(path, read_only=True)

    def close(self) -> None:
        self._db.close()

    def schema_version(self) -> int:
        row = self._db.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise LedgerStoreError(
                f"ledger database {self.path} has schema v{version}, newer than this program's "
                f"v{SCHEMA_VERSION}: upgrade the program, or move the file aside"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.atomic():
                for statement in MIGRATIONS[target - 1]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target}")

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction around everything inside (nested calls join it); any exception rolls it back."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        self._db.execute("COMMIT")

    # ---- writes --------------------------------------------------------------------------------

    def record_decisions(self, decisions: Iterable[Decision], *, at_ms: int | None = None) -> int:
        """Insert decisions; one already stored (same symbol, timeframe, signal) is left as is."""
        at = now_ms() if at_ms is None else at_ms
        rows = [
            (d.symbol, d.timeframe, d.signal_open_time_ms, d.decided_open_time_ms, d.direction.value,
             d.outcome.value, None if d.reason is None else d.reason.value, d.entry, d.stop_loss,
             d.take_profit, at)
            for d in decisions
        ]  # fmt: skip
        with self.atomic():
            before = self._db.total_changes
            self._db.executemany(
                f"INSERT OR IGNORE INTO decisions ({DECISION_COLUMNS}) "  # noqa: S608 - constant
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return self._db.total_changes - before

    def upsert_orders(self, orders: Iterable[OrderRecord]) -> None:
        rows = [
            (o.client_id, o.symbol, o.leg, o.side, o.status, o.qty, o.price, o.exchange_id, o.detail,
             o.updated_at_ms, str(o.filled_qty), o.realized_pnl, str(o.commission), o.commission_asset)
            for o in orders
        ]  # fmt: skip
        with self.atomic():
            self._db.executemany(
                f"INSERT OR REPLACE INTO orders ({ORDER_COLUMNS}) "  # noqa: S608 - constant
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def open_position(self, position: PositionRecord) -> None:
        """Insert an open position; raises ``sqlite3.IntegrityError`` if the symbol already has one."""
        with self.atomic():
            self._db.execute(
                f"INSERT INTO positions ({POSITION_COLUMNS}) VALUES "  # noqa: S608 - constant
                "(?, 'open', ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, ?, NULL)",
                (position.symbol, position.direction.value, str(position.qty), position.entry_price,
                 position.stop_loss, position.take_profit, position.signal_open_time_ms,
                 position.opened_at_ms, position.contract_type.value, position.margin_asset),
            )  # fmt: skip

    def update_open_position(
        self, symbol: str, *, qty: Decimal | None = None, stop_loss: float | None = None
    ) -> None:
        with self.atomic():
            if qty is not None:
                self._db.execute(
                    "UPDATE positions SET qty = ? WHERE symbol = ? AND state = 'open'", (str(qty), symbol)
                )
            if stop_loss is not None:
                self._db.execute(
                    "UPDATE positions SET stop_loss = ? WHERE symbol = ? AND state = 'open'",
                    (stop_loss, symbol),
                )

    def close_position(
        self,
        symbol: str,
        *,
        at_ms: int,
        exit_price: float | None,
        realized_pnl: float | None,
        reason: str,
        fees: Decimal | None = None,
    ) -> bool:
        """Mark the open position of ``symbol`` closed; False if there was none."""
        with self.atomic():
            cursor = self._db.execute(
                "UPDATE positions SET state = 'closed', closed_at_ms = ?, exit_price = ?, realized_pnl = ?, "
                "close_reason = ?, fees = ? WHERE symbol = ? AND state = 'open'",
                (at_ms, exit_price, realized_pnl, reason, None if fees is None else str(fees), symbol),
            )
            return cursor.rowcount > 0

    def amend_last_close(
        self,
        symbol: str,
        *,
        exit_price: float,
        realized_pnl: float,
        fees: Decimal | None = None,
        reason: str | None = None,
    ) -> None:
        """Fill in the exit of the latest closed trade when its fills arrived after the flat position."""
        with self.atomic():
            self._db.execute(
                "UPDATE positions SET exit_price = ?, realized_pnl = ?, fees = coalesce(?, fees), "
                "close_reason = coalesce(?, close_reason) "
                "WHERE id = (SELECT max(id) FROM positions WHERE symbol = ? AND state = 'closed')",
                (exit_price, realized_pnl, None if fees is None else str(fees), reason, symbol),
            )

    def add_events(self, events: Iterable[EventRecord]) -> None:
        rows = [(e.at_ms, e.kind, e.symbol, e.detail) for e in events]
        with self.atomic():
            self._db.executemany("INSERT INTO events (at_ms, kind, symbol, detail) VALUES (?, ?, ?, ?)", rows)

    # ---- reads ---------------------------------------------------------------------------------

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        return list(self._db.execute(sql, args).fetchall())

    def decisions(self, *, symbol: str | None = None, limit: int | None = None) -> list[DecisionRecord]:
        rows = self._rows(
            f"SELECT {DECISION_COLUMNS} FROM decisions "  # noqa: S608 - constant
            "WHERE ? IS NULL OR symbol = ? ORDER BY decided_open_time_ms, symbol LIMIT ?",
            (symbol, symbol, -1 if limit is None else limit),
        )
        return [decision_from_row(r) for r in rows]

    def open_positions(self) -> list[PositionRecord]:
        rows = self._rows(f"SELECT {POSITION_COLUMNS} FROM positions WHERE state = 'open' ORDER BY symbol")  # noqa: S608
        return [position_from_row(r) for r in rows]

    def trades(self, *, symbol: str | None = None, limit: int | None = None) -> list[PositionRecord]:
        """Closed positions, oldest first."""
        rows = self._rows(
            f"SELECT {POSITION_COLUMNS} FROM positions WHERE state = 'closed' AND (? IS NULL OR symbol = ?) "  # noqa: S608
            "ORDER BY closed_at_ms, id LIMIT ?",
            (symbol, symbol, -1 if limit is None else limit),
        )
        return [position_from_row(r) for r in rows]

    def unpriced_closes(self, *, closed_from_ms: int, closed_to_ms: int) -> list[tuple[int, PositionRecord]]:
        """Closed trades whose realised PnL is unknown, closed in the window, oldest first, with their ids."""
        rows = self._rows(
            f"SELECT id, {POSITION_COLUMNS} FROM positions WHERE state = 'closed' "  # noqa: S608 - constant
            "AND realized_pnl IS NULL AND closed_at_ms BETWEEN ? AND ? ORDER BY closed_at_ms, id",
            (closed_from_ms, closed_to_ms),
        )
        return [(int(str(r[0])), position_from_row(r[1:])) for r in rows]

    def amend_close(
        self, position_id: int, *, exit_price: float, realized_pnl: float, fees: Decimal, reason: str | None
    ) -> None:
        """Fill in the exit of one closed trade (its reason too, when given)."""
        with self.atomic():
            self._db.execute(
                "UPDATE positions SET exit_price = ?, realized_pnl = ?, fees = ?, "
                "close_reason = coalesce(?, close_reason) WHERE id = ? AND state = 'closed'",
                (exit_price, realized_pnl, str(fees), reason, position_id),
            )

    def orders(self, *, open_only: bool = False, symbol: str | None = None) -> list[OrderRecord]:
        terminal = tuple(sorted(TERMINAL)) if open_only else ()
        status = f"AND status NOT IN ({', '.join('?' * len(terminal))})" if terminal else ""
        rows = self._rows(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE (? IS NULL OR symbol = ?) {status} "  # noqa: S608
            "ORDER BY updated_at_ms, client_id",
            (symbol, symbol, *terminal),
        )
        return [order_from_row(r) for r in rows]

    def taken_decision(self, symbol: str, signal_open_time_ms: int) -> Decision | None:
        """The taken decision of ``symbol`` on the signal candle opened at ``signal_open_time_ms``."""
        rows = self._rows(
            f"SELECT {DECISION_COLUMNS} FROM decisions WHERE symbol = ? AND signal_open_time_ms = ? "  # noqa: S608
            "AND outcome = 'taken' LIMIT 1",
            (symbol, signal_open_time_ms),
        )
        return decision_from_row(rows[0]).decision if rows else None

    def last_decided(self, symbol: str, timeframe: str) -> int | None:
        """Open time of the latest candle a decision of (``symbol``, ``timeframe``) was settled on."""
        rows = self._rows(
            "SELECT max(decided_open_time_ms) FROM decisions WHERE symbol = ? AND timeframe = ?",
            (symbol, timeframe),
        )
        return None if not rows or rows[0][0] is None else int(str(rows[0][0]))

    def has_position(self, symbol: str, signal_open_time_ms: int) -> bool:
        """Whether a position (open or closed) of ``symbol`` came from that signal."""
        rows = self._rows(
            "SELECT 1 FROM positions WHERE symbol = ? AND signal_open_time_ms = ? LIMIT 1",
            (symbol, signal_open_time_ms),
        )
        return bool(rows)

    def closed_money(self) -> list[tuple[str, str | None, str, str | None, float | None, str | None]]:
        """(symbol, margin asset, contract type, close reason, realised PnL, fees) of every closed trade."""
        rows = self._rows(
            "SELECT symbol, margin_asset, contract_type, close_reason, realized_pnl, fees FROM positions "
            "WHERE state = 'closed' ORDER BY id"
        )
        return [
            (
                str(r[0]),
                _text(r[1]),
                str(r[2]),
                _text(r[3]),
                None if r[4] is None else float(str(r[4])),
                _text(r[5]),
            )
            for r in rows
        ]

    def commissions(self) -> list[tuple[str, str | None, str]]:
        """(symbol, asset, commission) of every order that paid one."""
        rows = self._rows("SELECT symbol, commission_asset, commission FROM orders WHERE commission != '0'")
        return [(str(r[0]), _text(r[1]), str(r[2])) for r in rows]

    def order(self, client_id: str) -> OrderRecord | None:
        rows = self._rows(f"SELECT {ORDER_COLUMNS} FROM orders WHERE client_id = ?", (client_id,))  # noqa: S608
        return order_from_row(rows[0]) if rows else None

    def events(self, limit: int = 100, *, kind: str | None = None) -> list[EventRecord]:
        """The latest ``limit`` events, newest first."""
        rows = self._rows(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE ? IS NULL OR kind = ? "  # noqa: S608 - constant
            "ORDER BY id DESC LIMIT ?",
            (kind, kind, limit),
        )
        return [event_from_row(r) for r in rows]


def decided_through(path: Path, symbol: str, timeframe: str) -> int | None:
    """The latest candle a run before this one decided for (``symbol``, ``timeframe``), read through a
    connection of its own (any thread): where a restarted pair resumes deciding. None without a ledger."""
    if not path.exists():
        return None
    store = LedgerStore.open_read_only(path)
    try:
        return store.last_decided(symbol, timeframe)
    finally:
        store.close()
