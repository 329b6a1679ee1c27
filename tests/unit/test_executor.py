"""OrderExecutor with a hand-written fake gateway: idempotency, protection, gating, flattening."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from nancemakina.actors.domain.model import ContractType, Decision, Direction, PortfolioView
from nancemakina.actors.exchange.errors import Rejected, TransientError, UnknownStatus
from nancemakina.actors.exchange.types import Balance, OrderResult, Side, SymbolSettings
from nancemakina.actors.messages import (
    Alert,
    EntryFinished,
    EntryRejected,
    OrderStateChanged,
    PauseEntries,
    PositionOpened,
    StopAcceptingEntries,
    SubmitEntry,
)
from nancemakina.actors.runtime.scheduling import OrderPriority
from nancemakina.actors.tree.executor.account_view import AccountView
from nancemakina.actors.tree.executor.order_terms import EntrySlots
from tests.unit.executor_support import FakeGateway, Inbox, decision, settled, start


def test_entry_then_stop_and_take_profit_with_deterministic_ids() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision()))
    [opened] = settled(ledger)
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
    settled(ledger)
    stop = next(args for name, args in gw.calls if name == "STOP_MARKET")
    assert stop == ("nm-BTCUSDT-1700000000000-S", Side.BUY, Decimal("101000.1"))


def test_unknown_status_is_looked_up_before_any_resend() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["market"] = [UnknownStatus("POST /fapi/v1/order", "503 execution status unknown")]
    gw.execute_then_fail.add("market")
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision()))
    settled(ledger)
    assert gw.count("market") == 1  # found by client id: never resent
    assert gw.count("get_order") == 1


def test_unknown_status_not_executed_is_resent_with_the_same_id() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["market"] = [UnknownStatus("POST /fapi/v1/order", "timeout")]
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision()))
    settled(ledger)
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


def test_stop_the_exchange_refuses_is_not_retried_the_position_is_closed_at_once() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["STOP_MARKET"] = [
        Rejected("POST /fapi/v1/algoOrder", -2021, "Order would immediately trigger.")
    ] * 4
    ref = start(gw, ledger, notes, stop_retries=3)
    ref.tell(SubmitEntry(decision=decision()))
    [alert] = notes.wait_for(Alert)
    assert alert.kind == "stop_failed"
    assert gw.count("STOP_MARKET") == 1  # the exchange said no: every retry is time unprotected
    close = [args for name, args in gw.calls if name == "market"][-1]
    assert close == ("nm-BTCUSDT-1700000000000-C", Side.SELL, Decimal("0.005"), True)
    [opened] = settled(ledger)  # the trade is recorded; its close fill closes it
    assert opened.signal_open_time_ms == 1_700_000_000_000
    [finished] = ledger.wait_for(EntryFinished)
    assert finished.outcome == "flattened"


def test_stop_retried_then_placed() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["STOP_MARKET"] = [TransientError("POST /fapi/v1/algoOrder", "HTTP 502 Internal error")]
    ref = start(gw, ledger, notes, stop_retries=3)
    ref.tell(SubmitEntry(decision=decision()))
    settled(ledger)
    assert gw.count("STOP_MARKET") == 2
    assert not notes.items
    [finished] = ledger.wait_for(EntryFinished)
    assert finished.outcome == "protected"


def test_stop_whose_outcome_stays_unknown_past_its_deadline_closes_the_position() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["STOP_MARKET"] = [TransientError("POST /fapi/v1/algoOrder", "HTTP 503")] * 100
    ref = start(gw, ledger, notes, stop_retries=100)
    ref.tell(SubmitEntry(decision=decision()))
    [finished] = ledger.wait_for(EntryFinished)
    assert finished.outcome == "flattened"
    assert 1 < gw.count("STOP_MARKET") < 100  # bounded by its deadline, not by the retry count
    assert [n.kind for n in notes.items if isinstance(n, Alert)] == ["stop_failed"]


def test_stop_whose_id_is_taken_counts_as_placed_even_when_it_cannot_be_looked_up() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["STOP_MARKET"] = [Rejected("POST /fapi/v1/algoOrder", -4116, "ClientOrderId is duplicated.")]
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision()))
    [finished] = ledger.wait_for(EntryFinished)
    assert finished.outcome == "protected"
    assert gw.count("market") == 1  # no close at market: the stop is on the exchange


def test_entry_whose_lookups_fail_after_a_lost_answer_is_left_to_reconciliation() -> None:
    """Hole 1: 503 "unknown" on the entry, the lookups 503 too, the resend -4116: nothing escapes."""
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["market"] = [
        UnknownStatus("POST /fapi/v1/order", "503 execution status unknown"),
        Rejected("POST /fapi/v1/order", -4116, "ClientOrderId is duplicated."),
    ]
    gw.fail["get_order"] = [TransientError("GET /fapi/v1/order", "HTTP 503")] * 12
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision()))
    [finished] = ledger.wait_for(EntryFinished)
    assert finished.outcome == "unconfirmed"
    assert [r.reason for r in ledger.items if isinstance(r, EntryRejected)] == ["entry_unconfirmed"]
    assert ref.is_alive()
    ref.tell(SubmitEntry(decision=decision(signal=1_700_000_060_000)))  # the slot stays taken meanwhile
    [_, second] = ledger.wait_for(EntryRejected, 2)
    assert second.reason == "position_open"


def test_an_executor_that_fails_mid_entry_hands_the_entry_to_the_ledger() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    gw.fail["STOP_MARKET"] = [RuntimeError("a bug")]
    ref = start(gw, ledger, notes)
    ref.tell(SubmitEntry(decision=decision()))
    [finished] = ledger.wait_for(EntryFinished)
    assert finished.outcome == "failed"
    assert "RuntimeError: a bug" in finished.detail


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
    settled(ledger)
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


def test_a_start_asks_nothing_when_the_account_has_the_pairs_settings() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    account = AccountView()
    account.set_balances(ContractType.USDT_M, gw.balances(ContractType.USDT_M))
    assert account.set_up(gw, "BTCUSDT", ContractType.USDT_M, "ISOLATED", 10)  # as a late set-up leaves it
    gw.calls.clear()
    ref = start(gw, ledger, notes, account=account)
    ref.tell(SubmitEntry(decision=decision()))
    ledger.wait_for(PositionOpened)
    assert [name for name, _ in gw.calls if name in {"margin", "leverage"}] == []  # nor before its entry


def test_only_the_setting_that_differs_is_changed_before_the_first_entry() -> None:
    gw, ledger, notes = FakeGateway(), Inbox(), Inbox()
    account = AccountView()
    account.load(_Read(margin_type="ISOLATED", leverage=20), ContractType.USDT_M)
    ref = start(gw, ledger, notes, account=account)
    ref.tell(SubmitEntry(decision=decision()))
    ledger.wait_for(PositionOpened)
    assert [c for c in gw.calls if c[0] in {"margin", "leverage"}] == [("leverage", ("BTCUSDT", 10))]
    assert account.has("BTCUSDT", margin_type="ISOLATED", leverage=10)
    assert account.reads == 2


class _Read:
    """The account's one read: BTCUSDT's settings and the balances."""

    def __init__(self, *, margin_type: str, leverage: int) -> None:
        self.settings = SymbolSettings(symbol="BTCUSDT", margin_type=margin_type, leverage=leverage)

    def symbol_settings(self, contract: ContractType) -> dict[str, SymbolSettings]:
        return {"BTCUSDT": self.settings}

    def balances(self, contract: ContractType) -> dict[str, Balance]:
        return {"USDT": Balance(asset="USDT", wallet=10_000.0, available=10_000.0)}


def test_a_slot_is_freed_only_by_a_reconciliation_that_read_the_exchange_after_the_entry_ended() -> None:
    now = [0.0]
    slots = EntrySlots(clock=lambda: now[0])
    assert slots.claim("BTCUSDT", None, frozenset()) is None
    now[0] = 1.0
    assert slots.settle(frozenset(), since=2.0) == frozenset()  # still entering: the executor decides
    now[0] = 3.0
    slots.entered("BTCUSDT")
    assert slots.settle(frozenset(), since=2.5) == frozenset()  # read before the entry ended: cannot tell
    assert slots.settle(frozenset({"BTCUSDT"}), since=4.0) == frozenset()  # the exchange holds it
    assert slots.settle(frozenset(), since=4.0) == {"BTCUSDT"}
    assert slots.claim("BTCUSDT", None, frozenset()) is None
