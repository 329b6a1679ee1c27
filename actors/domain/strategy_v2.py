"""The V2 strategy: EMA crossover on the signal timeframe, confirmed by higher-timeframe trends, as a pure
state machine.

Indicators are talipp's (EMA fast/slow and ATR on the signal candles, StochRSI on their closes), purged to
the minimum that keeps every value (``trend.purge``). A *crossover* is the closed candle whose sign of
EMA(fast) − EMA(slow) is opposite to the last non-tie sign (a tie is on neither side); it is judged on its
own close, with no confirmation buffer. The first failing check names the skip reason (``judge_v2``):

1. ``warmup``: ATR, or (StochRSI on) its %K, not yet defined at the signal candle;
2. ``position_open``: the symbol holds a position (after this candle's exits, so a reversal can flip);
3. ``min_interval``: the previous *taken* signal less than ``min_signal_interval_minutes`` earlier;
4. ``trend_stale`` when a trend timeframe's reading for the signal candle (``trend.trend_boundary``) is
   missing or warming; then ``trend_filter`` when one of them is not the crossover's side (0 agrees with
   neither);
5. ``btc_stale`` / ``btc_filter``: the same on the BTC reference symbol's trend (not for that symbol itself);
6. ``stoch_rsi_filter``: a LONG with %K ≥ overbought, a SHORT with %K ≤ oversold;
7. ``funding_unknown`` / ``funding_filter``: no usable funding rate, or |rate| > ``max_funding_rate``;
8. ``invalid_stop``: risk ≤ 0;
9. ``max_concurrent``: open positions across symbols already at the limit.

Levels (``v2_levels``; floats in this order): entry = the signal candle's close; ``atr`` stop mode: risk =
``sl_atr × ATR``, stop = entry ∓ risk; ``pivot`` mode: stop = lowest low (LONG) / highest high (SHORT) of the
``pivot_lookback`` candles before the signal candle, risk = (entry − stop) × side; take-profit = entry ±
``tp_atr × ATR``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from enum import StrEnum

from talipp.indicators import ATR, EMA, StochRSI
from talipp.ohlcv import OHLCV

from .model import Decision, Direction, Kline, Outcome, SkipReason
from .strategy import StrategySnapshot
from .trend import TrendReading, min_retained_ema, min_retained_stoch_rsi, purge

_BTC = "btc"
"""Where the BTC reference's readings are kept among the trend readings."""


class StopMode(StrEnum):
    """Where V2 puts the stop-loss."""

    ATR = "atr"
    PIVOT = "pivot"


@dataclass(frozen=True, slots=True, kw_only=True)
class BtcFilter:
    """Trade an altcoin only when the reference symbol's trend on ``timeframe`` agrees."""

    symbol: str = "BTCUSDT"
    timeframe: str = "15m"
    ema_period: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class V2Params:
    """The settings one V2 pair runs with."""

    ema_fast: int = 9
    ema_slow: int = 21
    trend_timeframes: tuple[str, ...] = ("15m", "1h")
    trend_ema: int = 50
    stoch_rsi: bool = True
    rsi_period: int = 14
    stoch_period: int = 14
    k_smoothing: int = 3
    d_smoothing: int = 3
    overbought: float = 80.0
    oversold: float = 20.0
    atr_period: int = 14
    stop_mode: StopMode = StopMode.ATR
    sl_atr: float = 1.5
    tp_atr: float = 3.0
    pivot_lookback: int = 30
    min_interval_ms: int = 15 * 60_000
    max_concurrent: int | None = None
    btc_filter: BtcFilter | None = None
    max_funding_rate: float | None = None
    """Skip when |funding rate| exceeds this fraction per interval (0.001 = 0.1 %); None: no filter."""

    def warmup_candles(self) -> int:
        """Signal candles needed before every indicator of the signal timeframe is defined."""
        stoch = self.rsi_period + self.stoch_period + self.k_smoothing if self.stoch_rsi else 0
        return max(self.ema_slow, self.atr_period, stoch, self.pivot_lookback + 1) + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class V2Facts:
    """Everything ``judge_v2`` reads about one crossover; both backtest engines and the actor build it."""

    direction: Direction
    signal_open_time_ms: int
    entry: float
    atr: float | None
    stoch_k: float | None
    pivot: float | None
    trends: tuple[int | None, ...]
    """One per trend timeframe, in configured order; None = unknown (missing or warming)."""
    btc_trend: int | None
    """None = unknown (or no BTC filter)."""
    funding: float | None
    """None = unknown (or no funding filter)."""


