"""The V1 strategy: SMA(short) crossing SMA(long) on closed candles, as a pure state machine.

No I/O and no wall clock: every rule runs on candle time, so the backtester, the replay and the live pair
actors reach the same decisions from the same candles.

Rules, in the order they are evaluated (the first failing one names the skip reason):

- A *crossover* happens on the closed candle whose short−long sign is opposite to the last
  non-tie sign. A tie (short == long) is on neither side: it neither starts nor ends a side.
- ``buffer_time_candles`` = N: the new side must hold on the N closed candles after the signal
  candle; the decision is taken at the close of the N-th (entry at that close). A candle off the
  side (or a tie) → ``not_confirmed``.
- ``position_open``: this symbol already has a position.
- ``min_interval``: the previous *taken* signal of this pair is less than ``min_signal_interval_minutes`` of
  candle time before this signal candle.
- ``invalid_stop``: stop = lowest low (LONG) / highest high (SHORT) of the ``pivot_lookback_candles``
  closed candles before the signal candle; no trade when entry is not beyond it (risk ≤ 0).
- ``volume_filter``: the signal candle's volume must be ≥ ratio × SMA(volume) at the signal candle.
- ``volatility_filter``: Bollinger width (upper − lower) at the signal candle, as % of its close,
  must be ≥ min.
- ``max_concurrent``: open positions across all symbols already at ``max_concurrent_trades``.
- Otherwise ``taken`` with take-profit = entry ± risk × ``tp_sl_ratio``, in exact decimal arithmetic
  (``fills.take_profit_level``): candle prices are decimals, and so is the level decided from them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from talipp.indicators import BB, SMA

from .fills import take_profit_level
from .model import Decision, Direction, Kline, Outcome, SkipReason
from .trend import TrendReading

_PURGE_BATCH = 32
"""talipp keeps every value unless purged. Purging copies the list, so it runs in batches; a small batch
keeps every indicator within ``period + 1 + 32`` values from the first candles after warm-up on, so memory
is flat rather than a sawtooth that 1h and 4h actors would take weeks to climb (at 512, 250 actors held
~16 MB more at the top of the tooth than at warm-up). The copy costs well under 0.1 µs per candle."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyParams:
    """The settings one (symbol, timeframe) strategy runs with."""

    short_period: int = 21
    long_period: int = 200
    buffer_candles: int = 0
    min_interval_ms: int = 15 * 60_000
    pivot_lookback: int = 30
    tp_sl_ratio: float = 3.0
    volume_filter: bool = False
    volume_period: int = 20
    volume_ratio: float = 1.5
    volatility_filter: bool = False
    bb_period: int = 20
    bb_std: float = 2.0
    bb_min_width_pct: float = 0.5
    max_concurrent: int | None = None

    def warmup_candles(self) -> int:
        """Closed candles needed before the first crossover can be judged with every rule in force."""
        return max(self.long_period + 1, self.pivot_lookback + 1, self.volume_period, self.bb_period) + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A crossover waiting for (or having reached) its deciding candle, with the signal candle's facts."""

    direction: Direction
    signal_open_time_ms: int
    pivot: float | None
    """Stop level from the lookback candles before the signal candle; None without any history."""
    volume: float
    volume_sma: float | None
    bb_width_pct: float | None


