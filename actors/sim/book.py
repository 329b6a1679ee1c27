"""The matching engine: balances, one-way positions, market orders and algo (conditional) orders.

Pure Python, no I/O and no clock of its own: the replay hands it prices and candles, REST hands it
orders, and it appends Binance-shaped user-data payloads to ``events`` for the streams to deliver.
Fill rules come from ``actors/domain/fills.py`` so replayed exits equal the backtester's: a market order
fills at the current price moved by the slippage; conditional orders trigger on ``candle_path`` (adverse
extreme first) via ``first_trigger`` and fill at the trigger (or at the gap price) with the same slippage.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ..domain.fills import (
    InstrumentSpec,
    candle_path,
    fee,
    first_trigger,
    initial_margin,
    market_fill_price,
    notional_in_margin_asset,
    pnl,
)
from ..domain.model import ContractType, Direction
from . import wire
from .config import SimConfig
from .errors import SimError, known
from .orders import AlgoOrder, Order, Position, Side, UserEvent, direction_of

_FIRST_ORDER_ID = 4_000_000_000
_FIRST_ALGO_ID = 1_000_000


class Book:
    """All accounts of the one simulated user (USDⓈ-M and COIN-M wallets share this book)."""

    def __init__(
        self, specs: Mapping[str, InstrumentSpec], prices: Mapping[str, float], config: SimConfig
    ) -> None:
        self.specs = dict(specs)
        self.marks: dict[str, float] = dict(prices)
        """Current price per tradeable (replayed) symbol."""
        self.config = config
        self.wallet: dict[str, float] = {a: float(b) for a, b in config.balances.items()}
        self.positions: dict[str, Position] = {}
        self.orders: dict[int, Order] = {}
        self.orders_by_client: dict[tuple[str, str], Order] = {}
        self.algos: dict[int, AlgoOrder] = {}
        self.algos_by_client: dict[str, AlgoOrder] = {}
        self.events: list[UserEvent] = []
        self._order_id = _FIRST_ORDER_ID
        self._algo_id = _FIRST_ALGO_ID
        self._trade_id = 1

    # --- lookups -------------------------------------------------------------------------------------

    def spec(self, symbol: str) -> InstrumentSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise known(-1121)
        return spec

    def tradeable(self, symbol: str) -> InstrumentSpec:
        spec = self.spec(symbol)
        if symbol not in self.marks:
            raise SimError(-1121, "Invalid symbol.")  # listed but not replayed: nothing to trade against
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
        locked = 0.0
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

    def find_algo(self, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder | None:
        if algo_id is not None:
            return self.algos.get(algo_id)
        return self.algos_by_client.get(client_algo_id or "")

    def open_algos(self, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self.algos.values() if a.status == "NEW" and symbol in {None, a.symbol}]

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
        if pos.amount or any(a.symbol == symbol for a in self.open_algos()):
            raise SimError(-4048, "Margin type cannot be changed if there exists position.")
        pos.isolated = isolated

    # --- orders --------------------------------------------------------------------------------------

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
        pos = self.position(symbol)
        closing = min(qty, abs(pos.amount)) if pos.amount * side.sign < 0 else Decimal(0)
        if reduce_only:
            if not closing:
                raise known(-2022)
            qty = closing
        opening = qty - closing
        notional = Decimal(repr(self.marks[symbol])) * qty
        if spec.contract_type is ContractType.USDT_M and not reduce_only and notional < spec.min_notional:
            floor = f"{spec.min_notional.normalize():f}"
            raise SimError(
                -4164, f"Order's notional must be no smaller than {floor} (unless you choose reduce only)."
            )
        if opening:
            need = initial_margin(spec, opening, price, pos.leverage) + fee(
                spec, qty, price, self.config.fee_pct
            )
            if need > self.available(spec.margin_asset):
                raise known(-2019)
        order = self._new_order(
            spec, symbol=symbol, side=side, qty=qty, reduce_only=reduce_only, client_id=client_id, now=now
        )
        snapshot = Order(**{f: getattr(order, f) for f in Order.__slots__})
        self._fill(spec, order, price, now)
        return snapshot, order

    def place_algo(
        self,
        *,
        symbol: str,
        side: Side,
        order_type: str,
        qty: Decimal,
        trigger: Decimal,
        reduce_only: bool,
        close_position: bool,
        client_algo_id: str,
        working_type: str,
        time_in_force: str,
        price_protect: bool,
        now: int,
    ) -> AlgoOrder:
        spec = self.tradeable(symbol)
        existing = self.algos_by_client.get(client_algo_id)
        if existing is not None:
            raise known(-4116)
        mark = self.marks[symbol]
        stop = order_type == "STOP_MARKET"
        # A BUY stop fires on a rise and a BUY take-profit on a fall (and the reverse for SELL).
        rises = (side is Side.BUY) == stop
        if (rises and float(trigger) <= mark) or (not rises and float(trigger) >= mark):
            raise known(-2021)
        self._algo_id += 1
        algo = AlgoOrder(
            algo_id=self._algo_id,
            client_algo_id=client_algo_id,
            symbol=symbol,
            contract_type=spec.contract_type,
            side=side,
            order_type=order_type,
            qty=qty,
            trigger=trigger,
            reduce_only=reduce_only,
            close_position=close_position,
            working_type=working_type,
            time_in_force=time_in_force,
            price_protect=price_protect,
            create_time=now,
            update_time=now,
        )
        self.algos[algo.algo_id] = algo
        self.algos_by_client[client_algo_id] = algo
        self._emit(spec, wire.algo_update(spec, algo, now=now))
        return algo

    def cancel_algo(self, algo: AlgoOrder, now: int) -> AlgoOrder:
        if algo.status != "NEW":
            raise known(-2011)
        algo.status = "CANCELED"
        algo.update_time = now
        spec = self.specs[algo.symbol]
        self._emit(spec, wire.algo_update(spec, algo, now=now))
        return algo

    # --- market --------------------------------------------------------------------------------------

    def set_price(self, symbol: str, price: float) -> None:
        self.marks[symbol] = price

    def on_candle(self, symbol: str, o: float, h: float, lo: float, c: float, *, now: int) -> None:
        """Walk the candle's path and fire the conditional orders it reaches, in path order."""
        algos = self.open_algos(symbol)
        if algos:
            pos = self.positions.get(symbol)
            path = candle_path(o, h, lo, c, direction_of(pos.amount) if pos else None)
            hits: list[tuple[int, int, int, float, AlgoOrder]] = []
            for algo in algos:
                protects = Direction.LONG if algo.side is Side.SELL else Direction.SHORT
                level = float(algo.trigger)
                for k in range(1, len(path) + 1):
                    hit = first_trigger(
                        path[:k],
                        direction=protects,
                        stop=level if algo.is_stop else None,
                        take_profit=None if algo.is_stop else level,
                    )
                    if hit is not None:
                        hits.append((k, 0 if algo.is_stop else 1, algo.algo_id, hit[1], algo))
                        break
            for _, _, _, price, algo in sorted(hits, key=lambda x: x[:3]):
                if algo.status == "NEW":
                    self._trigger(algo, price, now)
        self.marks[symbol] = c

    # --- internals -----------------------------------------------------------------------------------

    def _emit(self, spec: InstrumentSpec, payload: dict[str, object]) -> None:
        self.events.append(UserEvent(contract_type=spec.contract_type, payload=payload))

    def _new_order(
        self,
        spec: InstrumentSpec,
        *,
        symbol: str,
        side: Side,
        qty: Decimal,
        reduce_only: bool,
        client_id: str,
        now: int,
    ) -> Order:
        self._order_id += 1
        order = Order(
            order_id=self._order_id,
            client_id=client_id,
            symbol=symbol,
            contract_type=spec.contract_type,
            side=side,
            qty=qty,
            reduce_only=reduce_only,
            time=now,
            update_time=now,
        )
        self.orders[order.order_id] = order
        self.orders_by_client[(symbol, client_id)] = order
        return order

    def _trigger(self, algo: AlgoOrder, level: float, now: int) -> None:
        spec = self.specs[algo.symbol]
        pos = self.position(algo.symbol)
        algo.trigger_time = algo.update_time = now
        closes = pos.amount * algo.side.sign < 0
        if (algo.reduce_only or algo.close_position) and not closes:
            algo.status = "EXPIRED"
            algo.reject_reason = "Reduce Only reject"
            self._emit(spec, wire.algo_update(spec, algo, now=now))
            return
        qty = abs(pos.amount) if algo.close_position else algo.qty
        if algo.reduce_only:
            qty = min(qty, abs(pos.amount))
        price = market_fill_price(
            level, buy=algo.side is Side.BUY, slippage_pct=self.config.slippage_pct, tick=spec.tick_size
        )
        algo.status = "TRIGGERED"
        client_id = (
            algo.client_algo_id
            if (algo.symbol, algo.client_algo_id) not in self.orders_by_client
            else f"{algo.client_algo_id}-{algo.algo_id}"
        )
        order = self._new_order(
            spec,
            symbol=algo.symbol,
            side=algo.side,
            qty=qty,
            reduce_only=algo.reduce_only or algo.close_position,
            client_id=client_id,
            now=now,
        )
        order.orig_type = algo.order_type
        order.stop_price = f"{algo.trigger}"
        order.close_position = algo.close_position
        algo.actual_order_id = order.order_id
        self._emit(spec, wire.algo_update(spec, algo, now=now))
        self._fill(spec, order, price, now)
        algo.status = "FINISHED"
        algo.executed = order.executed
        algo.avg_price = order.avg_price
        self._emit(spec, wire.algo_update(spec, algo, now=now))

    def _fill(self, spec: InstrumentSpec, order: Order, price: float, now: int) -> None:
        self._emit(spec, wire.order_update(spec, order, now=now, execution="NEW"))
        pos = self.position(order.symbol)
        qty = order.qty
        realized = pos.apply_fill(spec, order.side.sign, qty, price)
        pos.update_time = now
        commission = fee(spec, qty, price, self.config.fee_pct)
        asset = spec.margin_asset
        self.wallet[asset] = self.wallet.get(asset, 0.0) + realized - commission
        self._trade_id += 1
        order.trade_id = self._trade_id
        order.status = "FILLED"
        order.executed = qty
        order.avg_price = price
        order.cum_quote = (
            notional_in_margin_asset(spec, qty, price)
            if spec.contract_type is ContractType.COIN_M
            else float(qty) * price
        )
        order.commission, order.realized, order.update_time = commission, realized, now
        self._emit(spec, wire.trade_lite(spec, order, now=now, last_qty=qty, last_price=price))
        self._emit(
            spec,
            wire.order_update(
                spec,
                order,
                now=now,
                execution="TRADE",
                last_qty=qty,
                last_price=price,
                fee=commission,
                realized=realized,
            ),
        )
        wallet = self.wallet[asset]
        self._emit(
            spec,
            wire.account_update(
                asset,
                wallet,
                wallet,
                0.0,
                [(spec, pos, self.unrealized(order.symbol), realized)],
                now=now,
                reason="ORDER",
            ),
        )
