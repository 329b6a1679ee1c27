"""The V2 twins reproduce talipp bit for bit, and the purge rule keeps every talipp value.

Checked on the bundled BTC and ETH month (1m, and their 15m/1h closes) and on hand-made edge cases: the
twins must agree with talipp's incremental indicators value for value (``==``, same warm-up positions, same
64-bit patterns); purging at ``min_retained_*`` must change no output, and one value less must.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from talipp.indicators import ATR, EMA, RSI, StochRSI
from talipp.ohlcv import OHLCV

from nancemakina.actors.backtest.kline_files import KlineSeries, load_klines
from nancemakina.actors.domain import twins
from nancemakina.actors.domain.trend import (
    min_retained_ema,
    min_retained_rsi,
    min_retained_stoch_rsi,
    purge,
)

ROOT = Path(__file__).resolve().parents[2]
FILES = {
    "BTCUSDT": ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
    "ETHUSDT": ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
}
ROWS = 12_000
"""A third of the month per symbol keeps the talipp reference runs quick; the whole month runs through both
engines in ``test_backtest_v2_parity``."""


@pytest.fixture(scope="module", params=sorted(FILES))
def series(request: pytest.FixtureRequest) -> KlineSeries:
    return load_klines(FILES[request.param])


def _array(values: list[object]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _same(reference: np.ndarray, twin: np.ndarray) -> None:
    assert reference.shape == twin.shape
    assert np.array_equal(np.isnan(reference), np.isnan(twin)), "warm-up positions differ"
    assert np.array_equal(
        reference.view(np.int64)[~np.isnan(reference)], twin.view(np.int64)[~np.isnan(twin)]
    )


def _talipp(indicator: object, inputs: list[object], read=lambda v: v, keep: int | None = None) -> np.ndarray:
    out = []
    for x in inputs:
        indicator.add(x)  # type: ignore[attr-defined]
        if keep is not None:
            purge(indicator, keep)
        out.append(read(indicator[-1]))  # type: ignore[index]
    return _array(out)


def _k(value: object) -> object:
    return None if value is None else value.k  # type: ignore[attr-defined]


def _d(value: object) -> object:
    return None if value is None else value.d  # type: ignore[attr-defined]


def _closes_every(series: KlineSeries, minutes: int) -> np.ndarray:
    ends = series.open_time[:ROWS] + 60_000
    return series.close[:ROWS][ends % (minutes * 60_000) == 0]


@pytest.mark.parametrize("period", [2, 9, 21, 50])
def test_ema_equals_talipp(series: KlineSeries, period: int) -> None:
    for closes in (series.close[:ROWS], _closes_every(series, 15), _closes_every(series, 60)):
        _same(_talipp(EMA(period), closes.tolist()), twins.ema(closes, period))


@pytest.mark.parametrize("period", [1, 14])
def test_atr_equals_talipp(series: KlineSeries, period: int) -> None:
    h, lo, c = series.high[:ROWS], series.low[:ROWS], series.close[:ROWS]
    inputs = [
        OHLCV(float(o), float(x), float(y), float(z))
        for o, x, y, z in zip(series.open[:ROWS], h, lo, c, strict=True)
    ]
    _same(_talipp(ATR(period), inputs), twins.atr(h, lo, c, period))


@pytest.mark.parametrize("period", [2, 14])
def test_rsi_equals_talipp(series: KlineSeries, period: int) -> None:
    closes = series.close[:ROWS]
    _same(_talipp(RSI(period), closes.tolist()), twins.rsi(closes, period))


@pytest.mark.parametrize("params", [(14, 14, 3, 3), (7, 5, 2, 6), (3, 3, 1, 1)])
def test_stoch_rsi_equals_talipp(series: KlineSeries, params: tuple[int, int, int, int]) -> None:
    closes = series.close[:ROWS]
    k, d = twins.stoch_rsi(closes, *params)
    _same(_talipp(StochRSI(*params), closes.tolist(), _k), k)
    _same(_talipp(StochRSI(*params), closes.tolist(), _d), d)


EDGES = {
    "flat": np.full(80, 42.5),  # RSI's loss average 0 → 100; StochRSI's max == min → 100
    "zigzag": np.where(np.arange(80) % 2 == 0, 10.0, 10.3),
    "up": np.arange(80, dtype=np.float64) * 0.5 + 1.0,
    "short": np.array([1.0, 2.0, 3.0]),  # shorter than every window: all warm-up
}


@pytest.mark.parametrize("name", sorted(EDGES))
def test_twins_on_edge_cases(name: str) -> None:
    closes = EDGES[name]
    _same(_talipp(EMA(9), closes.tolist()), twins.ema(closes, 9))
    _same(_talipp(RSI(14), closes.tolist()), twins.rsi(closes, 14))
    k, _ = twins.stoch_rsi(closes, 14, 14, 3, 3)
    _same(_talipp(StochRSI(14, 14, 3, 3), closes.tolist(), _k), k)
    bars = [OHLCV(c, c + 0.5, c - 0.5, c) for c in closes.tolist()]
    _same(_talipp(ATR(14), bars), twins.atr(closes + 0.5, closes - 0.5, closes, 14))


def test_purging_at_the_minimum_keeps_every_value_and_one_less_does_not(series: KlineSeries) -> None:
    closes = series.close[:6_000].tolist()
    cases = [
        (lambda: EMA(21), min_retained_ema(21), lambda v: v),
        (lambda: RSI(14), min_retained_rsi(14), lambda v: v),
        (lambda: StochRSI(14, 14, 3, 3), min_retained_stoch_rsi(14, 14, 3, 3), _k),
        (lambda: StochRSI(14, 14, 3, 3), min_retained_stoch_rsi(14, 14, 3, 3), _d),
    ]
    for make, keep, read in cases:
        whole = _talipp(make(), closes, read)
        purged_indicator = make()
        _same(whole, _talipp(purged_indicator, closes, read, keep=keep))
        assert len(purged_indicator.input_values) <= keep + 32  # bounded
        assert not np.array_equal(whole, _talipp(make(), closes, read, keep=keep - 1), equal_nan=True)
