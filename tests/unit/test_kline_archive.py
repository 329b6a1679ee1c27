"""Binance's 12-column archive files: the trade statistics (columns 7..10) are read when asked for."""

from __future__ import annotations

import numpy as np
import pytest

from nancemakina.actors.backtest.kline_files import DataFileError, load_klines

HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)
T0 = 1_700_000_040_000


def archive_row(i: int, count: int = 1234) -> str:
    t = T0 + 60_000 * i
    return f"{t},100.5,101.0,99.5,100.0,12.345,{t + 59_999},1234567.891234,{count},6.001,600123.4567891234,0"


def test_archive_columns_are_read_exactly_when_asked(tmp_path):
    path = tmp_path / "BTCUSDT-1m-2024-01.csv"
    path.write_text("\n".join([HEADER, *(archive_row(i) for i in range(3))]) + "\n")
    series = load_klines(path, archive=True)
    stats = series.archive
    assert stats is not None
    assert stats.count.tolist() == [1234] * 3
    assert stats.quote_volume[0] == 1234567.891234
    assert stats.taker_buy_volume[0] == 6.001
    assert stats.taker_buy_quote_volume[0] == float("600123.4567891234")  # 17 digits: the slow path
    assert series.volume[0] == 12.345
    assert load_klines(path).archive is None  # the backtester does not pay for them
    six = tmp_path / "ETHUSDT_1m.csv"
    six.write_text("open_time,open,high,low,close,volume\n1700000040000,1,2,0.5,1.5,3\n")
    assert load_klines(six, archive=True).archive is None


def test_bad_archive_values_name_the_line(tmp_path):
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text("\n".join([archive_row(0), archive_row(1, count=-3)]) + "\n")
    with pytest.raises(DataFileError, match=r":2: archive columns"):
        load_klines(path, archive=True)
    path.write_text(archive_row(0).replace(",1234,", ",12x,") + "\n")
    with pytest.raises(DataFileError, match="'count' is not a number"):
        load_klines(path, archive=True)
    assert np.isfinite(load_klines(path).close).all()  # not asked for: not read
