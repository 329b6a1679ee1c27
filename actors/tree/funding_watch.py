"""The deciding pair actor's funding rate, for V2's funding filter (``domain.funding``).

It is read from ``premiumIndex`` when the actor warms up and again right after the actor decided the first
candle that closes at or after the reading's ``nextFundingTime`` — never between a candle and its decision,
so a decision never waits for REST, and a settlement serves from the candle that opens at it (as the
backtest reads the archive). A failed read keeps the old reading (it turns unknown an hour after its next
settlement, ``funding.STALE_AFTER_MS``) and is retried five candle-minutes later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..domain.funding import FundingReading, funding_rate_for
from ..domain.model import ContractType
from ..exchange.errors import ExchangeError
from ..exchange.parse import MalformedPayload

if TYPE_CHECKING:
    from loguru import Logger

RETRY_AFTER_MS = 5 * 60_000


@runtime_checkable
class FundingSource(Protocol):
    """The REST read a funding watch needs (satisfied by ``BinanceGateway``)."""

    def funding_reading(self, symbol: str, contract: ContractType) -> FundingReading: ...


class FundingWatch:
    """One symbol's latest funding reading (see the module docstring)."""

    def __init__(self, symbol: str, contract: ContractType, source: FundingSource, log: Logger) -> None:
        self._symbol = symbol
        self._contract = contract
        self._source = source
        self._log = log
        self.reading: FundingReading | None = None
        self._next_try_ms = 0

    def rate_for(self, signal_open_time_ms: int) -> float | None:
        """The rate a decision on the candle opened then uses (None: unknown)."""
        return funding_rate_for(self.reading, signal_open_time_ms)

    def refresh(self, now_ms: int) -> None:
        """Read ``premiumIndex`` now (``now_ms``: candle time, for the retry after a failure)."""
        try:
            self.reading = self._source.funding_reading(self._symbol, self._contract)
        except (ExchangeError, MalformedPayload) as exc:
            self._next_try_ms = now_ms + RETRY_AFTER_MS
            self._log.warning(f"{self._symbol}: funding rate not read ({exc}); retried in 5 minutes")

    def due(self, close_time_ms: int) -> bool:
        """Whether ``after_candle`` for a candle closing then reads the exchange (a REST request)."""
        stale = self.reading is None or close_time_ms >= self.reading.next_funding_ms
        return stale and close_time_ms >= self._next_try_ms

    def after_candle(self, close_time_ms: int) -> None:
        """A candle closing then was decided: read again once its close reached the next settlement."""
        if self.due(close_time_ms):
            self.refresh(close_time_ms)
