"""``BinanceGateway``: the bot's only door to Binance Futures REST (USDⓈ-M ``/fapi`` and COIN-M ``/dapi``).

Every method returns domain types (``actors.exchange.types``) or raises an ``ExchangeError`` subclass
that names the recovery (``actors.exchange.errors``). Thread-safe: one python-binance client per
gateway behind a lock; the ``WeightBudget`` (IP weight), the ``OrderBudget`` (the account's new orders) and
the ``ServerClock`` are shared by every gateway of the process on one venue. New orders cost no weight;
stops and closes may use the order budget's reserve.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..domain.fills import InstrumentSpec
from ..domain.model import ContractType, Kline
from .algo_orders import GONE, W_OPEN_ALL, AlgoOrders, pick, qty_text
from .endpoints import Endpoints
from .errors import (
    NO_NEED_MARGIN_TYPE,
    NO_NEED_POSITION_SIDE,
    Rejected,
)
from .instruments import ExchangeInfoError, parse_symbol
from .kline_pages import KlineReader, TransportFetch
from .order_rate import OrderBudget
from .parse import (
    MalformedPayload,
    order_rate_limits,
    parse_account_trade,
    parse_balance,
    parse_order,
    parse_position,
    parse_symbol_settings,
    request_weight_limit,
    rows_of,
)
from .ratelimit import WeightBudget
from .server_clock import ServerClock
from .transport import GatewayCounters, Transport, endpoint, server_time_of, sim_clock_of
from .types import AccountTrade, Balance, OrderResult, PositionInfo, Side, SymbolSettings

_MARGIN_TYPES = frozenset({"ISOLATED", "CROSSED"})
_W_ACCOUNT = 5
"""balance / positionRisk / account weight (USDⓈ-M; COIN-M charges less, we budget the larger)."""


class BinanceGateway(AlgoOrders):
    """REST gateway for one venue and one account (see the module docstring).

    ``clock`` is the venue's ``ServerClock``, shared by all its gateways (a gateway made without one keeps
    its own); signed timestamps follow python-binance's ``time.time()`` plus its offset.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        api_key: str | None,
        api_secret: str | None,
        budget: WeightBudget,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        clock: ServerClock | None = None,
        orders: OrderBudget | None = None,
        bulk: bool = False,
        max_wait_s: float | None = None,
    ) -> None:
        """``bulk``: a gateway for bulk reads (warm-up and backfill klines), held to the budget's bulk share
        so the rest of the minute stays for the reads that keep positions protected; ``max_wait_s``: how
        long a read may wait for weight."""
        self.endpoints = endpoints
        self.budget = budget
        self.clock = clock or ServerClock(tracks_wall_clock=not endpoints.is_local)
        self._t = Transport(
            endpoints,
            api_key=api_key,
            api_secret=api_secret,
            budget=budget,
            recv_window_ms=recv_window_ms,
            timeout_s=timeout_s,
            clock=self.clock,
            orders=orders,
            bulk=bulk,
            max_wait_s=max_wait_s,
        )
        self.orders = self._t.orders
        self._c = self._t.client
        self._klines = KlineReader(
            TransportFetch(self._t, local=endpoints.is_local),
            self.server_time_ms,
            self.known_clock_ms,
            clock_in_answers=endpoints.is_local,
        )

    # --- time, metrics -----------------------------------------------------------------------------

    def sync_time(self) -> int:
        """Measure the venue's clock offset and sign with it from now on; returns the offset in ms."""
        return self._t.sync_time()

    @property
    def time_offset_ms(self) -> int | None:
        return self._t.time_offset_ms

    def counters(self) -> GatewayCounters:
        return self._t.counters()

    def server_time_ms(self, contract: ContractType) -> int:
        """The market's clock (``/fapi|dapi/v1/time``), which decides whether a candle is closed.

        On Binance that is the server time. The local exchange's server time is the wall clock too, but its
        candles close on the replay clock, which it reports in the ``X-SIM-Clock-Ms`` header: read there.
        """
        fn = pick(contract, self._c.futures_time, self._c.futures_coin_time)
        name = endpoint("GET", contract, "time")
        if not self.endpoints.is_local:
            return server_time_of(self._t.call(name, 1, fn))

        def replay_clock() -> Any:
            fn()  # under the transport's lock, so the response read next is this request's
            return self._c.response.headers

        return sim_clock_of(self._t.call(name, 1, replay_clock))

    def known_clock_ms(self) -> int | None:
        """A time the venue's market clock has certainly reached, known without asking (None if unknown);
        a wall-clock venue's clock is synced first if none of its gateways has yet."""
        if self.clock.tracks_wall_clock and self.clock.never_synced():
            self._t.sync_time()
        return self.clock.closed_bound_ms()

    # --- market data -------------------------------------------------------------------------------

    def exchange_info(self, contract: ContractType) -> dict[str, InstrumentSpec]:
        """Specs of every tradable symbol; adopts the REQUEST_WEIGHT limit into the budget.

        Symbols whose filters cannot be parsed are left out (counted as ``ExchangeInfoError``).
        """
        fn = pick(contract, self._c.futures_exchange_info, self._c.futures_coin_exchange_info)
        body = self._t.call(endpoint("GET", contract, "exchangeInfo"), 1, fn)
        if not isinstance(body, dict):
            raise MalformedPayload(f"exchangeInfo: expected a JSON object, got {type(body).__name__}")
        limit = request_weight_limit(body)
        if limit is not None:
            self.budget.set_limit(limit)
        self.orders.set_limits(*order_rate_limits(body))
        specs: dict[str, InstrumentSpec] = {}
        for raw in body.get("symbols", ()):
            try:
                spec = parse_symbol(raw, contract)
            except ExchangeInfoError:
                self._t.count_error("ExchangeInfoError")
                continue
            specs[spec.symbol] = spec
        return specs

    def klines(
        self,
        symbol: str,
        contract: ContractType,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        """One klines request (``limit`` 1..1500); only the closed candles (close time < server time)."""
        return self._klines.klines(symbol, contract, interval, start_ms=start_ms, end_ms=end_ms, limit=limit)

    def closed_klines_range(
        self, symbol: str, contract: ContractType, interval: str, start_open_ms: int, end_open_ms: int
    ) -> list[Kline]:
        """Exactly the closed candles with open time in [start, end], ascending, deduped (gap backfill)."""
        return self._klines.closed_range(symbol, contract, interval, start_open_ms, end_open_ms)

    def recent_closed_klines(
        self, symbol: str, contract: ContractType, interval: str, count: int
    ) -> list[Kline]:
        """The last ``count`` closed candles, ascending (warm-up)."""
        return self._klines.recent_closed(symbol, contract, interval, count)

    # --- account settings ----------------------------------------------------------------------------

    def set_leverage(self, symbol: str, contract: ContractType, leverage: int) -> int:
        """Set the symbol's leverage; returns the leverage the venue reports."""
        fn = pick(contract, self._c.futures_change_leverage, self._c.futures_coin_change_leverage)
        name = endpoint("POST", contract, "leverage")
        body = self._t.call(name, 1, lambda: fn(symbol=symbol, leverage=leverage), signed=True)
        value = body.get("leverage") if isinstance(body, dict) else None
        return int(value) if isinstance(value, int | str) else leverage

    def set_margin_type(self, symbol: str, contract: ContractType, margin_type: str) -> None:
        """``ISOLATED`` or ``CROSSED``; already set (-4046) counts as success."""
        if margin_type not in _MARGIN_TYPES:
            raise ValueError(f"margin_type must be ISOLATED or CROSSED, got {margin_type!r}")
        fn = pick(contract, self._c.futures_change_margin_type, self._c.futures_coin_change_margin_type)
        name = endpoint("POST", contract, "marginType")
        try:
            self._t.call(
                name,
                1,
                lambda: fn(symbol=symbol, marginType=margin_type),
                signed=True,
                expect=frozenset({NO_NEED_MARGIN_TYPE}),
            )
        except Rejected as exc:
            if exc.code != NO_NEED_MARGIN_TYPE:
                raise

    def ensure_one_way(self, contract: ContractType) -> None:
        """Turn hedge mode off (dualSidePosition=false); already one-way (-4059) counts as success."""
        fn = pick(contract, self._c.futures_change_position_mode, self._c.futures_coin_change_position_mode)
        name = endpoint("POST", contract, "positionSide/dual")
        try:
            self._t.call(
                name,
                1,
                lambda: fn(dualSidePosition="false"),
                signed=True,
                expect=frozenset({NO_NEED_POSITION_SIDE}),
            )
        except Rejected as exc:
            if exc.code != NO_NEED_POSITION_SIDE:
                raise

    # --- orders ------------------------------------------------------------------------------------

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
        """A MARKET order with RESULT response (the fill comes back). ``UnknownStatus`` → ``get_order``."""
        params: dict[str, Any] = {
            "symbol": symbol,
            "side": Side(side).value,
            "type": "MARKET",
            "quantity": qty_text(qty),
            "newClientOrderId": client_order_id,
            "newOrderRespType": "RESULT",
        }
        if reduce_only:
            params["reduceOnly"] = "true"
        fn = pick(contract, self._c.futures_create_order, self._c.futures_coin_create_order)
        name = endpoint("POST", contract, "order")
        body = self._t.call(name, 0, lambda: fn(**params), signed=True, placing=True, protective=reduce_only)
        return parse_order(body, contract)

    def get_order(
        self,
        symbol: str,
        contract: ContractType,
        *,
        client_order_id: str | None = None,
        order_id: int | None = None,
    ) -> OrderResult | None:
        """The order with this client id (or exchange id), or None when the venue does not know it."""
        fn = pick(contract, self._c.futures_get_order, self._c.futures_coin_get_order)
        name = endpoint("GET", contract, "order")
        key: dict[str, str | int] = (
            {"origClientOrderId": client_order_id}
            if client_order_id is not None
            else {"orderId": order_id or 0}
        )
        try:
            body = self._t.call(name, 1, lambda: fn(symbol=symbol, **key), signed=True, expect=GONE)
        except Rejected as exc:
            if exc.code in GONE:
                return None
            raise
        return parse_order(body, contract)

    def open_orders(self, contract: ContractType, symbol: str | None = None) -> list[OrderResult]:
        params = {"symbol": symbol} if symbol else {}
        fn = pick(contract, self._c.futures_get_open_orders, self._c.futures_coin_get_open_orders)
        name = endpoint("GET", contract, "openOrders")
        body = self._t.call(name, 1 if symbol else W_OPEN_ALL, lambda: fn(**params), signed=True)
        return [parse_order(row, contract) for row in rows_of(body, "openOrders")]

    # --- account -----------------------------------------------------------------------------------

    def positions(self, contract: ContractType) -> list[PositionInfo]:
        """Non-zero one-way positions."""
        fn = pick(contract, self._c.futures_position_information, self._c.futures_coin_position_information)
        name = endpoint("GET", contract, "positionRisk", 3 if contract is ContractType.USDT_M else 1)
        rows = rows_of(self._t.call(name, _W_ACCOUNT, fn, signed=True), "positionRisk")
        found = [parse_position(r, contract) for r in rows]
        return [p for p in found if p.amount != 0]

    def symbol_settings(self, contract: ContractType) -> dict[str, SymbolSettings]:
        """Margin type and leverage of every symbol of the account, in one read.

        USDⓈ-M: ``GET /fapi/v1/symbolConfig`` (weight 5); COIN-M has no such call, but its ``positionRisk``
        lists every symbol with both (budgeted at the USDⓈ-M account weight, as ``positions`` is).
        """
        coin = contract is ContractType.COIN_M
        path = "positionRisk" if coin else "symbolConfig"
        fn = self._c.futures_coin_position_information if coin else self._c.futures_symbol_config
        rows = rows_of(self._t.call(endpoint("GET", contract, path), _W_ACCOUNT, fn, signed=True), path)
        return {s.symbol: s for s in map(parse_symbol_settings, rows)}

    def balances(self, contract: ContractType) -> dict[str, Balance]:
        """Wallet balance and available balance per asset."""
        fn = pick(contract, self._c.futures_account_balance, self._c.futures_coin_account_balance)
        name = endpoint("GET", contract, "balance", 3 if contract is ContractType.USDT_M else 1)
        rows = rows_of(self._t.call(name, _W_ACCOUNT, fn, signed=True), "balance")
        return {b.asset: b for b in (parse_balance(r) for r in rows)}

    def account_trades(self, symbol: str, contract: ContractType, *, start_ms: int) -> list[AccountTrade]:
        """The account's fills of ``symbol`` from ``start_ms`` on, oldest first (``userTrades``: at most
        1,000, and at most seven days after ``start_ms``). Weight 5 (USDⓈ-M) or 20 (COIN-M, by symbol)."""
        fn = pick(contract, self._c.futures_account_trades, self._c.futures_coin_account_trades)
        name = endpoint("GET", contract, "userTrades")
        weight = 5 if contract is ContractType.USDT_M else 20
        body = self._t.call(
            name, weight, lambda: fn(symbol=symbol, startTime=start_ms, limit=1000), signed=True
        )
        return sorted(map(parse_account_trade, rows_of(body, "userTrades")), key=lambda t: t.time_ms)

    # --- user-data stream keys -------------------------------------------------------------------------

    def create_listen_key(self, contract: ContractType) -> str:
        fn = pick(contract, self._c.futures_stream_get_listen_key, self._c.futures_coin_stream_get_listen_key)
        key = self._t.call(endpoint("POST", contract, "listenKey"), 1, fn)
        if not isinstance(key, str) or not key:
            raise MalformedPayload("listenKey: missing field 'listenKey'")
        return key

    def keepalive_listen_key(self, contract: ContractType, key: str) -> None:
        fn = pick(contract, self._c.futures_stream_keepalive, self._c.futures_coin_stream_keepalive)
        self._t.call(endpoint("PUT", contract, "listenKey"), 1, lambda: fn(listenKey=key))

    def close_listen_key(self, contract: ContractType, key: str) -> None:
        fn = pick(contract, self._c.futures_stream_close, self._c.futures_coin_stream_close)
        self._t.call(endpoint("DELETE", contract, "listenKey"), 1, lambda: fn(listenKey=key))
