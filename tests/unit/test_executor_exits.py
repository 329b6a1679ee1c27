"""The executor's trailing stop and close-time exits, with the hand-written fake gateway."""

from __future__ import annotations

from decimal import Decimal

from nancemakina.actors.domain.exits import ExitParams
from nancemakina.actors.domain.fills import ExitReason
from nancemakina.actors.domain.model import Direction, PortfolioView
from nancemakina.actors.exchange.errors import WOULD_TRIGGER, Rejected
from nancemakina.actors.exchange.types import Side
from nancemakina.actors.messages import (
    Alert,
    ClosePosition,
    EntryRejected,
    OrderStateChanged,
    PositionClosed,
    SubmitEntry,
)
from tests.unit.executor_support import FakeGateway, Inbox, decision, settled, start

TRAILING = ExitParams(callback_pct=0.5, activation_ratio=1.0)
SIGNAL = 1_700_000_000_000


def test_trailing_stop_placed_after_stop_and_take_profit() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    ref = start(gw, ledger, notes, exits=TRAILING)
    ref.tell(SubmitEntry(decision=decision()))
    settled(ledger)
    kinds = [name for name, _ in gw.calls if name.endswith("_MARKET")]
    assert kinds == ["STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]
    (_, args) = next(c for c in gw.calls if c[0] == "TRAILING_STOP_MARKET")
    # activation: entry 100000 + 1.0 × (100000 − 99000.05) = 100999.95, rounded away from the entry
    assert args == (
        "nm-BTCUSDT-1700000000000-R",
        Side.SELL,
        Decimal("0.005"),
        Decimal("0.5"),
        Decimal("101000.0"),
    )
    trail = [
        (m.status, m.price) for m in ledger.items if isinstance(m, OrderStateChanged) and m.leg.value == "R"
    ]
    assert trail == [("submitted", 101000.0), ("new", None)]


def test_trailing_stop_without_activation_when_the_price_passed_it() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["TRAILING_STOP_MARKET"] = [Rejected("POST /fapi/v1/algoOrder", WOULD_TRIGGER, "would trigger")]
    ref = start(gw, ledger, notes, exits=TRAILING)
    ref.tell(SubmitEntry(decision=decision()))
    settled(ledger)
    tries = [args[4] for name, args in gw.calls if name == "TRAILING_STOP_MARKET"]
    assert tries == [Decimal("101000.0"), None]  # armed at once the second time
    assert not any(isinstance(m, Alert) for m in notes.items)


def test_a_failed_trailing_stop_only_alerts() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["TRAILING_STOP_MARKET"] = [Rejected("POST /fapi/v1/algoOrder", -1102, "bad") for _ in range(9)]
    ref = start(gw, ledger, notes, exits=TRAILING, stop_retries=1)
    ref.tell(SubmitEntry(decision=decision()))
    settled(ledger)  # the stop protects it
    [alert] = notes.wait_for(Alert)
    assert alert.kind == "trailing_stop_failed"


def cancelled(message: object, leg: str) -> bool:
    return (
        isinstance(message, OrderStateChanged) and message.leg.value == leg and message.status == "canceled"
    )


def close(reason: ExitReason = ExitReason.REVERSAL, qty: str = "0.005") -> ClosePosition:
    return ClosePosition(
        symbol="BTCUSDT",
        direction=Direction.LONG,
        quantity=qty,
        signal_open_time_ms=SIGNAL,
        reason=reason,
        candle_open_time_ms=SIGNAL + 600_000,
    )


def test_close_time_exit_closes_at_market_then_cancels_the_protection() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    ref = start(gw, ledger, notes, exits=TRAILING)
    ref.tell(SubmitEntry(decision=decision()))
    settled(ledger)
    ref.tell(close(ExitReason.TIME_EXIT))
    with ledger.cond:
        assert ledger.cond.wait_for(lambda: any(cancelled(m, "R") for m in ledger.items), timeout=5)
    filled = [m for m in ledger.items if isinstance(m, OrderStateChanged)]
    closing = [c for c in gw.calls if c[0] == "market"][-1]
    assert closing == ("market", ("nm-BTCUSDT-1700000000000-X", Side.SELL, Decimal("0.005"), True))
    cancels = [args for name, args in gw.calls if name == "cancel_algo"]
    assert cancels == [f"nm-BTCUSDT-{SIGNAL}-{leg}" for leg in ("S", "T", "R")]
    x = [m for m in filled if m.leg.value == "X"]
    assert [m.status for m in x] == ["submitted", "filled"]
    assert x[-1].at_ms == 1  # the exchange's time of the fill
    ref.stop()


def test_a_reversal_flips_before_the_ledger_hears_of_the_close() -> None:
    """ClosePosition then SubmitEntry of the opposite side, with the ledger still showing the old position."""
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    view = [PortfolioView(open_symbols=frozenset({"BTCUSDT"}))]
    ref = start(gw, ledger, notes, portfolio=lambda: view[0], max_concurrent=1)
    ref.tell(close(ExitReason.REVERSAL))
    ref.tell(SubmitEntry(decision=decision(Direction.SHORT, signal=SIGNAL + 600_000)))
    [opened] = settled(ledger)
    assert opened.direction is Direction.SHORT
    assert not any(isinstance(m, EntryRejected) for m in notes.items)
    # the ledger's close of the old trade must not free the new position's slot
    view[0] = PortfolioView(open_symbols=frozenset())
    ref.tell(
        PositionClosed(
            symbol="BTCUSDT",
            reason="reversal",
            exit_price=1.0,
            realized_pnl=0.0,
            closed_at_ms=2,
            signal_open_time_ms=SIGNAL,
        )
    )
    ref.tell(SubmitEntry(decision=decision(signal=SIGNAL + 1_200_000)))
    [rejected] = notes.wait_for(EntryRejected)
    assert rejected.reason == "position_open"


def test_a_close_the_exchange_refuses_is_reported_and_frees_nothing() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["market"] = [Rejected("POST /fapi/v1/order", -2022, "ReduceOnly Order is rejected.")]
    ref = start(gw, ledger, notes, view=PortfolioView(open_symbols=frozenset({"BTCUSDT"})))
    ref.tell(close())
    [*_, last] = ledger.wait_for(OrderStateChanged, 2)
    assert (last.leg.value, last.status, last.detail) == ("V", "rejected", "-2022")
    assert not any(name == "cancel_algo" for name, _ in gw.calls)