def judge(
    params: StrategyParams,
    cand: Candidate,
    *,
    symbol: str,
    timeframe: str,
    decided_open_time_ms: int,
    entry: float,
    confirmed: bool,
    position_open: bool,
    open_positions: int,
    last_taken_signal_ms: int | None,
) -> Decision:
    """Apply the rules to a crossover at its deciding candle. Shared by the incremental and batch paths."""
    sign = cand.direction.sign
    stop = cand.pivot
    risk = (entry - stop) * sign if stop is not None else 0.0
    take_profit = (
        float(take_profit_level(entry, stop, params.tp_sl_ratio)) if stop is not None and risk > 0 else None
    )
    reason: SkipReason | None = None
    if not confirmed:
        reason = SkipReason.NOT_CONFIRMED
    elif position_open:
        reason = SkipReason.POSITION_OPEN
    elif (
        last_taken_signal_ms is not None
        and cand.signal_open_time_ms - last_taken_signal_ms < params.min_interval_ms
    ):
        reason = SkipReason.MIN_INTERVAL
    elif risk <= 0:
        reason = SkipReason.INVALID_STOP
    elif params.volume_filter and (
        cand.volume_sma is None or cand.volume < params.volume_ratio * cand.volume_sma
    ):
        reason = SkipReason.VOLUME_FILTER
    elif params.volatility_filter and (
        cand.bb_width_pct is None or cand.bb_width_pct < params.bb_min_width_pct
    ):
        reason = SkipReason.VOLATILITY_FILTER
    elif params.max_concurrent is not None and open_positions >= params.max_concurrent:
        reason = SkipReason.MAX_CONCURRENT
    return Decision(
        symbol=symbol,
        timeframe=timeframe,
        signal_open_time_ms=cand.signal_open_time_ms,
        decided_open_time_ms=decided_open_time_ms,
        direction=cand.direction,
        outcome=Outcome.SKIPPED if reason is not None else Outcome.TAKEN,
        reason=reason,
        entry=entry,
        stop_loss=stop,
        take_profit=take_profit,
    )


def bb_width_pct(band: object, close: float) -> float | None:
    """Bollinger width (upper − lower) as % of ``close``, from a talipp ``BBVal`` (None while warming)."""
    lower = getattr(band, "lb", None)
    upper = getattr(band, "ub", None)
    if lower is None or upper is None or close == 0:
        return None
    width: float = (upper - lower) / close * 100.0
    return width


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategySnapshot:
    """A read-only view of the state machine for the inspection shell."""

    candles: int
    last_open_time_ms: int | None
    sma_short: float | None
    sma_long: float | None
    side: int
    pending: Candidate | None
    pending_remaining: int
    last_taken_signal_ms: int | None
    last_decision: Decision | None
    recent: tuple[Kline, ...]
    kind: str = "v1"
    """Which strategy: ``v1`` (``sma_short``/``sma_long`` are its SMAs) or ``v2`` (see ``indicators``)."""
    indicators: tuple[tuple[str, float | None], ...] = ()
    """V2's indicator values by name (EMAs, ATR, StochRSI %K, trends), for the inspection shell."""


