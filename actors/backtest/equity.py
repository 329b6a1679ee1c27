"""The equity curve, marked to market at every candle close: one definition for the backtest and the report.

A position's life is a ``Holding``: from its entry fill to its exit fill (or the end, still open). At each
candle close the equity of a margin asset is its wallet (starting balance, minus entry fees paid, plus the
realised PnL less exit fees of the trades closed by then) plus the unrealised PnL of the positions held at
that close, marked at the close of their symbol's candle. A position is held at a close ``s`` when it
filled at or before ``s`` (an entry fills at its deciding candle's close) and exits after ``s`` (an exit
fills inside its candle, before that candle closes).

Each asset's curve is in the asset itself (USDT, or the coin of COIN-M pairs); the USD view values USDT at 1
and a coin at the close of its COIN-M symbol at the time. Arrays throughout: a month of 1m candles is 43,200
points, a year half a million.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from ..domain.model import Direction


@dataclass(frozen=True, slots=True, kw_only=True)
class Holding:
    """One position as the equity curve sees it."""

    symbol: str
    margin_asset: str
    direction: Direction
    quantity: Decimal
    entry_price: float
    contract_size: int | None
    """COIN-M contract value in USD (inverse PnL in the coin); None for USDⓈ-M."""
    entry_time_ms: int
    entry_fee: float
    exit_time_ms: int | None = None
    """None while the position is still open at the end."""
    exit_cash: float = 0.0
    """What the exit adds to the wallet: realised PnL less the exit fees."""


@dataclass(frozen=True, slots=True)
class Candles:
    """One symbol's candles for marking: open times and closes, and the candle length."""

    open_time: npt.NDArray[np.int64]
    close: npt.NDArray[np.float64]
    interval_ms: int


@dataclass(slots=True)
class EquityCurve:
    """Equity per margin asset and in USD at each point of ``times`` (candle closes, Unix ms)."""

    times: npt.NDArray[np.int64]
    by_asset: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    usd: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    marked: bool = True
    """False when no candles were at hand: the curve then moves only at entries and exits."""
    last_marks: dict[str, float] = field(default_factory=dict)
    """Each symbol's last close: what an open position is marked at when the curve ends."""


def mark_to_market(
    holdings: Sequence[Holding],
    candles: Mapping[str, Candles],
    initial: Mapping[str, float],
    coin_symbols: Mapping[str, str] | None = None,
) -> EquityCurve:
    """The curve at every close of the union of ``candles`` (see the module docstring).

    ``coin_symbols``: for each coin margin asset, the COIN-M symbol whose closes value it in USD.
    """
    if not candles:
        return event_curve(holdings, initial)
    step = min(c.interval_ms for c in candles.values())
    opens = np.unique(np.concatenate([c.open_time for c in candles.values()]))
    times = opens + step
    marks = {s: _closes_at(c, times) for s, c in candles.items()}
    wallets = {a: np.full(len(times), float(v)) for a, v in initial.items()}
    for h in holdings:
        wallet = wallets.setdefault(h.margin_asset, np.zeros(len(times)))
        start = int(np.searchsorted(times, h.entry_time_ms, side="left"))
        end = len(times) if h.exit_time_ms is None else int(np.searchsorted(times, h.exit_time_ms, "right"))
        wallet[start:] -= h.entry_fee
        if h.exit_time_ms is not None:
            wallet[end:] += h.exit_cash
        mark = marks.get(h.symbol)
        if mark is not None and end > start:
            wallet[start:end] += _unrealized(h, mark[start:end])
    usd = _usd(wallets, marks, coin_symbols or {})
    last = {s: float(m[-1]) for s, m in marks.items() if len(m)}
    return EquityCurve(times=times, by_asset=wallets, usd=usd, last_marks=last)


def event_curve(holdings: Sequence[Holding], initial: Mapping[str, float]) -> EquityCurve:
    """Without candles: each asset's wallet after every entry and exit (no unrealised PnL, no USD view)."""
    events = sorted(
        [(h.entry_time_ms, h.margin_asset, -h.entry_fee) for h in holdings]
        + [(h.exit_time_ms, h.margin_asset, h.exit_cash) for h in holdings if h.exit_time_ms is not None]
    )
    start = min((t for t, _, _ in events), default=0)
    times = np.array([start, *(t for t, _, _ in events)], dtype=np.int64)
    wallets = {a: np.full(len(times), float(v)) for a, v in initial.items()}
    for i, (_, asset, cash) in enumerate(events, start=1):
        wallets.setdefault(asset, np.zeros(len(times)))[i:] += cash
    usd = wallets["USDT"] if set(wallets) == {"USDT"} else np.zeros(0)
    return EquityCurve(times=times, by_asset=wallets, usd=usd, marked=False)


def max_drawdown_pct(values: npt.NDArray[np.float64]) -> float:
    """Largest fall from a running peak, in % of that peak (0 for an empty or never-positive curve)."""
    if values.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, (peaks - values) / peaks * 100.0, 0.0)
    return float(falls.max())


def _closes_at(c: Candles, times: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The symbol's last close at or before each time (its first close before its first candle)."""
    idx = np.searchsorted(c.open_time + c.interval_ms, times, side="right") - 1
    return np.asarray(c.close[np.clip(idx, 0, len(c.close) - 1)], dtype=np.float64)


def _unrealized(h: Holding, marks: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    qty = float(h.quantity) * h.direction.sign
    if h.contract_size is not None:
        return np.asarray(qty * h.contract_size * (1.0 / h.entry_price - 1.0 / marks), dtype=np.float64)
    return np.asarray(qty * (marks - h.entry_price), dtype=np.float64)


def _usd(
    wallets: Mapping[str, npt.NDArray[np.float64]],
    marks: Mapping[str, npt.NDArray[np.float64]],
    coin_symbols: Mapping[str, str],
) -> npt.NDArray[np.float64]:
    total = np.zeros(len(next(iter(wallets.values()))) if wallets else 0)
    for asset, values in wallets.items():
        if asset == "USDT":
            total = total + values
        else:
            symbol = coin_symbols.get(asset)
            if symbol is not None and symbol in marks:
                total = total + values * marks[symbol]
    return total
