"""OrderExecutor with a hand-written fake gateway: idempotency, protection, gating, flattening."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from nancemakina.actors.domain.model import Decision, Direction, PortfolioView
from nancemakina.actors.exchange.errors import Rejected, UnknownStatus
from nancemakina.actors.exchange.types import OrderResult, Side
from nancemakina.actors.messages import (
    Alert,
    EntryRejected,
    OrderStateChanged,
    PauseEntries,
    PositionOpened,
    StopAcceptingEntries,
    SubmitEntry,
)
from nancemakina.actors.runtime.scheduling import OrderPriority
from tests.unit.executor_support import FakeGateway, Inbox, decision, start


def test_entry_then_stop_and_take_profit_with_deterministic_ids() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision()))
    [opened] = ledger.wait_for(PositionOpened)
    assert gw.calls[:2] == [("margin", ("BTCUSDT", "ISOLATED")), ("leverage", ("BTCUSDT", 10))]
    [(_, (entry_id, side, qty, reduce_only))] = [c for c in gw.calls if c[0] == "market"]
    assert entry_id == "nm-BTCUSDT-1700000000000-E"
    assert (side, qty, reduce_only) == (Side.BUY, Decimal("0.005"), False)
    stop = next(args for name, args in gw.calls if name == "STOP_MARKET")
    take = next(args for name, args in gw.calls if name == "TAKE_PROFIT_MARKET")
    assert stop == (
        "nm-BTCUSDT-1700000000000-S",
        Side.SELL,
        Decimal("99000.0"),
    )  # rounded down: never tighter
    assert take == ("nm-BTCUSDT-1700000000000-T", Side.SELL, Decimal("103000.0"))
    assert opened.stop_loss == 99_000.0
    statuses = [(m.leg.value, m.status) for m in ledger.items if isinstance(m, OrderStateChanged)]
    assert statuses[:2] == [("E", "submitted"), ("E", "filled")]


def test_short_entry_sells_and_protects_above() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision(Direction.SHORT)))
    ledger.wait_for(PositionOpened)
    stop = next(args for name, args in gw.calls if name == "STOP_MARKET")
    assert stop == ("nm-BTCUSDT-1700000000000-S", Side.BUY, Decimal("101000.1"))


def test_unknown_status_is_looked_up_before_any_resend() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["market"] = [UnknownStatus("POST /fapi/v1/order", "503 execution status unknown")]
    gw.execute_then_fail.add("market")
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision()))
    ledger.wait_for(PositionOpened)
    assert gw.count("market") == 1  # found by client id: never resent
    assert gw.count("get_order") == 1


def test_unknown_status_not_executed_is_resent_with_the_same_id() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["market"] = [UnknownStatus("POST /fapi/v1/order", "timeout")]
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision()))
    ledger.wait_for(PositionOpened)
    ids = [args[0] for name, args in gw.calls if name == "market"]
    assert ids == ["nm-BTCUSDT-1700000000000-E"] * 2
    assert len(gw.orders) == 1


def test_duplicate_submit_is_ignored() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision()))
    ref.tell(SubmitEntry(decision=decision()))
    ref.ask(PauseEntries(symbol="OTHER"))  # mailbox drained up to here
    assert gw.count("market") == 1


def test_stop_rejected_everywhere_flattens_and_alerts() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["STOP_MARKET"] = [
        Rejected("POST /fapi/v1/algoOrder", -2021, "Order would immediately trigger.")
    ] * 4
    ref = start(gw, ledger, notes, stop_retries=3)
    ref.tell(SubmitEntry(decision=decision()))
    [alert] = notes.wait_for(Alert)
    assert alert.kind == "stop_failed"
    assert gw.count("STOP_MARKET") == 4
    close = [args for name, args in gw.calls if name == "market"][-1]
    assert close == ("nm-BTCUSDT-1700000000000-C", Side.SELL, Decimal("0.005"), True)
    assert not [m for m in ledger.items if isinstance(m, PositionOpened)]


def test_stop_retried_then_placed() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["STOP_MARKET"] = [Rejected("POST /fapi/v1/algoOrder", -1001, "Internal error")]
    ref = start(gw, ledger, notes, stop_retries=3)
    ref.tell(SubmitEntry(decision=decision()))
    ledger.wait_for(PositionOpened)
    assert gw.count("STOP_MARKET") == 2
    assert not notes.items


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("position_open", "position_open"),
        ("max_concurrent", "max_concurrent"),
        ("paused", "paused"),
        ("shutdown", "shutting_down"),
        ("tiny_margin", "below_min_qty"),
    ],
)
def test_gates_emit_entry_rejected(setup: str, reason: str) -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    view = PortfolioView(open_symbols=frozenset({"BTCUSDT"} if setup == "position_open" else {"ETHUSDT"}))
    kw: dict[str, Any] = {"max_concurrent": 1} if setup == "max_concurrent" else {}
    ref = start(gw, ledger, notes, view=view if setup in {"position_open", "max_concurrent"} else None, **kw)
    if setup == "paused":
        ref.tell(PauseEntries(symbol="BTCUSDT"))
    if setup == "shutdown":
        ref.tell(StopAcceptingEntries())
    d = decision()
    if setup == "tiny_margin":
        d = Decision(**{**{f: getattr(d, f) for f in d.__dataclass_fields__}, "entry": 10_000_000.0})
    ref.tell(SubmitEntry(decision=d))
    [rejected] = ledger.wait_for(EntryRejected)
    assert rejected.reason == reason
    assert gw.count("market") == 0


def test_second_signal_on_open_symbol_is_rejected_before_the_ledger_catches_up() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision(signal=1_700_000_000_000)))
    ref.tell(SubmitEntry(decision=decision(signal=1_700_000_060_000)))
    [rejected] = ledger.wait_for(EntryRejected)
    assert rejected.reason == "position_open"
    assert gw.count("market") == 1


class PriorityWatchingGateway(FakeGateway):
    """Records how many entries the shared ``OrderPriority`` holds pending at each order sent."""

    def __init__(self, priority: OrderPriority) -> None:
        super().__init__()
        self.priority = priority
        self.pending_at: list[tuple[str, int]] = []

    def market_order(self, *args: Any, **kwargs: Any) -> OrderResult:
        self.pending_at.append(("market", self.priority.stats().pending))
        return super().market_order(*args, **kwargs)


def test_entry_releases_the_market_reader_before_its_request_goes_out() -> None:
    priority = OrderPriority(hold_ms=100)
    gw, ledger, notes = PriorityWatchingGateway(priority), Inbox(), Inbox()
    ref = start(gw, ledger, notes, priority=priority)
    priority.begin("BTCUSDT")  # as the pair does before telling the executor
    ref.tell(SubmitEntry(decision=decision()))
    ledger.wait_for(PositionOpened)
    assert gw.pending_at == [("market", 0)]
    stats = priority.stats()
    assert (stats.begun, stats.ended, stats.pending, stats.expired) == (1, 1, 0, 0)


@pytest.mark.parametrize("setup", ["paused", "duplicate"])
def test_refused_entry_releases_the_market_reader(setup: str) -> None:
    priority = OrderPriority(hold_ms=100)
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    ref = start(gw, ledger, notes, priority=priority)
    if setup == "paused":
        ref.tell(PauseEntries(symbol="BTCUSDT"))
    else:
        priority.begin("BTCUSDT")
        ref.tell(SubmitEntry(decision=decision()))
    priority.begin("BTCUSDT")
    ref.tell(SubmitEntry(decision=decision()))
    ref.ask(PauseEntries(symbol="OTHER"))  # mailbox drained up to here
    stats = priority.stats()
    assert (stats.pending, stats.expired) == (0, 0)
    assert stats.ended == stats.begun