class PairStrategy:
    """Incremental V1 strategy for one (symbol, timeframe); memory stays bounded forever."""

    def __init__(self, symbol: str, timeframe: str, params: StrategyParams, *, keep_recent: int = 5) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.params = params
        self._short = SMA(params.short_period)
        self._long = SMA(params.long_period)
        self._volume = SMA(params.volume_period) if params.volume_filter else None
        self._bands = BB(params.bb_period, params.bb_std) if params.volatility_filter else None
        self._lows: deque[float] = deque(maxlen=params.pivot_lookback + 1)
        self._highs: deque[float] = deque(maxlen=params.pivot_lookback + 1)
        self._recent: deque[Kline] = deque(maxlen=keep_recent)
        self._side = 0
        self._pending: Candidate | None = None
        self._remaining = 0
        self._last_taken: int | None = None
        self._last_open: int | None = None
        self._last_decision: Decision | None = None
        self._candles = 0
        self._due: tuple[Kline, Candidate, bool] | None = None
        """The decision ``observe`` settled: (deciding candle, crossover, confirmed), for ``decide``."""

    @property
    def last_open_time_ms(self) -> int | None:
        """Open time of the newest candle fed; older or equal candles are ignored (dedupe)."""
        return self._last_open

    def on_closed_kline(self, kline: Kline, *, position_open: bool, open_positions: int) -> Decision | None:
        """Feed one closed candle; returns the decision settled by it, if any (``observe`` then ``decide``).

        ``position_open``/``open_positions``: the portfolio after every fill up to this candle's close.
        """
        self.observe(kline)
        return self.decide(position_open=position_open, open_positions=open_positions)

    def observe(self, kline: Kline) -> Direction | None:
        """Feed one closed candle to the indicators; the direction of the crossover it is, if it is one.

        A decision it settles (a crossover, or a pending one confirmed or broken) waits for ``decide``.
        """
        self._due = None
        if self._last_open is not None and kline.open_time_ms <= self._last_open:
            return None
        self._last_open = kline.open_time_ms
        self._candles += 1
        self._recent.append(kline)
        self._lows.append(kline.low)
        self._highs.append(kline.high)
        self._short.add(kline.close)
        self._long.add(kline.close)
        if self._volume is not None:
            self._volume.add(kline.volume)
        if self._bands is not None:
            self._bands.add(kline.close)
        self._purge()
        side = self._current_side()
        if self._pending is not None:
            if side != self._pending.direction.sign:
                self._due = (kline, self._pending, False)
                self._pending = None
            else:
                self._remaining -= 1
                if self._remaining == 0:
                    self._due = (kline, self._pending, True)
                    self._pending = None
        crossover = None
        if side != 0:
            if self._side not in (0, side):
                crossover = Direction.LONG if side > 0 else Direction.SHORT
                self._pending = self._candidate(kline, crossover)
                self._remaining = self.params.buffer_candles
                if self._remaining == 0:
                    self._due = (kline, self._pending, True)
                    self._pending = None
            self._side = side
        return crossover

    def decide(
        self, *, position_open: bool, open_positions: int, funding: float | None = None
    ) -> Decision | None:
        """The decision the last ``observe``d candle settles, if any, on the portfolio after its exits.

        ``funding`` is ignored (V1 has no funding filter); it is part of the interface both strategies share.
        """
        del funding
        due, self._due = self._due, None
        if due is None:
            return None
        kline, cand, confirmed = due
        decision = judge(
            self.params,
            cand,
            symbol=self.symbol,
            timeframe=self.timeframe,
            decided_open_time_ms=kline.open_time_ms,
            entry=kline.close,
            confirmed=confirmed,
            position_open=position_open,
            open_positions=open_positions,
            last_taken_signal_ms=self._last_taken,
        )
        if decision.taken:
            self._last_taken = cand.signal_open_time_ms
        self._last_decision = decision
        return decision

    def on_trend(self, reading: TrendReading) -> None:
        """V1 uses no higher-timeframe trend: readings are ignored."""
        del reading

    def _current_side(self) -> int:
        short, long = self._short[-1], self._long[-1]
        if short is None or long is None or short == long:
            return 0
        return 1 if short > long else -1

    def _candidate(self, kline: Kline, direction: Direction) -> Candidate:
        window = list(self._lows if direction is Direction.LONG else self._highs)[:-1]
        pivot = (min(window) if direction is Direction.LONG else max(window)) if window else None
        volume_sma = self._volume[-1] if self._volume is not None else None
        width = bb_width_pct(self._bands[-1], kline.close) if self._bands is not None else None
        return Candidate(
            direction=direction,
            signal_open_time_ms=kline.open_time_ms,
            pivot=pivot,
            volume=kline.volume,
            volume_sma=volume_sma,
            bb_width_pct=width,
        )

    def record_rejection(self, decision: Decision) -> None:
        """The executor refused a taken decision (e.g. max_concurrent raced): forget it as the last taken."""
        if self._last_taken == decision.signal_open_time_ms:
            self._last_taken = None

    def _purge(self) -> None:
        for indicator, period in (
            (self._short, self.params.short_period),
            (self._long, self.params.long_period),
            (self._volume, self.params.volume_period),
            (self._bands, self.params.bb_period),
        ):
            # keep period+1 inputs: talipp's SMA switches to its first-value formula below that.
            if indicator is not None and len(indicator.input_values) > period + 1 + _PURGE_BATCH:
                indicator.purge_oldest(len(indicator.input_values) - (period + 1))

    def snapshot(self) -> StrategySnapshot:
        """Current state for inspection (cheap; copies only small bounded buffers)."""
        return StrategySnapshot(
            candles=self._candles,
            last_open_time_ms=self._last_open,
            sma_short=self._short[-1] if len(self._short) else None,
            sma_long=self._long[-1] if len(self._long) else None,
            side=self._side,
            pending=self._pending,
            pending_remaining=self._remaining,
            last_taken_signal_ms=self._last_taken,
            last_decision=self._last_decision,
            recent=tuple(self._recent),
        )