def v2_levels(params: V2Params, f: V2Facts) -> tuple[float | None, float | None, float]:
    """(stop, take-profit, risk) from the facts (module docstring); None where ATR or the pivot is missing."""
    sign = f.direction.sign
    if params.stop_mode is StopMode.ATR:
        if f.atr is None:
            return None, None, 0.0
        risk = params.sl_atr * f.atr
        stop: float | None = f.entry - risk if sign > 0 else f.entry + risk
    else:
        stop = f.pivot
        risk = (f.entry - stop) * sign if stop is not None else 0.0
    if f.atr is None:
        return stop, None, risk
    reward = params.tp_atr * f.atr
    return stop, (f.entry + reward if sign > 0 else f.entry - reward), risk


def judge_v2(
    params: V2Params,
    f: V2Facts,
    *,
    symbol: str,
    timeframe: str,
    position_open: bool,
    open_positions: int,
    last_taken_signal_ms: int | None,
) -> Decision:
    """Apply the V2 checks in order (module docstring). Shared by the actor and both backtest engines."""
    stop, take_profit, risk = v2_levels(params, f)
    reason = _skip_reason(
        params,
        f,
        symbol=symbol,
        levels_ok=risk > 0 and stop is not None and take_profit is not None,
        position_open=position_open,
        open_positions=open_positions,
        last_taken_signal_ms=last_taken_signal_ms,
    )
    return Decision(
        symbol=symbol,
        timeframe=timeframe,
        signal_open_time_ms=f.signal_open_time_ms,
        decided_open_time_ms=f.signal_open_time_ms,
        direction=f.direction,
        outcome=Outcome.SKIPPED if reason is not None else Outcome.TAKEN,
        reason=reason,
        entry=f.entry,
        stop_loss=stop,
        take_profit=take_profit,
    )


def _skip_reason(
    params: V2Params,
    f: V2Facts,
    *,
    symbol: str,
    levels_ok: bool,
    position_open: bool,
    open_positions: int,
    last_taken_signal_ms: int | None,
) -> SkipReason | None:
    """The first failing check, in the module docstring's order (None: taken)."""
    sign = f.direction.sign
    k = f.stoch_k
    if f.atr is None or (params.stoch_rsi and k is None):
        return SkipReason.WARMUP
    if position_open:
        return SkipReason.POSITION_OPEN
    if (
        last_taken_signal_ms is not None
        and f.signal_open_time_ms - last_taken_signal_ms < params.min_interval_ms
    ):
        return SkipReason.MIN_INTERVAL
    if None in f.trends:
        return SkipReason.TREND_STALE
    if any(t != sign for t in f.trends):
        return SkipReason.TREND_FILTER
    if params.btc_filter is not None and params.btc_filter.symbol != symbol:
        if f.btc_trend is None:
            return SkipReason.BTC_STALE
        if f.btc_trend != sign:
            return SkipReason.BTC_FILTER
    if params.stoch_rsi and k is not None and (k >= params.overbought if sign > 0 else k <= params.oversold):
        return SkipReason.STOCH_RSI_FILTER
    limit = params.max_funding_rate
    if limit is not None:
        if f.funding is None:
            return SkipReason.FUNDING_UNKNOWN
        if abs(f.funding) > limit:
            return SkipReason.FUNDING_FILTER
    if not levels_ok:
        return SkipReason.INVALID_STOP
    if params.max_concurrent is not None and open_positions >= params.max_concurrent:
        return SkipReason.MAX_CONCURRENT
    return None


