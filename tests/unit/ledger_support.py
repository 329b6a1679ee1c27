"""Hand-written fakes for the ledger tests (no tests here): an in-memory exchange and event recorders."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pykka

from nancemakina.actors.config import ExecutionSettings
from nancemakina.actors.domain.model import ContractType, Direction, Leg, PortfolioView, client_order_id
from nancemakina.actors.exchange.errors import Rejected, TransientError
from nancemakina.actors.exchange.types import (
    AccountTrade,
    AccountUpdate,
    AlgoOrderResult,
    AlgoStatus,
    AlgoUpdate,
    OrderResult,
    OrderStatus,
    OrderUpdate,
    PositionInfo,
    ProtectiveKind,
    Side,
)
from nancemakina.actors.messages import PositionOpened, Reconcile
from nancemakina.actors.tree.ledger.ledger_snapshots import LedgerSnapshots
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore
from nancemakina.actors.tree.ledger.position_ledger import PositionLedger

T = TypeVar("T")
USDT = ContractType.USDT_M
SIGNAL = 1_748_184_420_000
OPENED = SIGNAL + 120_000


class FakeExchange:
    """Positions and algo orders of one account, with scripted failures. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.positions_by_symbol: dict[str, PositionInfo] = {}
        self.algos: dict[str, AlgoOrderResult] = {}
        self.calls: list[tuple[str, str]] = []
        self.failures: dict[str, list[Exception]] = {}
        self.mark = 100.0
        self._next_id = 1
        self.fills: list[AccountTrade] = []
        self.order_cids: dict[int, str] = {}
        """The account's fills, as ``userTrades`` answers them."""

    def fail(self, method: str, *errors: Exception) -> None:
        self.failures.setdefault(method, []).extend(errors)

    def _enter(self, method: str, what: str) -> None:
        self.calls.append((method, what))
        queued = self.failures.get(method)
        if queued:
            raise queued.pop(0)

    def set_position(self, symbol: str, amount: str, entry: float = 100.0) -> None:
        with self._lock:
            self.positions_by_symbol[symbol] = PositionInfo(
                symbol=symbol, contract_type=USDT, amount=Decimal(amount), entry_price=entry,
                mark_price=self.mark, unrealized_pnl=0.0, leverage=10, margin_type="isolated",
            )  # fmt: skip

    def add_algo(
        self, symbol: str, cid: str, kind: ProtectiveKind, side: Side, trigger: str
    ) -> AlgoOrderResult:
        with self._lock:
            self._next_id += 1
            algo = AlgoOrderResult(
                symbol=symbol, contract_type=USDT, algo_id=self._next_id, client_algo_id=cid, kind=kind,
                side=side, status=AlgoStatus.NEW, trigger_price=Decimal(trigger), quantity=None,
                close_position=True, reduce_only=True, update_time_ms=OPENED,
            )  # fmt: skip
            self.algos[cid] = algo
            return algo

    def open_ids(self) -> set[str]:
        return {cid for cid, a in self.algos.items() if a.status is AlgoStatus.NEW}

    def finish_algo(self, cid: str, status: AlgoStatus = AlgoStatus.FINISHED) -> None:
        with self._lock:
            old = self.algos[cid]
            self.algos[cid] = dataclasses.replace(old, status=status)

    def called(self, method: str) -> list[str]:
        return [what for m, what in self.calls if m == method]

    # ---- the LedgerGateway protocol ----------------------------------------------------------------

    def positions(self, contract: ContractType) -> list[PositionInfo]:
        with self._lock:
            self._enter("positions", contract.value)
            return [p for p in self.positions_by_symbol.values() if p.amount != 0]

    def open_algo_orders(self, contract: ContractType, symbol: str | None = None) -> list[AlgoOrderResult]:
        with self._lock:
            self._enter("open_algo_orders", f"{contract.value}:{symbol or '*'}")
            return [
                a for a in self.algos.values() if a.status is AlgoStatus.NEW and symbol in {None, a.symbol}
            ]

    def open_orders(self, contract: ContractType, symbol: str | None = None) -> list[OrderResult]:
        with self._lock:
            self._enter("open_orders", f"{contract.value}:{symbol or '*'}")
            return []

    def place_protective(  # noqa: PLR0917 - mirrors BinanceGateway
        self,
        symbol,
        contract,
        kind,
        side,
        trigger_price,
        client_algo_id,
        *,
        close_position=True,
        quantity=None,
    ) -> AlgoOrderResult:
        with self._lock:
            self._enter("place_protective", client_algo_id)
            if client_algo_id in self.algos:
                raise Rejected("POST /fapi/v1/algoOrder", -4116, "ClientOrderId is duplicated.")
        return self.add_algo(symbol, client_algo_id, kind, side, str(trigger_price))

    def cancel_algo_order(self, symbol: str, contract: ContractType, *, client_algo_id: str) -> bool:
        with self._lock:
            self._enter("cancel_algo_order", client_algo_id)
            algo = self.algos.get(client_algo_id)
            if algo is None or algo.status is not AlgoStatus.NEW:
                return False
        self.finish_algo(client_algo_id, AlgoStatus.CANCELED)
        return True

    def add_fill(
        self,
        side: Side,
        qty: str,
        price: str,
        pnl: str,
        *,
        at: int,
        symbol: str = "BTCUSDT",
        cid: str | None = None,
        order_id: int | None = None,
    ) -> int:
        """One fill of the account; ``order_id`` adds it to an earlier order. Returns the order id."""
        with self._lock:
            if order_id is None:
                self._next_id += 1
                order_id = self._next_id
            self.order_cids[order_id] = cid or self.order_cids.get(order_id) or f"web_{order_id}"
            self.fills.append(
                AccountTrade(
                    symbol=symbol,
                    order_id=order_id,
                    side=side,
                    price=Decimal(price),
                    qty=Decimal(qty),
                    realized_pnl=Decimal(pnl),
                    commission=Decimal("0.01"),
                    commission_asset="USDT",
                    time_ms=at,
                )
            )
            return order_id

    def get_order(
        self,
        symbol: str,
        contract: ContractType,
        *,
        client_order_id: str | None = None,
        order_id: int | None = None,
    ) -> OrderResult | None:
        with self._lock:
            self._enter("get_order", client_order_id or str(order_id))
            if order_id is None:
                order_id = next((i for i, c in self.order_cids.items() if c == client_order_id), None)
            mine = [f for f in self.fills if f.order_id == order_id]
            if order_id is None or not mine:
                return None
            qty = sum((f.qty for f in mine), Decimal(0))
            return OrderResult(
                symbol=symbol,
                contract_type=contract,
                order_id=order_id,
                client_order_id=self.order_cids[order_id],
                side=mine[0].side,
                status=OrderStatus.FILLED,
                orig_qty=qty,
                executed_qty=qty,
                avg_price=float(mine[0].price),
                reduce_only=True,
                update_time_ms=mine[-1].time_ms,
            )

    def account_trades(self, symbol: str, contract: ContractType, *, start_ms: int) -> list[AccountTrade]:
        with self._lock:
            self._enter("account_trades", f"{symbol}:{start_ms}")
            return [f for f in self.fills if f.symbol == symbol and f.time_ms >= start_ms]

    def market_order(self, symbol, contract, side, qty, client_order_id, *, reduce_only=False) -> OrderResult:
        with self._lock:
            self._enter("market_order", client_order_id)
            pos = self.positions_by_symbol.get(symbol)
            signed = qty if side is Side.BUY else -qty
            amount = (pos.amount if pos else Decimal(0)) + signed
            held = pos.amount if pos else Decimal(0)
            entry = Decimal(repr(pos.entry_price)) if pos else Decimal(0)
            mark = Decimal(repr(self.mark))
            closing = min(qty, abs(held)) if held and (held > 0) != (side is Side.BUY) else Decimal(0)
            pnl = (mark - entry) * closing * (1 if held > 0 else -1)
        self.set_position(symbol, str(amount))
        self.add_fill(side, str(qty), str(mark), str(pnl), at=OPENED + 1, symbol=symbol, cid=client_order_id)
        return OrderResult(
            symbol=symbol, contract_type=contract, order_id=self._next_id, client_order_id=client_order_id,
            side=side, status=OrderStatus.FILLED, orig_qty=qty, executed_qty=qty, avg_price=self.mark,
            reduce_only=reduce_only, update_time_ms=OPENED + 1,
        )  # fmt: skip


