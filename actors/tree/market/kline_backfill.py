"""The REST side of a ``MarketStream``'s gap repair: the server's time, and the closed candles of a gap.

The server's time comes from the venue's tracked clock when it has one (no request); a lower bound of it,
which at worst makes a repair ask for a candle the stream then delivers anyway.

Each call gets a few quick retries, then gives up with None (logged, and counted on the board as a backfill
failure); the stream then leaves the gap for the next candle to show. Bounded on purpose: the actor blocks
while it waits, and other pairs' held candles wait behind it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from ...domain.kline_sequencer import OpenRange
from ...domain.model import ContractType, Kline
from .market_stream_board import MarketStreamBoard

if TYPE_CHECKING:
    from loguru import Logger

T = TypeVar("T")


class KlineGateway(Protocol):
    """What the stream needs of ``actors.exchange.gateway.BinanceGateway``."""

    def closed_klines_range(
        self, symbol: str, contract: ContractType, interval: str, start_open_ms: int, end_open_ms: int
    ) -> list[Kline]: ...

    def server_time_ms(self, contract: ContractType) -> int: ...

    def known_clock_ms(self) -> int | None:
        """A time the venue's market clock has certainly reached, known without a request (or None)."""
        ...


class KlineBackfill:
    """One market's REST calls for its stream, with bounded retries (see the module docstring)."""

    def __init__(
        self,
        *,
        gateway: KlineGateway,
        contract: ContractType,
        attempts: int,
        board: MarketStreamBoard,
        name: str,
        log: Logger,
    ) -> None:
        self._gateway = gateway
        self._contract = contract
        self._attempts = attempts
        self._board = board
        self._name = name
        self._log = log

    def server_time_ms(self, *, fresh: bool = False) -> int | None:
        """The venue's market clock: tracked when it can be (no request), else asked; ``fresh``: always
        asked (after a reconnect, a local exchange's clock last seen before the drop is too early: a candle
        that closed meanwhile would be left to a stream that, in a lock-step replay, never moves on)."""
        known = None if fresh else self._gateway.known_clock_ms()
        if known is not None:
            return known
        return self._rest("server time", lambda: self._gateway.server_time_ms(self._contract))

    def fetch(self, missing: OpenRange) -> list[Kline] | None:
        """The closed candles of ``missing`` the exchange has (it may lack some), oldest first."""
        return self._rest(
            f"backfill {missing.symbol} {missing.timeframe} [{missing.start_ms}, {missing.end_ms}]",
            lambda: self._gateway.closed_klines_range(
                missing.symbol, self._contract, missing.timeframe, missing.start_ms, missing.end_ms
            ),
        )

    def _rest(self, what: str, call: Callable[[], T]) -> T | None:
        """A REST call with a few quick retries; None (logged, counted) when it keeps failing."""
        for attempt in range(self._attempts):
            try:
                return call()
            except Exception as exc:
                self._log.warning(
                    f"{self._name}: {what} failed (attempt {attempt + 1}): {type(exc).__name__}: {exc}"
                )
                if attempt + 1 < self._attempts:
                    time.sleep(0.1 * 3**attempt)
        self._board.backfill_failures += 1
        return None
