"""The executor's hand-written fakes: a gateway that records every call, an inbox, decisions, a started
executor (``test_executor.py``, ``test_executor_exits.py``)."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pykka

from nancemakina.actors.domain.exits import ExitParams
from nancemakina.actors.domain.model import ContractType, Decision, Direction, Outcome, PortfolioView
from nancemakina.actors.exchange.instruments import spec_for
from nancemakina.actors.exchange.types import (
    AlgoOrderResult,
    AlgoStatus,
    Balance,
    OrderResult,
    OrderStatus,
    ProtectiveKind,
    Side,
)
from nancemakina.actors.messages import EntryFinished, PositionOpened
from nancemakina.actors.tree.executor.order_executor import OrderExecutor
from nancemakina.actors.tree.executor.order_terms import SymbolTerms

BTC = spec_for("BTCUSDT", ContractType.USDT_M)


class FakeGateway:
    """Records every call; scripted failures per method."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.orders: dict[str, OrderResult] = {}
        self.algos: dict[str, AlgoOrderResult] = {}
        self.fail: dict[str, list[Exception]] = {}
        self.execute_then_fail: set[str] = set()
        self.ids = 0

    def _maybe_fail(self, name: str) -> None:
        queue = self.fail.get(name)
        if queue:
            raise queue.pop(0)

    def set_leverage(self, symbol: str, contract: ContractType, leverage: int) -> None:
        self.calls.append(("leverage", (symbol, leverage)))

    def set_margin_type(self, symbol: str, contract: ContractType, margin_type: str) -> None:
        self.calls.append(("margin", (symbol, margin_type)))

    def balances(self, contract: ContractType) -> dict[str, Balance]:
        return {"USDT": Balance(asset="USDT", wallet=10_000.0, available=10_000.0)}

    def market_order(
        self,
        symbol: str,
        contract: ContractType,
        side: Side,
        qty: Decimal,
        client_order_id: str,
        *,
        reduce_only: bool = False,
    ) -> OrderResult:
        self.calls.append(("market", (client_order_id, side, qty, reduce_only)))
        if "market" not in self.execute_then_fail:
            self._maybe_fail("market")
        self.ids += 1
        result = OrderResult(
            symbol=symbol,
            contract_type=contract,
            order_id=self.ids,
            client_order_id=client_order_id,
            side=side,
            status=OrderStatus.FILLED,
            orig_qty=qty,
            executed_qty=qty,
            avg_price=100_000.0,
            reduce_only=reduce_only,
            update_time_ms=1,
        )
        self.orders[client_order_id] = result
        if "market" in self.execute_then_fail:
            self._maybe_fail("market")
        return result

    def get_order(self, symbol: str, contract: ContractType, *, client_order_id: str) -> OrderResult | None:
        self.calls.append(("get_order", client_order_id))
        self._maybe_fail("get_order")
        return self.orders.get(client_order_id)

    def place_protective(  # noqa: PLR0917 - the gateway's signature
        self,
        symbol: str,
        contract: ContractType,
        kind: ProtectiveKind,
        side: Side,
        trigger_price: Decimal,
        client_algo_id: str,
        *,
        close_position: bool = True,
        quantity: Decimal | None = None,
    ) -> AlgoOrderResult:
        self.calls.append((kind.value, (client_algo_id, side, trigger_price)))
        self._maybe_fail(kind.value)
        self.ids += 1
        result = AlgoOrderResult(
            symbol=symbol,
            contract_type=contract,
            algo_id=self.ids,
            client_algo_id=client_algo_id,
            kind=kind,
            side=side,
            status=AlgoStatus.NEW,
            trigger_price=trigger_price,
            quantity=None,
            close_position=True,
            reduce_only=True,
            update_time_ms=1,
        )
        self.algos[client_algo_id] = result
        return result

    def get_algo_order(
        self, symbol: str, contract: ContractType, *, client_algo_id: str
    ) -> AlgoOrderResult | None:
        return self.algos.get(client_algo_id)

    def place_trailing_stop(  # noqa: PLR0917 - the gateway's signature
        self,
        symbol: str,
        contract: ContractType,
        side: Side,
        quantity: Decimal,
        callback_rate: Decimal,
        client_algo_id: str,
        *,
        activate_price: Decimal | None = None,
    ) -> AlgoOrderResult:
        self.calls.append(
            ("TRAILING_STOP_MARKET", (client_algo_id, side, quantity, callback_rate, activate_price))
        )
        self._maybe_fail("TRAILING_STOP_MARKET")
        self.ids += 1
        result = AlgoOrderResult(
            symbol=symbol,
            contract_type=contract,
            algo_id=self.ids,
            client_algo_id=client_algo_id,
            kind=ProtectiveKind.TRAILING_STOP_MARKET,
            side=side,
            status=AlgoStatus.NEW,
            trigger_price=activate_price or Decimal(0),
            quantity=quantity,
            close_position=False,
            reduce_only=True,
            update_time_ms=1,
        )
        self.algos[client_algo_id] = result
        return result

    def cancel_algo_order(self, symbol: str, contract: ContractType, *, client_algo_id: str) -> bool:
        self.calls.append(("cancel_algo", client_algo_id))
        return self.algos.pop(client_algo_id, None) is not None

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)


