"""The ledger database's layout: its tables, the migrations that build them, and rows read back as records.

``LedgerStore`` runs the migrations and the queries; this module says what the tables hold and in which
order the store selects their columns, so the row readers below and the store's queries agree.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ...domain.model import ContractType, Decision, Direction, Outcome, SkipReason
from .ledger_records import DecisionRecord, EventRecord, OrderRecord, PositionRecord

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
_V3 = (
    # Commissions as the exchange charged them, accumulated per order over its fills (exact decimal text),
    # and each closed trade's fees, so reports and metrics show what was paid rather than an estimate.
    "ALTER TABLE orders ADD COLUMN commission TEXT NOT NULL DEFAULT '0'",
    "ALTER TABLE orders ADD COLUMN commission_asset TEXT",
    "ALTER TABLE positions ADD COLUMN fees TEXT",
)
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
"""Schema version N is reached by running ``MIGRATIONS[N-1]``; never edit a released entry, append one."""
SCHEMA_VERSION = len(MIGRATIONS)

POSITION_COLUMNS = (
    "symbol, state, direction, qty, entry_price, stop_loss, take_profit, signal_open_time_ms, "
    "opened_at_ms, closed_at_ms, exit_price, realized_pnl, close_reason, contract_type, margin_asset, fees"
)
"""The columns of ``positions`` in the order ``position_from_row`` reads them."""
ORDER_COLUMNS = (
    "client_id, symbol, leg, side, status, qty, price, exchange_id, detail, updated_at_ms, filled_qty, "
    "realized_pnl, commission, commission_asset"
)
"""The columns of ``orders`` in the order ``order_from_row`` reads them."""
DECISION_COLUMNS = (
    "symbol, timeframe, signal_open_time_ms, decided_open_time_ms, direction, outcome, reason, entry, "
    "stop_loss, take_profit, recorded_at_ms"
)
"""The columns of ``decisions`` in the order ``decision_from_row`` reads them."""
EVENT_COLUMNS = "kind, symbol, detail, at_ms"
"""The columns of ``events`` in the order ``event_from_row`` reads them."""


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt(convert: Callable[[str], float], value: object) -> float | None:
    return None if value is None else convert(str(value))


def _opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def decision_from_row(r: tuple[object, ...]) -> DecisionRecord:
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


def position_from_row(r: tuple[object, ...]) -> PositionRecord:
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
        fees=None if r[15] is None else Decimal(str(r[15])),
    )


def order_from_row(r: tuple[object, ...]) -> OrderRecord:
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
        commission=Decimal(str(r[12])),
        commission_asset=_opt_str(r[13]),
    )


def event_from_row(r: tuple[object, ...]) -> EventRecord:
    kind, symbol, detail, at_ms = r
    return EventRecord(kind=str(kind), symbol=_opt_str(symbol), detail=str(detail), at_ms=int(str(at_ms)))