class Recorder:
    """Collects what the ledger publishes; tests wait on it with a timeout, never sleep."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self._cond = threading.Condition()

    def __call__(self, item: object) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def of(self, kind: type[T]) -> list[T]:
        with self._cond:
            return [i for i in self.items if isinstance(i, kind)]

    def wait(self, predicate: Callable[[list[object]], bool], timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.items), timeout)


class Harness:
    """One ledger on a fake exchange, with recorders for every callback."""

    def __init__(
        self,
        tmp: Path,
        exchange: FakeExchange | None = None,
        *,
        ticks: dict[str, Decimal] | None = None,
        on_settled: Callable[[frozenset[str], float], None] | None = None,
        **execution: Any,
    ) -> None:
        self.ticks = ticks
        self.on_settled = on_settled
        self.path = tmp / "ledger.sqlite3"
        self.exchange = exchange or FakeExchange()
        self.execution = ExecutionSettings.model_validate({"reconcile_interval_s": 3600.0, **execution})
        self.portfolio = Recorder()
        self.alerts = Recorder()
        self.events = Recorder()
        self.snapshots = LedgerSnapshots()
        self.ref: pykka.ActorRef[PositionLedger] | None = None

    def start(self) -> Harness:
        self.ref = PositionLedger.start(
            store_path=self.path, gateways={USDT: self.exchange}, execution=self.execution,
            publish_portfolio=self.portfolio, alert=self.alerts, listeners=self.events,
            contracts={"BTCUSDT": USDT, "ETHUSDT": USDT}, snapshots=self.snapshots, clock_ms=lambda: OPENED + 5,
            ticks=self.ticks, on_settled=self.on_settled,
        )  # fmt: skip
        self.ref.ask(Reconcile(reason="test start"), timeout=5)  # start-up reconciliation has run
        return self

    def send(self, *messages: object) -> None:
        """Deliver in order and wait until each one is handled."""
        assert self.ref is not None
        for message in messages:
            self.ref.ask(message, timeout=5)

    def stop(self) -> None:
        assert self.ref is not None
        self.ref.stop(timeout=5)

    def reader(self) -> LedgerStore:
        """A read-only connection, as the shell and ``report`` open one."""
        return LedgerStore.open_read_only(self.path)

    def latest_open(self) -> frozenset[str]:
        views = self.portfolio.of(PortfolioView)
        return views[-1].open_symbols


def opened(
    symbol: str = "BTCUSDT", direction: Direction = Direction.LONG, qty: str = "0.010"
) -> PositionOpened:
    stop, take = (95.0, 115.0) if direction is Direction.LONG else (105.0, 85.0)
    return PositionOpened(
        symbol=symbol, direction=direction, quantity=qty, entry_price=100.0, stop_loss=stop, take_profit=take,
        signal_open_time_ms=SIGNAL, opened_at_ms=OPENED,
    )  # fmt: skip


def protected(exchange: FakeExchange, symbol: str = "BTCUSDT", direction: Direction = Direction.LONG) -> None:
    """The exchange state right after the executor's entry: position, stop and take-profit."""
    side = Side.SELL if direction is Direction.LONG else Side.BUY
    stop, take = ("95", "115") if direction is Direction.LONG else ("105", "85")
    exchange.set_position(symbol, "0.010" if direction is Direction.LONG else "-0.010")
    exchange.add_algo(symbol, cid(Leg.STOP, symbol), ProtectiveKind.STOP_MARKET, side, stop)
    exchange.add_algo(symbol, cid(Leg.TAKE_PROFIT, symbol), ProtectiveKind.TAKE_PROFIT_MARKET, side, take)


