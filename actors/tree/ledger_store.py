"""``LedgerStore``: the position ledger's durable state in one SQLite file (``<state_dir>/ledger.sqlite3``).

One read-write connection, owned by the ledger actor's thread; the shell and the ``report`` command open
their own read-only connection (:meth:`LedgerStore.open_read_only`), which WAL allows alongside the writer.

``synchronous=FULL``: in WAL mode NORMAL already survives ``kill -9`` (a committed transaction is in the
WAL file, in the OS page cache), but a power cut or kernel panic can drop the last commits. A lost
``positions`` row would turn our own, fully known trade (stop, take-profit, signal) into an "unknown"
position on restart. The ledger commits a handful of rows per trade, and bulk writes go through one
transaction, so one fsync per commit is cheap insurance.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ..domain.model import ContractType, Decision, Direction, Outcome, SkipReason

FILENAME = "ledger.sqlite3"

_V1 = (
    """CREATE TABLE decisions (
        id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, timeframe TEXT NOT NULL,
        signal_open_time_ms INTEGER NOT NULL, decided_open_time_ms INTEGER NOT NULL,
        direction TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT,
        entry REAL, stop_loss REAL, take_profit REAL, recorded_at_ms INTEGER NOT NULL,
        UNIQUE (symbol, timeframe, signal_open_time_ms))""",
    """CREATE TABLE orders (
        client_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, leg TEXT, side TEXT, status TEXT NOT NULL,
        qty TEXT, price REAL, exchange_id INTEGER, detail TEXT NOT NULL DEFAULT '',
        updated_at_ms INTEGER NOT NULL)""",
    """CREATE TABLE positions (
        id INTEGER PRIMARY KEY, symbol TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
        direction TEXT NOT NULL, qty TEXT NOT NULL, entry_price REAL NOT NULL,
        stop_loss REAL, take_profit REAL, signal_open_time_ms INTEGER, opened_at_ms INTEGER NOT NULL,
        closed_at_ms INTEGER, exit_price REAL, realized_pnl REAL, close_reason TEXT,
        contract_type TEXT NOT NULL, margin_asset TEXT)""",
    "CREATE UNIQUE INDEX positions_one_open ON positions (symbol) WHERE state = 'open'",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL, symbol TEXT,
        detail TEXT NOT NULL DEFAULT '')""",
)
_V2 = (
    # Exit fills are accumulated per order so the realised PnL of a close survives a restart, and a
    # duplicated fill event (same cumulative quantity) is recognised and ignored.
    "ALTER TABLE orders ADD COLUMN filled_qty TEXT NOT NULL DEFAULT '0'",
    "ALTER TABLE orders ADD COLUMN realized_pnl REAL NOT NULL DEFAULT 0",
    "CREATE INDEX orders_symbol_status ON orders (symbol, status)",
    "CREATE INDEX events_at ON events (at_ms)",
)
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
"""Schema version N is reached by running ``MIGRATIONS[N-1]``; never edit a released entry, append one."""
SCHEMA_VERSION = len(MIGRATIONS)
LEDGER_CACHE_KIB = 512
"""Page cache of the ledger's own connection (``PRAGMA cache_size``)."""

TERMINAL = frozenset({"filled", "finished", "canceled", "expired", "rejected"})
"""Order statuses after which an order is no longer open."""


