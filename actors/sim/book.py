"""The matching engine's accounts: balances, one-way positions, orders and fills of the one simulated user.

Pure Python, no I/O and no clock of its own: the replay hands it prices and candles, REST hands it
orders, and it appends Binance-shaped user-data payloads to ``events`` for the streams to deliver. Fill
rules come from ``domain.fills`` so replayed exits equal the backtester's: a MARKET order fills at the
current price moved by the slippage (taker fee); a LIMIT order (``limit_orders``) fills at once as a
taker when it crosses the synthetic book, else rests and fills at its limit when the candle path touches
it (maker fee); conditional orders (``algos``) trigger on the path; ``matching`` walks each candle.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ..domain.fills import InstrumentSpec, fee, market_fill_price, notional_in_margin_asset, pnl
from ..domain.model import ContractType
from ..exchange.instruments import spec_to_entry
from . import events
from .algos import AlgoBook
from .config import SimConfig
from .errors import SimError, known
from .history import Fill, History
from .limit_orders import LimitOrders
from .matching import walk_candle
from .orders import AlgoOrder, Order, Position, Side, UserEvent, direction_of
from .rules import SymbolRules

_FIRST_ORDER_ID = 4_000_000_000


class Book:
    """All accounts of the one simulated user (USDⓈ-M and COIN-M wallets share this book)."""

    def __init__(
        self,
        specs: Mapping[str, InstrumentSpec],
        prices: Mapping[str, float],
        config: SimConfig,
        rules: Mapping[str, SymbolRules] | None = None,
    ) -> None:
        """``rules`` default to the filters ``specs`` carry (``spec_to_entry``)."""
        self.specs = dict(specs)
        self.rules = dict(rules or {s: SymbolRules.of(spec_to_entry(spec)) for s, spec in specs.items()})
        self.marks: dict[str, float] = dict(prices)
        """Current price per tradeable (replayed) symbol."""
        self.config = config
        self.wallet: dict[str, float] = {a: float(b) for a, b in config.balances.items()}
        self.positions: dict[str, Position] = {}
        self.orders: dict[int, Order] = {}
        self.orders_by_client: dict[tuple[str, str], Order] = {}
        self._open: dict[int, Order] = {}
        """The open orders (an index: matching runs each candle)."""
        self.events: list[UserEvent] = []
        self.history = History()
        self.limits = LimitOrders(self)
        self.algo_book = AlgoBook(self)
        self._order_id = _FIRST_ORDER_ID
        self._trade_id = 1

    def add_symbol(self, spec: InstrumentSpec, rules: SymbolRules) -> None:
        self.specs[spec.symbol] = spec
        self.rules[spec.symbol] = rules

    # --- lookups -------------------------------------------------------------------------------------

    def spec(self, symbol: str) -> InstrumentSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise known(-1121)
        return spec

    def tradeable(self, symbol: str) -> InstrumentSpec:
        spec = self.spec(symbol)
        if symbol not in self.marks:
            raise SimError(-1121, "Invalid symbol.")  # listed but no price yet: nothing to trade against
        return spec

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            spec = self.spec(symbol)
            pos = Position(
                symbol=symbol, contract_type=spec.contract_type, leverage=self.config.default_leverage
            )
            self.positions[symbol] = pos
        return pos

    def unrealized(self, symbol: str) -> float:
        pos = self.positions.get(symbol)
        direction = direction_of(pos.amount) if pos else None
        if pos is None or direction is None or symbol not in self.marks:
            return 0.0
        return pnl(self.specs[symbol], direction, abs(pos.amount), pos.entry, self.marks[symbol])

    def available(self, asset: str) -> float:
        """Wallet less the margin of positions and resting orders, and cross positions' losses."""
        locked = self.limits.margin(asset)
        losses = 0.0
        for sym, pos in self.positions.items():
            if self.specs[sym].margin_asset == asset:
                locked += pos.margin
                if not pos.isolated:
                    losses += min(0.0, self.unrealized(sym))
        return self.wallet.get(asset, 0.0) - locked + losses

    def find_order(self, symbol: str, order_id: int | None, client_id: str | None) -> Order | None:
        if order_id is not None:
            found = self.orders.get(order_id)
            return found if found is not None and found.symbol == symbol else None
        return self.orders_by_client.get((symbol, client_id or ""))

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self._open.values() if symbol in {None, o.symbol}]

    # --- algo orders (the Algo Service, see ``algos``) ----------------------------------------------------

    @property
    def algos(self) -> dict[int, AlgoOrder]:
        return self.algo_book.algos

    @property
    def algos_by_client(self) -> dict[str, AlgoOrder]:
        return self.algo_book.by_client

    def open_algos(self, symbol: str | None = None) -> list[AlgoOrder]:
        return self.algo_book.open(symbol)

    def cancel_algo(self, algo: AlgoOrder, now: int) -> AlgoOrder:
        return self.algo_book.cancel(algo, now)

    # --- settings ------------------------------------------------------------------------------------

    def set_leverage(self, symbol: str, leverage: int) -> Position:
        self.spec(symbol)
        if not 1 <= leverage <= 125:
            raise SimError(-4028, f"Leverage {leverage} is not valid")
        pos = self.position(symbol)
        pos.leverage = leverage
        return pos

    def set_margin_type(self, symbol: str, isolated: bool) -> None:
        pos = self.position(symbol)
        if pos.isolated == isolated:
            raise SimError(-4046, "No need to change margin type.")
        if pos.amount or self.open_orders(symbol) or any(a.symbol == symbol for a in self.open_algos()):
            raise SimError(-4048, "Margin type cannot be changed if there exists position.")
        pos.isolated = isolated

    # --- orders --------------------------------------------------------------------------------------

    def closing_qty(self, symbol: str, side: Side) -> Decimal:
        """How much of the position an order on ``side`` would close."""
        pos = self.position(symbol)
        return abs(pos.amount) if pos.amount * side.sign < 0 else Decimal(0)

    def check_open(
        self,
        spec: InstrumentSpec,
        *,
        side: Side,
        qty: Decimal,
        price: float,
        reduce_only: bool,
        fill_price: float | None = None,
    ) -> None:
        """MIN_NOTIONAL at ``price`` (USDⓈ-M, unless reduce-only) and the margin (-2019) an order about to
        open needs at ``fill_price`` (default ``price``)."""
        usd = spec.contract_type is ContractType.USDT_M
        if usd and not reduce_only and Decimal(repr(price)) * qty < spec.min_notional:
            floor = f"{spec.min_notional.normalize():f}"
            msg = f"Order's notional must be no smaller than {floor} (unless you choose reduce only)."
            raise SimError(-4164, msg)
        opening = qty - min(qty, self.closing_qty(spec.symbol, side))
        if opening:
            at = price if fill_price is None else fill_price
            leverage = self.position(spec.symbol).leverage
            need = notional_in_margin_asset(spec, opening, at) / leverage + fee(
                spec, qty, at, self.config.fee_pct
            )
            if need > self.available(spec.margin_asset):
                raise known(-2019)

    def place_market(
        self, *, symbol: str, side: Side, qty: Decimal, reduce_only: bool, client_id: str, now: int
    ) -> tuple[Order, Order]:
        """Accept and fill a MARKET order; returns (snapshot at acceptance, filled order)."""
        spec = self.tradeable(symbol)
        if (symbol, client_id) in self.orders_by_client:
            raise known(-4116)
        price = market_fill_price(
            self.marks[symbol],
            buy=side is Side.BUY,
            slippage_pct=self.config.slippage_pct,
            tick=spec.tick_size,
        )
        if reduce_only:
            closing = min(qty, self.closing_qty(symbol, side))
            if not closing:
                raise known(-2022)
            qty = closing
        mark = self.marks[symbol]
        self.check_open(spec, side=side, qty=qty, price=mark, reduce_only=reduce_only, fill_price=price)
        order = self.new_order(
            spec, side=side, qty=qty, reduce_only=reduce_only, client_id=client_id, now=now
        )
        snapshot = Order(**{f: getattr(order, f) for f in Order.__slots__})
        self.accept(order, now)
        self.fill(order, price, now, maker=False)
        return snapshot, order

    def new_order(
        self, spec: InstrumentSpec, *, side: Side, qty: Decimal, reduce_only: bool, client_id: str, now: int
    ) -> Order:
        """Register a new order (not yet announced)."""
        self._order_id += 1
        order = Order(
            order_id=self._order_id,
            client_id=client_id,
            symbol=spec.symbol,
            contract_type=spec.contract_type,
            side=side,
            qty=qty,
            reduce_only=reduce_only,
            time=now,
            update_time=now,
        )
        self.orders[order.order_id] = order
        self.orders_by_client[(spec.symbol, client_id)] = order
        self._open[order.order_id] = order
        return order

    def accept(self, order: Order, now: int) -> None:
        """Announce a new order (``ORDER_TRADE_UPDATE`` x=NEW)."""
        self.emit(
            self.specs[order.symbol],
            events.order_update(self.specs[order.symbol], order, now=now, execution="NEW"),
        )

    def finish(self, order: Order, status: str, now: int, *, reason: str = "0") -> None:
        """End an open order unfilled: CANCELED (by the user) or EXPIRED (by its rules)."""
        if not order.is_open:
            raise known(-2011)
        order.status, order.expiry_reason, order.update_time = status, reason, now
        self._open.pop(order.order_id, None)
        spec = self.specs[order.symbol]
        self.emit(spec, events.order_update(spec, order, now=now, execution=status))
        self.algo_book.order_done(order, now)

    def fill(self, order: Order, price: float, now: int, *, maker: bool) -> None:
        """Fill ``order`` in full at ``price`` (a reduce-only one capped at the position); book, announce."""
        spec = self.specs[order.symbol]
        pos = self.position(order.symbol)
        qty = order.qty
        if order.reduce_only:
            qty = min(qty, self.closing_qty(order.symbol, order.side))
        realized = pos.apply_fill(spec, order.side.sign, qty, price)
        pos.update_time = now
        commission = fee(spec, qty, price, self.config.maker_fee_pct if maker else self.config.fee_pct)
        asset = spec.margin_asset
        self.wallet[asset] = self.wallet.get(asset, 0.0) + realized - commission
        self._trade_id += 1
        quote = notional_in_margin_asset(spec, qty, price)
        order.trade_id, order.status, order.executed, order.avg_price = self._trade_id, "FILLED", qty, price
        self._open.pop(order.order_id, None)
        order.cum_quote, order.maker, order.update_time = quote, maker, now
        order.commission, order.realized = commission, realized
        self.history.record(
            Fill(
                trade_id=self._trade_id,
                order_id=order.order_id,
                symbol=order.symbol,
                contract_type=spec.contract_type,
                side=order.side,
                price=price,
                qty=qty,
                quote=quote,
                commission=commission,
                asset=asset,
                realized=realized,
                maker=maker,
                time=now,
            )
        )
        if spec.contract_type is ContractType.USDT_M:
            self.emit(spec, events.trade_lite(spec, order, now=now, last_qty=qty, last_price=price))
        update = events.order_update(
            spec,
            order,
            now=now,
            execution="TRADE",
            last_qty=qty,
            last_price=price,
            fee=commission,
            realized=realized,
        )
        self.emit(spec, update)
        wallet = self.wallet[asset]
        positions = [(pos, self.unrealized(order.symbol), realized)]
        self.emit(spec, events.account_update(spec, wallet, 0.0, positions, now=now, reason="ORDER"))
        self.algo_book.order_done(order, now)
        self.limits.settle(order.symbol, now)

    def emit(self, spec: InstrumentSpec, payload: dict[str, object]) -> None:
        self.events.append(UserEvent(contract_type=spec.contract_type, payload=payload))

    # --- market --------------------------------------------------------------------------------------

    def set_price(self, symbol: str, price: float) -> None:
        self.marks[symbol] = price

    def on_candle(self, symbol: str, o: float, h: float, lo: float, c: float, *, now: int) -> None:
        """Walk the candle's path: fill resting orders, fire conditional ones, in path order."""
        walk_candle(self, symbol, (o, h, lo, c), now)
        self.marks[symbol] = c