class V2Strategy:
    """Incremental V2 for one (symbol, signal timeframe); memory stays bounded forever.

    Trend readings arrive from the trend timeframes' actors (and BTC's) through ``on_trend``; the latest one
    per timeframe is kept and used when current (``TrendReading.current_for``).
    """

    def __init__(self, symbol: str, timeframe: str, params: V2Params, *, keep_recent: int = 5) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.params = params
        self._fast = EMA(params.ema_fast)
        self._slow = EMA(params.ema_slow)
        self._atr = ATR(params.atr_period)
        p = params
        self._stoch = (
            StochRSI(p.rsi_period, p.stoch_period, p.k_smoothing, p.d_smoothing) if p.stoch_rsi else None
        )
        self._keep = (
            (self._fast, min_retained_ema(p.ema_fast)),
            (self._slow, min_retained_ema(p.ema_slow)),
            (self._atr, min_retained_ema(p.atr_period)),
            (self._stoch, min_retained_stoch_rsi(p.rsi_period, p.stoch_period, p.k_smoothing, p.d_smoothing)),
        )
        self._lows: deque[float] = deque(maxlen=params.pivot_lookback + 1)
        self._highs: deque[float] = deque(maxlen=params.pivot_lookback + 1)
        self._recent: deque[Kline] = deque(maxlen=keep_recent)
        self._trends: dict[str, tuple[TrendReading, ...]] = {}
        """The two latest readings per trend timeframe, and under ``_BTC`` the BTC reference's."""
        self._side = 0
        self._last_open: int | None = None
        self._last_taken: int | None = None
        self._last_decision: Decision | None = None
        self._candles = 0
        self._due: V2Facts | None = None

    @property
    def last_open_time_ms(self) -> int | None:
        """Open time of the newest candle fed; older or equal candles are ignored (dedupe)."""
        return self._last_open

    def on_trend(self, reading: TrendReading) -> None:
        """A trend timeframe's (or the BTC reference's) closed candle; readings this pair does not use are
        ignored. Two are kept per timeframe: the actor of a candle that closes together with a signal
        candle may tell its reading before that signal candle is decided, which still needs the one
        before (``trend.trend_boundary``)."""
        btc = self.params.btc_filter
        if (
            btc is not None
            and btc.symbol != self.symbol
            and (reading.symbol, reading.timeframe)
            == (
                btc.symbol,
                btc.timeframe,
            )
        ):
            self._keep_reading(_BTC, reading)
        elif reading.symbol == self.symbol and reading.timeframe in self.params.trend_timeframes:
            self._keep_reading(reading.timeframe, reading)

    def _keep_reading(self, key: str, reading: TrendReading) -> None:
        held = self._trends.get(key, ())
        if any(r.close_time_ms == reading.close_time_ms for r in held):
            held = tuple(r for r in held if r.close_time_ms != reading.close_time_ms)
        self._trends[key] = tuple(sorted((*held, reading), key=lambda r: r.close_time_ms)[-2:])

    def _reading_for(self, key: str, signal_open_time_ms: int) -> int | None:
        """The trend of the reading the signal candle uses, None when it is not held (stale) or warming."""
        current = [r for r in self._trends.get(key, ()) if r.current_for(signal_open_time_ms)]
        return current[0].trend if current else None

    def on_closed_kline(
        self, kline: Kline, *, position_open: bool, open_positions: int, funding: float | None = None
    ) -> Decision | None:
        """``observe`` then ``decide`` (no exits in between)."""
        self.observe(kline)
        return self.decide(position_open=position_open, open_positions=open_positions, funding=funding)

    def observe(self, kline: Kline) -> Direction | None:
        """Feed one closed candle to the indicators; the direction of the crossover it is, if it is one."""
        self._due = None
        if self._last_open is not None and kline.open_time_ms <= self._last_open:
            return None
        self._last_open = kline.open_time_ms
        self._candles += 1
        self._recent.append(kline)
        self._lows.append(kline.low)
        self._highs.append(kline.high)
        self._fast.add(kline.close)
        self._slow.add(kline.close)
        self._atr.add(OHLCV(kline.open, kline.high, kline.low, kline.close))
        if self._stoch is not None:
            self._stoch.add(kline.close)
        for indicator, keep in self._keep:
            if indicator is not None:
                purge(indicator, keep)
        fast, slow = self._fast[-1], self._slow[-1]
        side = 0 if fast is None or slow is None or fast == slow else (1 if fast > slow else -1)
        crossover = None
        if side != 0:
            if self._side not in (0, side):
                crossover = Direction.LONG if side > 0 else Direction.SHORT
                self._due = self._facts(kline, crossover)
            self._side = side
        return crossover

    def decide(
        self, *, position_open: bool, open_positions: int, funding: float | None = None
    ) -> Decision | None:
        """The decision on the last ``observe``d candle, if it was a crossover."""
        facts, self._due = self._due, None
        if facts is None:
            return None
        if self.params.max_funding_rate is not None:
            facts = replace(facts, funding=funding)
        decision = judge_v2(
            self.params,
            facts,
            symbol=self.symbol,
            timeframe=self.timeframe,
            position_open=position_open,
            open_positions=open_positions,
            last_taken_signal_ms=self._last_taken,
        )
        if decision.taken:
            self._last_taken = facts.signal_open_time_ms
        self._last_decision = decision
        return decision

    def record_rejection(self, decision: Decision) -> None:
        """The executor refused a taken decision: forget it as the last taken."""
        if self._last_taken == decision.signal_open_time_ms:
            self._last_taken = None

    def _pivot(self, direction: Direction) -> float | None:
        """Pivot mode: lowest low (LONG) / highest high (SHORT) of the lookback candles before the newest."""
        if self.params.stop_mode is not StopMode.PIVOT:
            return None
        window = list(self._lows if direction is Direction.LONG else self._highs)[:-1]
        if not window:
            return None
        return min(window) if direction is Direction.LONG else max(window)

    def _facts(self, kline: Kline, direction: Direction) -> V2Facts:
        t = kline.open_time_ms
        trends = [self._reading_for(tf, t) for tf in self.params.trend_timeframes]
        btc_trend = self._reading_for(_BTC, t) if self.params.btc_filter is not None else None
        stoch = self._stoch[-1] if self._stoch is not None else None
        return V2Facts(
            direction=direction,
            signal_open_time_ms=t,
            entry=kline.close,
            atr=self._atr[-1],
            stoch_k=None if stoch is None else stoch.k,
            pivot=self._pivot(direction),
            trends=tuple(trends),
            btc_trend=btc_trend,
            funding=None,
        )

    def snapshot(self) -> StrategySnapshot:
        """Current state for inspection (cheap; copies only small bounded buffers)."""
        stoch = self._stoch[-1] if self._stoch is not None and len(self._stoch) else None
        indicators: list[tuple[str, float | None]] = [
            ("ema_fast", self._fast[-1] if len(self._fast) else None),
            ("ema_slow", self._slow[-1] if len(self._slow) else None),
            ("atr", self._atr[-1] if len(self._atr) else None),
            ("stoch_rsi_k", None if stoch is None else stoch.k),
        ]
        for key, readings in sorted(self._trends.items()):
            trend = readings[-1].trend
            name = f"btc_trend_{readings[-1].timeframe}" if key == _BTC else f"trend_{key}"
            indicators.append((name, None if trend is None else float(trend)))
        return StrategySnapshot(
            candles=self._candles,
            last_open_time_ms=self._last_open,
            sma_short=None,
            sma_long=None,
            side=self._side,
            pending=None,
            pending_remaining=0,
            last_taken_signal_ms=self._last_taken,
            last_decision=self._last_decision,
            recent=tuple(self._recent),
            kind="v2",
            indicators=tuple(indicators),
        )
