"""Loading Binance kline CSV files: both layouts, file-name conventions, every validation error."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from nancemakina.actors.backtest.kline_files import (
    DataFileError,
    Gap,
    load_klines,
    parse_data_arg,
    symbol_from_filename,
    timeframe_from_filename,
)

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
HEADER = "open_time_ms,open,high,low,close,volume"
ARCHIVE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
T0 = 1_700_000_040_000  # a whole minute (and 1h-unaligned) in ms
MINUTE = 60_000


def row(t, *, o=10.0, h=11.0, low=9.0, c=10.5, v=3.25):
    return f"{t},{o},{h},{low},{c},{v}"


def archive_row(t, *, o="10.0", h="11.0", low="9.0", c="10.5", v="3.25"):
    return f"{t},{o},{h},{low},{c},{v},{t + MINUTE - 1},32.5,7,1.5,15.0,0"


def write(tmp_path, name, lines, *, newline="\n", trailing=True):
    path = tmp_path / name
    path.write_bytes((newline.join(lines) + (newline if trailing else "")).encode())
    return path


def expect_error(path, message, **kwargs):
    with pytest.raises(DataFileError) as info:
        load_klines(path, **kwargs)
    assert str(info.value) == message
    return info.value


# -- bundled data ------------------------------------------------------------------------------------------


def test_bundled_btc_file_matches_csv_module_parsing():
    series = load_klines(BUNDLED)
    with BUNDLED.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert len(series) == 43_199
    assert (series.symbol, series.timeframe, series.gaps) == ("BTCUSDT", "1m", ())
    assert series.open_time[0] == int(rows[0][0]) == 1_748_169_180_000
    assert series.open_time[-1] == int(rows[-1][0])
    assert series.open_time.dtype == np.int64
    for j, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        column = getattr(series, name)
        assert column.dtype == np.float64
        assert not column.flags.writeable
        # Bit-for-bit: the same float64 values float() produces.
        assert np.array_equal(column, np.array([float(r[j]) for r in rows]))
    kline = series.kline(0)
    assert (kline.symbol, kline.open_time_ms, kline.open, kline.volume, kline.closed) == (
        "BTCUSDT",
        1_748_169_180_000,
        107187.4,
        22.67,
        True,
    )


def test_arrays_are_read_only():
    series = load_klines(BUNDLED)
    with pytest.raises(ValueError, match="read-only"):
        series.close[0] = 1.0


# -- formats -----------------------------------------------------------------------------------------------


def test_short_format_with_header(tmp_path):
    path = write(
        tmp_path,
        "ETHUSDT_1m.csv",
        [HEADER, row(T0), row(T0 + MINUTE, o=10.5, h=12.0, low=10.25, c=11.75, v=0)],
    )
    series = load_klines(path)
    assert series.open_time.tolist() == [T0, T0 + MINUTE]
    assert series.high.tolist() == [11.0, 12.0]
    assert series.volume.tolist() == [3.25, 0.0]


@pytest.mark.parametrize("header", [True, False])
def test_archive_format(tmp_path, header):
    lines = [archive_row(T0 + i * MINUTE) for i in range(3)]
    path = write(tmp_path, "BTCUSDT-1m-2023-11.csv", ([ARCHIVE_HEADER] if header else []) + lines)
    series = load_klines(path)
    assert series.open_time.tolist() == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    assert series.close.tolist() == [10.5] * 3
    assert series.timeframe == "1m"


def test_archive_microsecond_open_times_become_milliseconds(tmp_path):
    lines = [archive_row((T0 + i * MINUTE) * 1000) for i in range(2)]
    path = write(tmp_path, "BTCUSDT-1m-2025-02.csv", [ARCHIVE_HEADER, *lines])
    assert load_klines(path).open_time.tolist() == [T0, T0 + MINUTE]


@pytest.mark.parametrize("trailing", [True, False])
def test_crlf_headerless_with_or_without_trailing_newline(tmp_path, trailing):
    lines = [row(T0), row(T0 + MINUTE)]
    path = write(tmp_path, "SOLUSDT_1m.csv", lines, newline="\r\n", trailing=trailing)
    series = load_klines(path)
    assert series.open_time.tolist() == [T0, T0 + MINUTE]
    assert series.volume.tolist() == [3.25, 3.25]


def test_numbers_off_the_fast_path_match_float(tmp_path):
    values = ["1e-05", "0.000000000000012345678", "12345678901234567.5", "+3.5", "7"]
    lines = [f"{T0},{values[3]},{values[2]},{values[0]},{values[4]},{values[1]}"]
    series = load_klines(write(tmp_path, "XRPUSDT_1m.csv", lines))
    assert series.open.tolist() == [3.5]
    assert series.high.tolist() == [float(values[2])]
    assert series.low.tolist() == [1e-05]
    assert series.volume.tolist() == [float(values[1])]


def test_random_decimals_match_float_bit_for_bit(tmp_path):
    rng = np.random.default_rng(7)
    texts = [f"{x:.{d}f}" for x, d in zip(rng.uniform(1, 1e6, 3000), rng.integers(0, 9, 3000), strict=True)]
    lines = [f"{T0 + i * MINUTE},{t},{t},{t},{t},{t}" for i, t in enumerate(texts)]
    series = load_klines(write(tmp_path, "BTCUSDT_1m.csv", lines))
    assert np.array_equal(series.close, np.array([float(t) for t in texts]))


def test_single_row_file_with_timeframe_from_name(tmp_path):
    assert len(load_klines(write(tmp_path, "BTCUSDT_5m.csv", [row(1_700_000_100_000)]))) == 1


def test_explicit_symbol_and_timeframe_win(tmp_path):
    path = write(tmp_path, "BTCUSDT_1m.csv", [row(1_699_999_200_000), row(1_699_999_200_000 + 3_600_000)])
    series = load_klines(path, symbol="ethusdt", timeframe="1h")
    assert (series.symbol, series.timeframe, series.gaps) == ("ETHUSDT", "1h", ())


# -- file names and --data ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("SOLUSDT_PERP_1m_2024.csv", "SOLUSDT"),
        ("LINKUSDT-1m-2023-02.csv", "LINKUSDT"),
        ("BTCUSD_PERP-1m-2024-01.csv", "BTCUSD_PERP"),
        ("/some/dir/ethusdt_1m.csv", "ETHUSDT"),
        ("1000PEPEUSDT-5m-2024-03.csv", "1000PEPEUSDT"),
        ("BTCUSDT.csv", "BTCUSDT"),
    ],
)
def test_symbol_from_filename(name, symbol):
    assert symbol_from_filename(name) == symbol


@pytest.mark.parametrize("name", ["data.csv", "2024-01.csv", "_1m.csv", "klines_1m.csv"])
def test_symbol_from_filename_rejects_implausible_names(name):
    with pytest.raises(DataFileError, match="no symbol in the file name"):
        symbol_from_filename(name)


@pytest.mark.parametrize(
    ("name", "timeframe"),
    [
        ("SOLUSDT_PERP_1m_2024.csv", "1m"),
        ("LINKUSDT-5m-2023-02.csv", "5m"),
        ("BTCUSDT_1h.csv", "1h"),
        ("BTCUSDT-2023-02.csv", None),
        ("BTCUSDT_1M.csv", None),  # Binance's monthly interval, not minutes
    ],
)
def test_timeframe_from_filename(name, timeframe):
    assert timeframe_from_filename(name) == timeframe


def test_parse_data_arg():
    assert parse_data_arg("btcusd_perp=/tmp/x.csv") == ("BTCUSD_PERP", Path("/tmp/x.csv"))
    assert parse_data_arg("data/LINKUSDT-1m-2023-02.csv") == (
        "LINKUSDT",
        Path("data/LINKUSDT-1m-2023-02.csv"),
    )
    assert parse_data_arg("/tmp/a=b/ETHUSDT_1m.csv") == ("ETHUSDT", Path("/tmp/a=b/ETHUSDT_1m.csv"))
    with pytest.raises(DataFileError, match="no file after"):
        parse_data_arg("BTCUSDT=")


def test_relative_data_arg_missing_here_is_the_bundled_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = f"data/{BUNDLED.name}"
    assert parse_data_arg(name) == ("BTCUSDT", BUNDLED)
    assert parse_data_arg(f"XBT={name}") == ("XBT", BUNDLED)
    (tmp_path / "data").mkdir()
    (tmp_path / name).write_text(HEADER + "\n")
    assert parse_data_arg(name) == ("BTCUSDT", Path(name)), "a file here wins over the bundled one"


# -- timeframe inference and gaps --------------------------------------------------------------------------


def test_timeframe_inferred_from_most_common_step(tmp_path):
    step = 300_000
    times = [1_700_000_100_000 + k * step for k in (0, 1, 2, 4, 5)]
    series = load_klines(write(tmp_path, "BTCUSDT.csv", [row(t) for t in times]))
    assert series.timeframe == "5m"
    assert series.gaps == (Gap(after_open_time_ms=times[2], next_open_time_ms=times[3], missing=1),)


def test_gaps_are_reported_with_missing_counts(tmp_path):
    times = [T0, T0 + MINUTE, T0 + 4 * MINUTE, T0 + 5 * MINUTE, T0 + 15 * MINUTE]
    series = load_klines(write(tmp_path, "BTCUSDT_1m.csv", [HEADER, *(row(t) for t in times)]))
    assert len(series) == 5  # no invented candles
    assert series.gaps == (
        Gap(after_open_time_ms=T0 + MINUTE, next_open_time_ms=T0 + 4 * MINUTE, missing=2),
        Gap(after_open_time_ms=T0 + 5 * MINUTE, next_open_time_ms=T0 + 15 * MINUTE, missing=9),
    )


def test_uninferable_timeframe(tmp_path):
    lines = [row(1_700_000_040_000 + k * 120_000) for k in range(3)]
    expect_error(
        path := write(tmp_path, "BTCUSDT.csv", lines),
        f"{path}: cannot infer the timeframe: the usual open-time step 120000 ms is not a Binance interval",
    )
    single = write(tmp_path, "ETHUSDT.csv", [row(T0)])
    expect_error(single, f"{single}: cannot infer the timeframe from a single kline; pass it explicitly")


# -- errors ------------------------------------------------------------------------------------------------


def bad_file(tmp_path, bad_line, *, at=3):
    """Header + rows; the row written on physical line ``at`` is replaced by ``bad_line``."""
    lines = [HEADER, *(row(T0 + i * MINUTE) for i in range(5))]
    lines[at - 1] = bad_line
    return write(tmp_path, "BTCUSDT_1m.csv", lines)


@pytest.mark.parametrize(
    ("bad_line", "what"),
    [
        (f"{T0 + 60_000},10,abc,9,10,1", "column 'high' is not a number: 'abc'"),
        (f"{T0 + 60_000},10,11,9,10,", "column 'volume' is not a number: ''"),
        (f"{T0 + 60_000}x,10,11,9,10,1", "column 'open_time' is not an integer: '1700000100000x'"),
        (f"{T0 + 60_000}.0,10,11,9,10,1", "column 'open_time' is not an integer: '1700000100000.0'"),
        (f"{T0 + 60_000},10,11,9,10", "expected 6 or 12 columns, got 5"),
        (archive_row(T0 + 60_000), "expected 6 columns like line 1, got 12"),
        ("", "empty line; expected 6 or 12 columns"),
        (row(T0 - 60_000), "open time 1699999980000 is earlier than the previous row's 1700000040000"),
        (row(T0), "duplicate open time 1700000040000 (same as the previous row)"),
        (row(T0 + 61_000), "open time 1700000101000 is not aligned to the 1m timeframe"),
        (row(T0 + 60_000, o=11.0, h=10.0, low=9.0, c=10.0), "high 10.0 is below max(open, close) 11.0"),
        (row(T0 + 60_000, o=11.0, h=12.0, low=10.5, c=10.0), "low 10.5 is above min(open, close) 10.0"),
        (row(T0 + 60_000, o=10.0, h=9.0, low=9.5, c=10.0), "high 9.0 is below low 9.5"),
        (row(T0 + 60_000, v=-1.5), "volume -1.5 is negative"),
        (row(T0 + 60_000, o=0.0, low=0.0), "column 'open' must be positive, got 0.0"),
        (row(T0 + 60_000, low=-9.0), "column 'low' must be positive, got -9.0"),
        (row(T0 + 60_000, c="nan"), "column 'close' is not finite: nan"),
        (row(T0 + 60_000, h="inf"), "column 'high' is not finite: inf"),
    ],
)
def test_each_error_names_file_and_line(tmp_path, bad_line, what):
    path = bad_file(tmp_path, bad_line)
    error = expect_error(path, f"{path}:3: {what}")
    assert (error.path, error.line) == (path, 3)


def test_error_line_counts_from_one_without_header(tmp_path):
    path = write(tmp_path, "BTCUSDT_1m.csv", [row(T0), row(T0 + MINUTE, h="x")])
    expect_error(path, f"{path}:2: column 'high' is not a number: 'x'")


def test_error_in_dropped_archive_column_is_not_ours_but_count_is(tmp_path):
    lines = [ARCHIVE_HEADER, archive_row(T0), archive_row(T0 + MINUTE) + ",extra"]
    path = write(tmp_path, "BTCUSDT-1m-2023-11.csv", lines)
    expect_error(path, f"{path}:3: expected 6 or 12 columns, got 13")


def test_microseconds_must_be_whole_milliseconds(tmp_path):
    path = write(tmp_path, "BTCUSDT-1m.csv", [archive_row(T0 * 1000 + 1)])
    expect_error(path, f"{path}:1: open time {T0 * 1000 + 1} is in microseconds but not a whole millisecond")


@pytest.mark.parametrize("content", ["", "\n\n", HEADER + "\n", ARCHIVE_HEADER])
def test_empty_files(tmp_path, content):
    path = tmp_path / "BTCUSDT_1m.csv"
    path.write_text(content)
    expect_error(path, f"{path}: no klines")


def test_bad_header_and_width(tmp_path):
    path = write(tmp_path, "BTCUSDT_1m.csv", ["time,close,open,high,low,volume", row(T0)])
    with pytest.raises(DataFileError, match=r":1: unrecognised header"):
        load_klines(path)
    path = write(tmp_path, "ETHUSDT_1m.csv", ["1,2,3"])
    expect_error(path, f"{path}:1: expected 6 or 12 columns, got 3")


def test_missing_file_directory_and_unknown_timeframe(tmp_path):
    missing = tmp_path / "BTCUSDT_1m.csv"
    expect_error(missing, f"{missing}: no such file")
    directory = tmp_path / "ETHUSDT_1m.csv"
    directory.mkdir()
    expect_error(directory, f"{directory}: is a directory, not a kline CSV file")
    path = write(tmp_path, "SOLUSDT.csv", [row(T0)])
    with pytest.raises(DataFileError, match=r"unknown timeframe '2m'"):
        load_klines(path, timeframe="2m")
