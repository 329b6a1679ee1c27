"""The pure reconciliation planner: every discrepancy kind under both policies."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from nancemakina.actors.domain.model import ContractType, Direction, Leg
from nancemakina.actors.exchange.types import AlgoOrderResult, AlgoStatus, PositionInfo, ProtectiveKind, Side
from nancemakina.actors.tree.ledger.ledger_records import PositionRecord
from nancemakina.actors.tree.ledger.reconciliation import (
    AdoptPosition,
    CancelAlgo,
    CloseInLedger,
    ExchangeView,
    Flatten,
    PlaceStop,
    Policy,
    ReconcilePlan,
    UpdateQuantity,
    fresh_client_id,
    parse_client_id,
    plan_reconciliation,
)

USDT = ContractType.USDT_M
NOW = 1_750_000_000_000


def held(
    symbol="BTCUSDT", qty="0.010", direction=Direction.LONG, stop: float | None = 95.0
) -> PositionRecord:
    return PositionRecord(
        symbol=symbol, direction=direction, qty=Decimal(qty), entry_price=100.0, stop_loss=stop,
        take_profit=115.0, signal_open_time_ms=1000, opened_at_ms=2000, contract_type=USDT,
    )  # fmt: skip


def live(symbol="BTCUSDT", amount="0.010") -> PositionInfo:
    return PositionInfo(
        symbol=symbol, contract_type=USDT, amount=Decimal(amount), entry_price=100.0, mark_price=100.0,
        unrealized_pnl=0.0, leverage=10, margin_type="isolated",
    )  # fmt: skip


def algo(
    cid, kind=ProtectiveKind.STOP_MARKET, side=Side.SELL, symbol="BTCUSDT", trigger="95"
) -> AlgoOrderResult:
    return AlgoOrderResult(
        symbol=symbol, contract_type=USDT, algo_id=1, client_algo_id=cid, kind=kind, side=side,
        status=AlgoStatus.NEW, trigger_price=Decimal(trigger), quantity=None, close_position=True,
        reduce_only=True, update_time_ms=0,
    )  # fmt: skip


DEFAULT = Policy()


def plan(
    ledger: list[PositionRecord],
    positions: Sequence[PositionInfo] = (),
    algos: Sequence[AlgoOrderResult] = (),
    policy: Policy = DEFAULT,
    **kw: Any,
) -> ReconcilePlan:
    view = ExchangeView(contract_type=USDT, positions=tuple(positions), open_algo_orders=tuple(algos))
    return plan_reconciliation(ledger, view, policy, now_ms=NOW, **kw)


def kinds(p: ReconcilePlan) -> list[str]:
    return [d.kind for d in p.discrepancies]


def test_in_sync_is_quiet():
    p = plan(
        [held()],
        [live()],
        [algo("nm-BTCUSDT-1000-S"), algo("nm-BTCUSDT-1000-T", ProtectiveKind.TAKE_PROFIT_MARKET)],
    )
    assert (p.discrepancies, p.actions) == ((), ())


def test_flat_on_exchange_closes_the_ledger_and_cancels_our_leftovers():
    p = plan(
        [held()],
        [],
        [algo("nm-BTCUSDT-1000-T", ProtectiveKind.TAKE_PROFIT_MARKET), algo("manual", symbol="BTCUSDT")],
    )
    assert kinds(p) == ["flat_on_exchange", "orphan_algo_order"]
    assert p.actions == (
        CloseInLedger(symbol="BTCUSDT", reason="reconciled_flat"),
        CancelAlgo(symbol="BTCUSDT", contract_type=USDT, client_algo_id="nm-BTCUSDT-1000-T"),
    )


def test_a_flat_symbol_not_yet_closable_awaits_its_fill_and_keeps_its_orders():
    p = plan(
        [held(), held("ETHUSDT")],
        [],
        [
            algo("nm-BTCUSDT-1000-T", ProtectiveKind.TAKE_PROFIT_MARKET),
            algo("nm-ETHUSDT-1000-S", symbol="ETHUSDT"),
        ],
        may_close_flat=lambda symbol: symbol == "ETHUSDT",  # ETH has waited long enough, BTC has not
    )
    assert p.awaiting == ("BTCUSDT",)
    assert kinds(p) == ["flat_on_exchange", "orphan_algo_order"]
    assert [d.symbol for d in p.discrepancies] == ["ETHUSDT", "ETHUSDT"]
    assert p.actions == (
        CloseInLedger(symbol="ETHUSDT", reason="reconciled_flat"),
        CancelAlgo(symbol="ETHUSDT", contract_type=USDT, client_algo_id="nm-ETHUSDT-1000-S"),
    )


def test_unknown_position_with_a_stop_is_adopted_with_its_levels():
    p = plan([], [live("ETHUSDT", "-2")], [algo("x", side=Side.BUY, symbol="ETHUSDT", trigger="2600")])
    assert kinds(p) == ["unknown_position"]
    assert p.discrepancies[0].detail.endswith("stop x @ 2600")
    [adopt] = p.actions
    assert adopt == AdoptPosition(
        symbol="ETHUSDT", contract_type=USDT, direction=Direction.SHORT, qty=Decimal(2), entry_price=100.0,
        stop_loss=2600.0, take_profit=None,
    )  # fmt: skip


def test_unknown_naked_position_is_adopted_then_flattened_for_lack_of_a_stop_level():
    p = plan([], [live("ETHUSDT", "2")])
    assert kinds(p) == ["unknown_position", "naked_position"]
    assert isinstance(p.actions[0], AdoptPosition)
    assert p.actions[1] == Flatten(
        symbol="ETHUSDT", contract_type=USDT, side=Side.SELL, qty=Decimal(2),
        client_order_id=f"nm-ETHUSDT-{NOW}-C", reason="flattened_unprotected",
    )  # fmt: skip


def test_unknown_position_is_flattened_when_configured_with_our_stops_cancelled_after():
    p = plan(
        [],
        [live("ETHUSDT", "2")],
        [algo("nm-ETHUSDT-5-S", symbol="ETHUSDT")],
        Policy(on_unknown_position="flatten"),
    )
    assert kinds(p) == ["unknown_position"]
    [flatten] = p.actions
    assert isinstance(flatten, Flatten)
    assert (flatten.reason, flatten.then_cancel) == ("flattened_unknown", ("nm-ETHUSDT-5-S",))


def test_naked_known_position_is_repaired_at_the_ledger_stop():
    p = plan([held()], [live()], [algo("nm-BTCUSDT-1000-T", ProtectiveKind.TAKE_PROFIT_MARKET)])
    assert kinds(p) == ["naked_position"]
    assert p.actions == (
        PlaceStop(
            symbol="BTCUSDT", contract_type=USDT, side=Side.SELL, trigger_price=Decimal("95.0"),
            client_algo_id="nm-BTCUSDT-1000-S",
        ),
    )  # fmt: skip


def test_repair_never_reuses_a_used_id():
    used = {"nm-BTCUSDT-1000-S", "nm-BTCUSDT-1000-S-r1"}
    p = plan([held()], [live()], is_used=used.__contains__)
    assert isinstance(p.actions[0], PlaceStop)
    assert p.actions[0].client_algo_id == "nm-BTCUSDT-1000-S-r2"


def test_a_stop_on_the_wrong_side_does_not_protect():
    p = plan([held()], [live()], [algo("nm-BTCUSDT-1000-S", side=Side.BUY)])
    assert kinds(p) == ["naked_position"]


def test_naked_without_a_known_level_or_in_flatten_mode_is_flattened():
    for policy, record in ((Policy(), held(stop=None)), (Policy(on_unprotected_position="flatten"), held())):
        p = plan([record], [live()], policy=policy)
        assert kinds(p) == ["naked_position"]
        [flatten] = p.actions
        assert isinstance(flatten, Flatten)
        assert flatten.client_order_id == "nm-BTCUSDT-1000-C"
        assert flatten.reason == "flattened_unprotected"


def test_quantity_mismatch_adopts_the_exchange_quantity():
    p = plan([held()], [live(amount="0.007")], [algo("nm-BTCUSDT-1000-S")])
    assert kinds(p) == ["quantity_mismatch"]
    assert p.actions == (UpdateQuantity(symbol="BTCUSDT", qty=Decimal("0.007")),)


def test_direction_mismatch_closes_the_ledger_and_handles_the_exchange_side_as_unknown():
    p = plan([held()], [live(amount="-0.010")], [algo("s", side=Side.BUY)])
    assert kinds(p) == ["direction_mismatch", "unknown_position"]
    assert isinstance(p.actions[0], CloseInLedger)
    assert isinstance(p.actions[1], AdoptPosition)


def test_orphans_of_others_are_left_alone_and_in_flight_symbols_skipped():
    p = plan([], [live("ETHUSDT", "1")], [algo("web_1", symbol="XRPUSDT"), algo("nm-ETHUSDT-1-S", symbol="ETHUSDT")],
             in_flight={"ETHUSDT"})  # fmt: skip
    assert (p.discrepancies, p.actions) == ((), ())


def test_other_contract_types_are_not_compared():
    coin = dataclasses.replace(held(), contract_type=ContractType.COIN_M)
    assert plan([coin]).actions == ()


def test_client_ids_parse_and_stay_within_binance_limits():
    assert parse_client_id("nm-BTCUSD_PERP-1748184420000-S-r2") == ("BTCUSD_PERP", 1748184420000, Leg.STOP)
    assert parse_client_id("web_abc") is None
    assert parse_client_id("nm-BTCUSDT-x-S") is None
    long_id = fresh_client_id("1000000MOGUSDTXYZ", 1748184420000, Leg.STOP, lambda c: not c.endswith("r1"))
    assert long_id.endswith("-r1")
    assert len(long_id) <= 36
