"""OrderExecutor actor: turns a taken decision into a protected position, exactly once.

Per entry: gate (accepting entries, not paused, symbol flat, ``max_concurrent``), size with the backtester's
rules on the exchange's filters, MARKET entry, then STOP_MARKET, TAKE_PROFIT_MARKET and the pair's
TRAILING_STOP_MARKET through the algo-order API (:mod:`.protective_orders`). A time or reversal exit closes
the position at market and cancels its protective orders (:mod:`.position_exits`). Every order's client id
derives from (symbol, signal candle, leg), and after a timeout or a 503 "unknown" the order is looked up by
that id before anything is resent (:mod:`.order_retries`), so one signal can never open two positions. A
stop that cannot be placed within its deadline → the position is closed at market (reduce-only) and a
``stop_failed`` alert is raised: the
bot never holds a naked position it knows of. Every order state and refused entry is reported to the ledger
(:mod:`.order_reports`).

Starting costs no request: the shared ``AccountView`` (read once per account) tells whether the symbol's
margin type and leverage are as the pair wants them; if not, they are changed late in a cold start (after
every warm-up read) or, at the latest, before the symbol's first entry — only what differs.

The executor holds an entry only while it works on it. Once it sent one, it ends by telling the ledger
``EntryFinished`` — also when the entry's outcome could not be confirmed, and also when the executor itself
fails mid-entry — and from then on the exchange decides: the ledger's reconciliation adopts and protects
what the exchange holds, and frees the symbol's slot when the exchange is flat. No error from the venue can
leave an entry, a slot or a missing stop in a state only a dead actor knew.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from ...domain.fills import SizingError, SizingRequest, size_position
from ...domain.model import ContractType, Decision, Direction, Leg, PortfolioView, client_order_id
from ...exchange.errors import ExchangeError, Rejected
from ...exchange.parse import MalformedPayload
from ...exchange.types import Balance, OrderResult, OrderStatus, Side
from ...messages import (
    Alert,
    ClosePosition,
    EntryFinished,
    OrderExecutorInbox,
    PauseEntries,
    PositionClosed,
    PositionLedgerInbox,
    PositionOpened,
    ResumeEntries,
    StopAcceptingEntries,
    SubmitEntry,
)
from ...runtime.actor import Actor, Address, Monitor
from ...runtime.scheduling import OrderPriority
from .account_view import AccountView
from .order_reports import OrderReports
from .order_retries import GiveUpError, OrderRetries
from .order_terms import EntrySlots, OrderGateway, SymbolTerms
from .position_exits import PositionExits
from .protective_orders import Levels, ProtectiveOrders


class OrderExecutor(Actor[OrderExecutorInbox]):
    """The only actor that opens positions."""

    def __init__(
        self,
        *,
        gateways: Mapping[ContractType, OrderGateway],
        terms: Mapping[str, SymbolTerms],
        ledger: Address[PositionLedgerInbox],
        portfolio: Callable[[], PortfolioView],
        notify: Callable[[object], None],
        stop_retries: int = 3,
        lookup_attempts: int = 5,
        retry_delay_s: float = 0.2,
        max_rate_limit_wait_s: float = 30.0,
        latency: Callable[[int], None] | None = None,
        events: Callable[[object], None] | None = None,
        stopping: threading.Event | None = None,
        slots: EntrySlots | None = None,
        name: str = "executor",
        max_entry_delay_s: float = 5.0,
        monitor: Monitor | None = None,
        generation: int = 0,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        priority: OrderPriority | None = None,
        account: AccountView | None = None,
        on_balances: Callable[[Iterable[Balance]], None] | None = None,
    ) -> None:
        """``sleep`` and ``monotonic`` pace retries and their deadlines (tests pass a fake clock)."""
        super().__init__(name=name, monitor=monitor, generation=generation)
        self._on_balances = on_balances
        """Told every balance read (the metrics' wallet balances)."""
        self._gateways = gateways
        self._account = account or AccountView()
        """Shared by every executor of the process: settings and balances read once per account."""
        self._terms = dict(terms)
        self._ledger = ledger
        self._portfolio = portfolio
        self._notify = notify
        self._latency = latency
        self._clock_ms = clock_ms
        self._priority = priority or OrderPriority(0)
        self._entry_pending: str | None = None
        self._sent = False
        """The entry in hand has been sent (its outcome is the exchange's to tell from then on)."""
        """A ``SubmitEntry`` whose pair called ``priority.begin()`` is in hand, its request not yet sent."""
        self._accepting = True
        self._stopping = stopping or threading.Event()
        """Set by the daemon directly (not through the mailbox) when shutdown begins: queued entries are
        refused at once and retry waits end early, so a backlog cannot hold the process up."""
        self._max_delay_ns = int(max_entry_delay_s * 1e9)
        self._paused_all = False
        self._paused: set[str] = set()
        self._setup_done: set[str] = set()
        self._slots = slots or EntrySlots()
        self._handled: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.counters: dict[str, int] = {"entries": 0, "rejected": 0, "stop_failed": 0, "flattened": 0}
        self._retries = OrderRetries(
            lookup_attempts=lookup_attempts,
            delay_s=retry_delay_s,
            max_rate_limit_wait_s=max_rate_limit_wait_s,
            stopping=self._stopping,
            sleep=sleep,
            log=self.log,
            clock=monotonic,
        )
        self._reports = OrderReports(ledger=ledger, notify=notify, events=events, clock_ms=clock_ms)
        self._protective = ProtectiveOrders(
            gateways=gateways,
            retries=self._retries,
            reports=self._reports,
            priority=self._priority,
            notify=notify,
            stop_retries=stop_retries,
            counters=self.counters,
            log=self.log,
        )
        self._exits = PositionExits(
            gateways=gateways,
            terms=self._terms,
            retries=self._retries,
            reports=self._reports,
            priority=self._priority,
            log=self.log,
        )
        self._entered: dict[str, int] = {}
        """The signal of the last position this executor opened, per symbol."""

    # ---- lifecycle -------------------------------------------------------------------------------

    def start_actor(self) -> None:
        for symbol, t in self._terms.items():  # known from the account's one read: no request
            if self._account.has(symbol, margin_type=t.margin_mode, leverage=t.leverage):
                self._setup_done.add(symbol)
        for contract in {t.spec.contract_type for t in self._terms.values()}:
            if self._account.balances(contract) is None:  # the account-wide read failed or never ran
                self._refresh_balances(contract)

    def _setup(self, symbol: str) -> bool:
        """The symbol's margin type and leverage as its pair wants them: changed only where they differ."""
        if symbol in self._setup_done:
            return True
        t = self._terms[symbol]
        contract = t.spec.contract_type
        if not self._account.set_up(self._gateways[contract], symbol, contract, t.margin_mode, t.leverage):
            return False
        self._setup_done.add(symbol)
        return True

    def _refresh_balances(self, contract: ContractType, *, own: str | None = None) -> None:
        """Read the balances again, for every executor (the ``AccountView`` is shared)."""
        if own is not None:  # after an entry or a close: other symbols' entries go out first
            self._priority.step_aside(own=own)
        try:
            self._account.set_balances(contract, self._gateways[contract].balances(contract))
        except (ExchangeError, MalformedPayload) as exc:
            self.log.warning(f"balance refresh failed for {contract}: {exc}")
            return
        balances = self._account.balances(contract)
        if self._on_balances is not None and balances is not None:
            self._on_balances(balances.values())

    # ---- commands --------------------------------------------------------------------------------

    def on_pause_entries(self, message: PauseEntries) -> None:
        """Stop new entries for one symbol or all; open positions keep their orders."""
        if message.symbol is None:
            self._paused_all = True
        else:
            self._paused.add(message.symbol)
        self.log.info(
            f"paused: no new entries for {message.symbol or 'any pair'}; open positions keep their orders"
        )

    def on_resume_entries(self, message: ResumeEntries) -> None:
        """Allow entries again."""
        if message.symbol is None:
            self._paused_all = False
            self._paused.clear()
        else:
            self._paused.discard(message.symbol)
        self.log.info(f"resumed: entries allowed again for {message.symbol or 'every pair'}")

    def on_stop_accepting_entries(self, message: StopAcceptingEntries) -> None:
        """Shutdown has begun: refuse every entry from now on."""
        self._accepting = False
        self.log.info(f"no new entries ({message.reason})")

    def on_close_position(self, command: ClosePosition) -> None:
        """A time or reversal exit: close at market now, then cancel the position's protective orders.

        The balances are refreshed when the ledger reports the close (``on_position_closed``), not here:
        a replay at full speed closes often enough for every request to count against the weight budget.
        """
        if self._exits.close(command):
            self._slots.release(command.symbol)

    def on_position_closed(self, message: PositionClosed) -> None:
        """The ledger saw the position go flat: the symbol may trade again (unless the close is of the
        position a reversal replaced: the slot is the new one's)."""
        self._exits.forget(message.symbol, message.signal_open_time_ms)
        newer = self._entered.get(message.symbol)
        if message.signal_open_time_ms is not None and newer not in {None, message.signal_open_time_ms}:
            return
        self._slots.release(message.symbol)
        terms = self._terms.get(message.symbol)
        if terms is not None:
            self._refresh_balances(terms.spec.contract_type, own=message.symbol)

    def paused(self) -> frozenset[str]:
        """Paused symbols (``*`` when everything is paused); read by the shell."""
        return frozenset({"*"} if self._paused_all else set()) | frozenset(self._paused)

    # ---- entry -----------------------------------------------------------------------------------

    def on_submit_entry(self, command: SubmitEntry) -> None:
        """Open the position a taken decision asks for, or emit EntryRejected with the reason."""
        d = command.decision
        self._entry_pending = d.symbol
        self._sent = False
        try:
            self._submit(command)
        except BaseException as exc:
            if self._sent:  # whatever reached the exchange, the ledger settles it from there, now
                self._finished(d, "failed", f"{type(exc).__name__}: {exc}")
            else:
                self._slots.release(d.symbol)
            raise
        finally:
            self._slots.entered(d.symbol)
            self._entry_out()

    def _finished(self, d: Decision, outcome: str, detail: str = "") -> None:
        self._ledger.tell(
            EntryFinished(
                symbol=d.symbol, signal_open_time_ms=d.signal_open_time_ms, outcome=outcome, detail=detail
            )
        )

    def _entry_out(self) -> None:
        """The entry in hand is sent or refused: the market-data reader may go on (``OrderPriority``)."""
        if self._entry_pending is not None:
            self._priority.end(self._entry_pending)
            self._entry_pending = None

    def _submit(self, command: SubmitEntry) -> None:
        d = command.decision
        key = (d.symbol, d.signal_open_time_ms)
        if key in self._handled:
            self.log.warning(f"{d.symbol}: signal {d.signal_open_time_ms} already handled; duplicate ignored")
            return
        self._handled[key] = None
        while len(self._handled) > 10_000:
            self._handled.popitem(last=False)
        reason = self._gate(d, command.received_ns)
        if reason is not None:
            self._reject(d, reason)
            return
        terms = self._terms[d.symbol]
        if not self._setup(d.symbol):
            self._slots.release(d.symbol)
            self._reject(d, "setup_failed")
            return
        qty = self._size(d, terms)
        if isinstance(qty, SizingError):
            self._slots.release(d.symbol)
            self._reject(d, qty.value)
            return
        try:
            entry = self._enter(d, terms, qty, command.received_ns)
        except Rejected as exc:
            self._slots.release(d.symbol)
            self._reject(d, exc.reason)
            return
        except GiveUpError as exc:
            # the entry may or may not exist: keep the slot; reconciliation tells the truth, now
            self._reject(d, "entry_unconfirmed")
            self._notify(Alert(kind="entry_unconfirmed", symbol=d.symbol, detail=str(exc)))
            self._finished(d, "unconfirmed", str(exc))
            return
        self._protect(d, terms, entry)

    def _gate(self, d: Decision, received_ns: int) -> str | None:
        if not self._accepting or self._stopping.is_set():
            return "shutting_down"
        if received_ns and time.perf_counter_ns() - received_ns > self._max_delay_ns:
            return "stale"  # the market moved on: entering now would not be the trade the rules chose
        if self._paused_all or d.symbol in self._paused:
            return "paused"
        if d.symbol not in self._terms:
            return "unknown_symbol"
        if d.entry is None or d.stop_loss is None or d.take_profit is None:
            return "invalid_decision"
        ledger_open = self._portfolio().open_symbols - frozenset(self._exits.closed)  # closed here, unheard
        return self._slots.claim(d.symbol, self._terms[d.symbol].max_concurrent, ledger_open)

    def _size(self, d: Decision, t: SymbolTerms) -> Decimal | SizingError:
        if d.entry is None or d.stop_loss is None:
            return SizingError.INVALID_RISK
        balances = self._account.balances(t.spec.contract_type) or {}
        bal = balances.get(t.spec.margin_asset)
        return size_position(
            SizingRequest(
                spec=t.spec,
                direction=d.direction,
                entry=d.entry,
                stop=d.stop_loss,
                balance=bal.available if bal is not None else 0.0,
                leverage=t.leverage,
                fixed_margin=t.fixed_margin,
                dynamic=t.dynamic_sizing,
                risk_percent=t.risk_percent,
            )
        )

    def _enter(self, d: Decision, t: SymbolTerms, qty: Decimal, received_ns: int) -> OrderResult:
        contract = t.spec.contract_type
        gw = self._gateways[contract]
        side = Side.BUY if d.direction is Direction.LONG else Side.SELL
        cid = client_order_id(d.symbol, d.signal_open_time_ms, Leg.ENTRY)
        self._reports.order_state(d.symbol, cid, Leg.ENTRY, "submitted", side, quantity=str(qty))
        self._sent = True
        if self._latency is not None and received_ns:
            self._latency(time.perf_counter_ns() - received_ns)
        self._entry_out()

        def place() -> OrderResult:
            return gw.market_order(d.symbol, contract, side, qty, cid)

        def lookup() -> OrderResult | None:
            return gw.get_order(d.symbol, contract, client_order_id=cid)

        result = self._retries.idempotent(place, lookup, what=f"{d.symbol} entry {cid}")
        if result.status is not OrderStatus.FILLED or result.executed_qty <= 0:
            result = self._retries.await_fill(lookup, result, what=f"{d.symbol} entry {cid}")
        self._reports.order_state(
            d.symbol,
            cid,
            Leg.ENTRY,
            "filled",
            side,
            quantity=str(result.executed_qty),
            price=result.avg_price,
            exchange_id=result.order_id,
        )
        self.counters["entries"] += 1
        self.log.info(
            f"entry filled: {d.direction.value} {result.executed_qty} {d.symbol} at {result.avg_price} "
            f"(signal {d.signal_open_time_ms}, decided at {d.entry}, {cid})"
        )
        return result

    def _protect(self, d: Decision, t: SymbolTerms, entry: OrderResult) -> None:
        self._entered[d.symbol] = d.signal_open_time_ms
        self._exits.closed.pop(d.symbol, None)  # the ledger hears of this position after that close
        contract = t.spec.contract_type

        def opened(levels: Levels) -> None:
            stop, take = levels
            self._ledger.tell(
                PositionOpened(
                    symbol=d.symbol,
                    direction=d.direction,
                    quantity=str(entry.executed_qty),
                    entry_price=entry.avg_price,
                    stop_loss=float(stop),
                    take_profit=float(take),
                    signal_open_time_ms=d.signal_open_time_ms,
                    opened_at_ms=entry.update_time_ms or self._clock_ms(),
                    contract_type=contract,
                )
            )

        outcome = self._protective.protect(d, t, entry, opened)
        self._finished(d, outcome)
        self._refresh_balances(contract, own=d.symbol)

    def _reject(self, d: Decision, reason: str) -> None:
        self.counters["rejected"] += 1
        self._reports.entry_rejected(d, reason)