def cid(leg: Leg, symbol: str = "BTCUSDT") -> str:
    return client_order_id(symbol, SIGNAL, leg)


def algo_update(
    leg: Leg, status: AlgoStatus, symbol: str = "BTCUSDT", at: int = OPENED + 60_000
) -> AlgoUpdate:
    return AlgoUpdate(
        contract_type=USDT, symbol=symbol, client_algo_id=cid(leg, symbol), algo_id=7, status=status,
        kind=ProtectiveKind.STOP_MARKET if leg is Leg.STOP else ProtectiveKind.TAKE_PROFIT_MARKET,
        triggered_order_client_id=None, event_time_ms=at,
    )  # fmt: skip


def fill(
    client: str,
    side: Side,
    *,
    cum: str,
    last: str | None = None,
    price: float = 95.0,
    rp: float = -0.05,
    symbol: str = "BTCUSDT",
    at: int = OPENED + 60_000,
    reduce_only: bool = True,
) -> OrderUpdate:
    done = Decimal(cum) >= Decimal("0.010")
    return OrderUpdate(
        contract_type=USDT, symbol=symbol, client_order_id=client, order_id=99, side=side, order_type="MARKET",
        execution_type="TRADE", status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
        last_filled_qty=Decimal(last or cum), cumulative_qty=Decimal(cum), last_filled_price=price,
        avg_price=price, realized_pnl=rp, commission=Decimal("0.01"), reduce_only=reduce_only, event_time_ms=at,
    )  # fmt: skip


def flat(symbol: str = "BTCUSDT", at: int = OPENED + 60_000) -> AccountUpdate:
    pos = PositionInfo(
        symbol=symbol, contract_type=USDT, amount=Decimal(0), entry_price=0.0, mark_price=95.0,
        unrealized_pnl=0.0, leverage=10, margin_type="isolated",
    )  # fmt: skip
    return AccountUpdate(contract_type=USDT, reason="ORDER", balances=(), positions=(pos,), event_time_ms=at)


def transient() -> TransientError:
    return TransientError("GET /fapi/v2/positionRisk", "HTTP 503 Service Unavailable")