class LedgerStoreError(Exception):
    """The ledger file cannot be used; the message names it. The bot must not trade without its ledger."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionRecord:
    """One row of ``positions``."""

    symbol: str
    direction: Direction
    qty: Decimal
    entry_price: float
    stop_loss: float | None
    take_profit: float | None
    signal_open_time_ms: int | None
    """None for a position adopted from the exchange (not opened by a signal of ours)."""
    opened_at_ms: int
    contract_type: ContractType
    margin_asset: str | None = None
    state: str = "open"
    closed_at_ms: int | None = None
    exit_price: float | None = None
    realized_pnl: float | None = None
    close_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRecord:
    """One row of ``orders``: the latest known state of one of our orders, by client id."""

    client_id: str
    symbol: str
    leg: str | None
    side: str | None
    status: str
    qty: str | None = None
    price: float | None = None
    exchange_id: int | None = None
    detail: str = ""
    updated_at_ms: int = 0
    filled_qty: Decimal = Decimal(0)
    realized_pnl: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """One row of ``events``: an alert or a reconciliation discrepancy."""

    kind: str
    symbol: str | None
    detail: str
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRecord:
    """A stored decision and when it was recorded."""

    decision: Decision
    recorded_at_ms: int


_POSITION_COLUMNS = (
    "symbol, state, direction, qty, entry_price, stop_loss, take_profit, signal_open_time_ms, "
    "opened_at_ms, closed_at_ms, exit_price, realized_pnl, close_reason, contract_type, margin_asset"
)
_ORDER_COLUMNS = (
    "client_id, symbol, leg, side, status, qty, price, exchange_id, detail, updated_at_ms, filled_qty, "
    "realized_pnl"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class LedgerStore:
    """Typed reads and atomic writes over the ledger database (see the module docstring)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._depth = 0
        try:
            if read_only:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                # Built on the caller's thread, then owned by the ledger actor's thread alone.
                self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 5000")
            check = self._db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise LedgerStoreError(f"ledger database {path} is corrupt: {check}")
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
        return cls(state_dir / FILENAME)

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
                "INSERT OR IGNORE INTO decisions (symbol, timeframe, signal_open_time_ms, "
                "decided_open_time_ms, direction, outcome, reason, entry, stop_loss, take_profit, "
                "recorded_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return self._db.total_changes - before

    def upsert_orders(self, orders: Iterable[OrderRecord]) -> None:
        rows = [
            (o.client_id, o.symbol, o.leg, o.side, o.status, o.qty, o.price, o.exchange_id, o.detail,
             o.updated_at_ms, str(o.filled_qty), o.realized_pnl)
            for o in orders
        ]  # fmt: skip
        with self.atomic():
            self._db.executemany(
                f"INSERT OR REPLACE INTO orders ({_ORDER_COLUMNS}) "  # noqa: S608 - constant
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def open_position(self, position: PositionRecord) -> None:
        """Insert an open position; raises ``sqlite3.IntegrityError`` if the symbol already has one."""
        with self.atomic():
            self._db.execute(
                f"INSERT INTO positions ({_POSITION_COLUMNS}) VALUES "  # noqa: S608 - constant
                "(?, 'open', ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, ?)",
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
        self, symbol: str, *, at_ms: int, exit_price: float | None, realized_pnl: float | None, reason: str
    ) -> bool:
        """Mark the open position of ``symbol`` closed; False if there was none."""
        with self.atomic():
            cursor = self._db.execute(
                "UPDATE positions SET state = 'closed', closed_at_ms = ?, exit_price = ?, realized_pnl = ?, "
                "close_reason = ? WHERE symbol = ? AND state = 'open'",
                (at_ms, exit_price, realized_pnl, reason, symbol),
            )
            return cursor.rowcount > 0

    def amend_last_close(self, symbol: str, *, exit_price: float, realized_pnl: float) -> None:
        """Fill in the exit of the latest closed trade when its fills arrived after the flat position."""
        with self.atomic():
            self._db.execute(
                "UPDATE positions SET exit_price = ?, realized_pnl = ? WHERE id = (SELECT max(id) "
                "FROM positions WHERE symbol = ? AND state = 'closed')",
                (exit_price, realized_pnl, symbol),
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
            "SELECT symbol, timeframe, signal_open_time_ms, decided_open_time_ms, direction, outcome, "
            "reason, entry, stop_loss, take_profit, recorded_at_ms FROM decisions "
            "WHERE ? IS NULL OR symbol = ? ORDER BY decided_open_time_ms, symbol LIMIT ?",
            (symbol, symbol, -1 if limit is None else limit),
        )
        return [_decision(r) for r in rows]

    def open_positions(self) -> list[PositionRecord]:
        rows = self._rows(f"SELECT {_POSITION_COLUMNS} FROM positions WHERE state = 'open' ORDER BY symbol")  # noqa: S608
        return [_position(r) for r in rows]

    def trades(self, *, symbol: str | None = None, limit: int | None = None) -> list[PositionRecord]:
        """Closed positions, oldest first."""
        rows = self._rows(
            f"SELECT {_POSITION_COLUMNS} FROM positions WHERE state = 'closed' AND (? IS NULL OR symbol = ?) "  # noqa: S608
            "ORDER BY closed_at_ms, id LIMIT ?",
            (symbol, symbol, -1 if limit is None else limit),
        )
        return [_position(r) for r in rows]

    def orders(self, *, open_only: bool = False, symbol: str | None = None) -> list[OrderRecord]:
        terminal = tuple(sorted(TERMINAL)) if open_only else ()
        status = f"AND status NOT IN ({', '.join('?' * len(terminal))})" if terminal else ""
        rows = self._rows(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE (? IS NULL OR symbol = ?) {status} "  # noqa: S608
            "ORDER BY updated_at_ms, client_id",
            (symbol, symbol, *terminal),
        )
        return [_order(r) for r in rows]

    def order(self, client_id: str) -> OrderRecord | None:
        rows = self._rows(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_id = ?", (client_id,))  # noqa: S608
        return _order(rows[0]) if rows else None

    def events(self, limit: int = 100, *, kind: str | None = None) -> list[EventRecord]:
        """The latest ``limit`` events, newest first."""
        rows = self._rows(
            "SELECT kind, symbol, detail, at_ms FROM events WHERE ? IS NULL OR kind = ? "
            "ORDER BY id DESC LIMIT ?",
            (kind, kind, limit),
        )
        return [
            EventRecord(kind=str(k), symbol=_opt_str(s), detail=str(d), at_ms=int(str(t)))
            for k, s, d, t in rows
        ]


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt(convert: Callable[[str], float], value: object) -> float | None:
    return None if value is None else convert(str(value))


def _opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _decision(r: tuple[object, ...]) -> DecisionRecord:
    decision = Decision(
        symbol=str(r[0]),
        timeframe=str(r[1]),
        signal_open_time_ms=int(str(r[2])),
        decided_open_time_ms=int(str(r[3])),
        direction=Direction(str(r[4])),
        outcome=Outcome(str(r[5])),
        reason=None if r[6] is None else SkipReason(str(r[6])),
        entry=_opt(float, r[7]),
        stop_loss=_opt(float, r[8]),
        take_profit=_opt(float, r[9]),
    )
    return DecisionRecord(decision=decision, recorded_at_ms=int(str(r[10])))


def _position(r: tuple[object, ...]) -> PositionRecord:
    return PositionRecord(
        symbol=str(r[0]),
        state=str(r[1]),
        direction=Direction(str(r[2])),
        qty=Decimal(str(r[3])),
        entry_price=float(str(r[4])),
        stop_loss=_opt(float, r[5]),
        take_profit=_opt(float, r[6]),
        signal_open_time_ms=_opt_int(r[7]),
        opened_at_ms=int(str(r[8])),
        closed_at_ms=_opt_int(r[9]),
        exit_price=_opt(float, r[10]),
        realized_pnl=_opt(float, r[11]),
        close_reason=_opt_str(r[12]),
        contract_type=ContractType(str(r[13])),
        margin_asset=_opt_str(r[14]),
    )


def _order(r: tuple[object, ...]) -> OrderRecord:
    return OrderRecord(
        client_id=str(r[0]),
        symbol=str(r[1]),
        leg=_opt_str(r[2]),
        side=_opt_str(r[3]),
        status=str(r[4]),
        qty=_opt_str(r[5]),
        price=_opt(float, r[6]),
        exchange_id=_opt_int(r[7]),
        detail=str(r[8]),
        updated_at_ms=int(str(r[9])),
        filled_qty=Decimal(str(r[10])),
        realized_pnl=float(str(r[11])),
    )
