"""The read side of a ``MarketStream``: what metrics, the shell and PnL read from any thread.

``PriceBoard`` holds the latest streamed price per symbol (unclosed and closed kline updates alike) and when
it arrived, for unrealized PnL and price staleness. ``MarketStreamBoard`` is one market's status: its
connections, frame counts, the sequencer's counts and unrepaired gaps, the tell latency and the candle
hand-offs; its ``snapshot()`` is a ``MarketStreamStatus``. The actor writes them; readers never ask its
mailbox.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ...domain.kline_sequencer import Key, KlineSequencer, OpenRange, SequencerStats
from ...domain.model import ContractType
from ...exchange.shard_connection import ConnectionStatus
from ...exchange.ws import MarketConnections, WsStatus


@dataclass(frozen=True, slots=True)
class PriceTick:
    price: float
    received_ns: int
    """``time.perf_counter_ns()`` at arrival: ``(perf_counter_ns() - received_ns) / 1e9`` is its age."""


class PriceBoard:
    """Latest streamed price per symbol (from unclosed and closed kline updates), for PnL and staleness."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ticks: dict[str, PriceTick] = {}

    def update(self, symbol: str, price: float, received_ns: int) -> None:
        tick = PriceTick(price, received_ns)
        with self._lock:
            self._ticks[symbol] = tick

    def get(self, symbol: str) -> PriceTick | None:
        with self._lock:
            return self._ticks.get(symbol)

    def age_s(self, symbol: str) -> float | None:
        tick = self.get(symbol)
        return None if tick is None else (time.perf_counter_ns() - tick.received_ns) / 1e9

    def snapshot(self) -> Mapping[str, PriceTick]:
        with self._lock:
            return MappingProxyType(dict(self._ticks))


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketStreamStatus:
    """Snapshot for metrics and the shell."""

    contract: ContractType
    connections: tuple[ConnectionStatus, ...]
    streams: int
    messages: Mapping[str, int]
    """Frames by type: ``kline_closed``, ``kline_update``, ``reply``, ``other``, ``malformed``."""
    reconnects: int
    restarts: Mapping[str, int]
    sequencer: SequencerStats
    backfill_failures: int
    unrepaired: Mapping[Key, tuple[OpenRange, ...]]
    last_message_age_s: float | None
    tell_latency_us: tuple[float, float] | None
    """p50 and p99 of frame read → ``router.tell`` over the last closed klines (streamed ones only)."""
    held_keys: int = 0
    """(symbol, timeframe) keys whose candles wait behind a REST repair in the actor right now."""
    handoffs: int = 0
    """Streamed closed candles the reader waited on until their pair had finished them."""
    handoffs_here: int = 0
    """Of those, the ones the reader decided itself, on its own thread, their pair being idle."""
    handoff_timeouts: int = 0
    """Of those, the ones it stopped waiting for after ``supervisor.candle_handoff_ms``."""
    handoff_wait_s: float = 0.0
    """Time the reader spent waiting on those hand-offs (frames read meanwhile wait in the socket)."""
    candles_held_back: int = 0
    """Indicator-only closed candles told after their close's deciding candles (``deciding_first``)."""


_EMPTY_WS = WsStatus(
    connections=(), klines_closed=0, kline_updates=0, replies=0, other=0, malformed=0, restarts={}
)


class MarketStreamBoard:
    """Read side of one ``MarketStream``, safe from any thread; create it and pass it to the actor."""

    def __init__(self, contract: ContractType, prices: PriceBoard | None = None) -> None:
        self.contract = contract
        self.prices = prices or PriceBoard()
        self.latencies_ns: deque[int] = deque(maxlen=4096)
        self.backfill_failures = 0
        self.handoffs = 0
        """Streamed closed candles the reader waited on until their pair had finished them (or gave up)."""
        self.handoffs_here = 0
        """Of those, the ones it decided on its own thread (``Actor.run_here``): no thread switch at all."""
        self.handoff_timeouts = 0
        """Of those, the ones whose pair had not finished within ``handoff_ms`` (slow, restarting, dead)."""
        self.handoff_wait_ns = 0
        """Time the reader spent in those waits."""
        self.candles_held_back = 0
        """Indicator-only closed candles held back until their close's deciding candles were told."""
        self._ws: MarketConnections | None = None
        self._sequencer = KlineSequencer()
        self._held: Mapping[Key, int] = {}

    def attach(self, ws: MarketConnections, sequencer: KlineSequencer, held: Mapping[Key, int]) -> None:
        self._ws, self._sequencer, self._held = ws, sequencer, held

    def has_unrepaired_gap(self, symbol: str, timeframe: str) -> bool:
        return bool(self._sequencer.unrepaired(symbol, timeframe))

    def snapshot(self) -> MarketStreamStatus:
        ws = self._ws.status() if self._ws is not None else _EMPTY_WS
        ages = [c.last_frame_age_s for c in ws.connections if c.last_frame_age_s is not None]
        lat = sorted(self.latencies_ns)
        return MarketStreamStatus(
            contract=self.contract,
            connections=ws.connections,
            streams=sum(c.streams for c in ws.connections),
            messages=MappingProxyType(
                {
                    "kline_closed": ws.klines_closed,
                    "kline_update": ws.kline_updates,
                    "reply": ws.replies,
                    "other": ws.other,
                    "malformed": ws.malformed,
                }
            ),
            reconnects=sum(c.reconnects for c in ws.connections),
            restarts=MappingProxyType(dict(ws.restarts)),
            sequencer=self._sequencer.stats(),
            backfill_failures=self.backfill_failures,
            unrepaired=self._sequencer.all_unrepaired(),
            last_message_age_s=min(ages) if ages else None,
            tell_latency_us=(lat[len(lat) // 2] / 1e3, lat[min(len(lat) - 1, len(lat) * 99 // 100)] / 1e3)
            if lat
            else None,
            held_keys=len(self._held),
            handoffs=self.handoffs,
            handoffs_here=self.handoffs_here,
            handoff_timeouts=self.handoff_timeouts,
            handoff_wait_s=self.handoff_wait_ns / 1e9,
            candles_held_back=self.candles_held_back,
        )