class Inbox:
    """A fake ledger/notify sink collecting messages."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self.cond = threading.Condition()

    def tell(self, message: object) -> None:
        with self.cond:
            self.items.append(message)
            self.cond.notify_all()

    def wait_for(self, kind: type, n: int = 1) -> list[Any]:
        with self.cond:
            ok = self.cond.wait_for(lambda: sum(isinstance(m, kind) for m in self.items) >= n, timeout=5)
        assert ok, f"no {kind.__name__} in {self.items}"
        return [m for m in self.items if isinstance(m, kind)]


def decision(
    direction: Direction = Direction.LONG, signal: int = 1_700_000_000_000, symbol: str = "BTCUSDT"
) -> Decision:
    long = direction is Direction.LONG
    return Decision(
        symbol=symbol,
        timeframe="1m",
        signal_open_time_ms=signal,
        decided_open_time_ms=signal,
        direction=direction,
        outcome=Outcome.TAKEN,
        entry=100_000.0,
        stop_loss=99_000.05 if long else 101_000.05,
        take_profit=103_000.07 if long else 96_999.93,
    )


def start(
    gw: FakeGateway, ledger: Inbox, notes: Inbox, view: PortfolioView | None = None, **kw: Any
) -> pykka.ActorRef[Any]:
    terms = {
        "BTCUSDT": SymbolTerms(
            spec=BTC,
            leverage=10,
            margin_mode="ISOLATED",
            fixed_margin=50.0,
            dynamic_sizing=False,
            risk_percent=1.0,
            max_concurrent=kw.pop("max_concurrent", None),
            exits=kw.pop("exits", ExitParams()),
        )
    }
    current = view or PortfolioView()
    portfolio = kw.pop("portfolio", lambda: current)
    clock = [0.0]

    def sleep(seconds: float) -> None:  # a test-held clock: waits take no time, deadlines still pass
        clock[0] += seconds

    return OrderExecutor.start(
        gateways={ContractType.USDT_M: gw},
        terms=terms,
        ledger=ledger,
        portfolio=portfolio,
        notify=notes.tell,
        retry_delay_s=0.0,
        sleep=sleep,
        monotonic=lambda: clock[0],
        **kw,
    )


def settled(ledger: Inbox) -> list[Any]:
    """The PositionOpened of an entry the executor has finished with (stop, take-profit, trailing stop all
    sent: ``EntryFinished`` comes last)."""
    ledger.wait_for(EntryFinished)
    return ledger.wait_for(PositionOpened)
