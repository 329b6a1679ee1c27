"""Fast, strict loading of Binance kline CSV files for the backtester and the local exchange's replay.

Two layouts are read: ``open_time_ms,open,high,low,close,volume`` and Binance's 12-column monthly archive
(data.binance.vision), each with or without a header row, LF or CRLF. Microsecond open times (newer
archives) are converted to milliseconds. Every row is validated; gaps are reported, never filled.

The backtest must sustain ~400k klines/s end to end, and ``float()`` alone costs more than that budget, so
numbers are parsed with numpy word-at-a-time (SWAR) arithmetic on the raw bytes. The result is still
bit-identical to ``float()``: a decimal with at most 15 significant digits and at most 22 fractional digits
is an exact integer mantissa divided by an exact power of ten, and IEEE division rounds that correctly
(Clinger's fast path). Any token outside that path goes through ``float()`` itself, and any failure is
re-examined row by row only to name the offending line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from ..bundled import bundled_path
from ..domain.model import TIMEFRAME_MS, Kline
from .csv_tokens import MAX_EXACT, POW10_FLOAT, parse_tokens, words_of

if TYPE_CHECKING:
    import numpy.typing as npt

_COLUMNS: Final = ("open_time", "open", "high", "low", "close", "volume")
_ARCHIVE_COLUMNS: Final = ("quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume")
"""Columns 7..10 of Binance's 12-column archive layout (6 is the close time, 11 is ignored)."""
_WIDTHS: Final = (6, 12)
_OPEN_TIME_HEADERS: Final = frozenset({"open_time", "open_time_ms", "open_time_us", "timestamp"})
_QUOTES: Final = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR", "TRY")
_MICROS_ABOVE: Final = 10**14  # ms stay below this until the year 5138; µs passed it in 1973
_CHUNK: Final = 1 << 14  # tokens per vectorised batch: keeps temporaries in cache and reuses their memory


class DataFileError(ValueError):
    """A kline file is missing, unreadable or malformed; the message names the file and line."""

    def __init__(self, path: str | Path, line: int | None, what: str) -> None:
        self.path = Path(path)
        self.line = line
        self.what = what
        super().__init__(f"{path}:{line}: {what}" if line is not None else f"{path}: {what}")


@dataclass(frozen=True, slots=True)
class Gap:
    """Candles missing between two consecutive rows of a file."""

    after_open_time_ms: int
    next_open_time_ms: int
    missing: int
    """Number of whole candles absent between the two rows (≥ 1)."""


@dataclass(frozen=True, slots=True, eq=False)
class ArchiveColumns:
    """Columns 7..10 of Binance's 12-column archive rows, per kline (what the exchange counted)."""

    quote_volume: npt.NDArray[np.float64]
    count: npt.NDArray[np.int64]
    """Number of trades."""
    taker_buy_volume: npt.NDArray[np.float64]
    taker_buy_quote_volume: npt.NDArray[np.float64]

    def sliced(self, cut: slice) -> ArchiveColumns:
        return ArchiveColumns(
            self.quote_volume[cut],
            self.count[cut],
            self.taker_buy_volume[cut],
            self.taker_buy_quote_volume[cut],
        )


@dataclass(frozen=True, slots=True, eq=False)
class KlineSeries:
    """One symbol's klines from one file as read-only column arrays (closed candles, ascending)."""

    symbol: str
    timeframe: str
    path: Path
    open_time: npt.NDArray[np.int64]
    """Open times, Unix ms UTC."""
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]
    gaps: tuple[Gap, ...]
    archive: ArchiveColumns | None = None
    """The archive's trade statistics, when the file has them and they were asked for."""

    def __len__(self) -> int:
        return len(self.open_time)

    def kline(self, i: int) -> Kline:
        """Row ``i`` as a domain ``Kline``."""
        return Kline(
            symbol=self.symbol,
            timeframe=self.timeframe,
            open_time_ms=int(self.open_time[i]),
            open=float(self.open[i]),
            high=float(self.high[i]),
            low=float(self.low[i]),
            close=float(self.close[i]),
            volume=float(self.volume[i]),
            closed=True,
        )


def symbol_from_filename(path: str | Path) -> str:
    """API symbol from a file name's leading token: ``LINKUSDT-1m-2023-02.csv`` → ``LINKUSDT``."""
    name = Path(path).name
    match = re.match(r"([A-Za-z0-9]+)(?:_(PERP)(?=[_.\-]|$))?", name, re.IGNORECASE)
    token = match.group(1).upper() if match else ""
    plausible = any(token.endswith(q) and len(token) > len(q) for q in _QUOTES) and not token.isdigit()
    if not plausible:
        raise DataFileError(path, None, "no symbol in the file name; pass it as SYMBOL=FILE")
    # COIN-M perpetuals are named BTCUSD_PERP; USDⓈ-M files merely carry a _PERP market tag.
    if match and match.group(2) and token.endswith("USD"):
        return f"{token}_PERP"
    return token


def timeframe_from_filename(path: str | Path) -> str | None:
    """First Binance interval token (``1m``, ``5m``, ``1h``...) in the file name, if any."""
    for token in re.split(r"[_.\-\s]+", Path(path).name):
        if token in TIMEFRAME_MS:
            return token
    return None


def parse_data_arg(arg: str) -> tuple[str, Path]:
    """``SYMBOL=FILE`` or ``FILE`` (symbol taken from the file name) → (upper-case symbol, path). A relative
    FILE missing from the working directory is looked up among the bundled files, as ``replay.data`` is, so
    ``--data data/BTCUSDT_PERP_1m_….csv`` works from any directory."""
    symbol, sep, file = arg.partition("=")
    if sep and re.fullmatch(r"[A-Za-z0-9_]+", symbol):
        if not file:
            raise DataFileError(arg, None, "no file after 'SYMBOL='")
        return symbol.upper(), _here_or_bundled(file)
    if not arg:
        raise DataFileError(arg, None, "empty data argument; expected SYMBOL=FILE or FILE")
    return symbol_from_filename(arg), _here_or_bundled(arg)


def _here_or_bundled(file: str) -> Path:
    path = Path(file)
    return path if path.is_absolute() or path.exists() else bundled_path(path) or path


def load_klines(
    path: str | Path, *, symbol: str | None = None, timeframe: str | None = None, archive: bool = False
) -> KlineSeries:
    """Read and validate one kline CSV file; raise ``DataFileError`` naming the first bad line.

    ``archive``: also read the trade statistics of a 12-column archive file (``KlineSeries.archive``).
    """
    path = Path(path)
    symbol = (symbol or symbol_from_filename(path)).upper()
    if timeframe is not None and timeframe not in TIMEFRAME_MS:
        raise DataFileError(
            path, None, f"unknown timeframe {timeframe!r}; expected one of {list(TIMEFRAME_MS)}"
        )
    data = _read(path)
    first_line, ncols = _layout(path, data)
    extra = (7, 8, 9, 10) if archive and ncols == 12 else ()
    raw_open_time, values = _parse(path, data, first_line, ncols, (0, 1, 2, 3, 4, 5, *extra))
    open_time = _to_millis(path, raw_open_time, first_line)
    prices = values[:5]
    _check_values(path, prices, first_line)
    stats = _archive(path, values[5:], first_line) if extra else None
    diffs = np.diff(open_time)
    _check_order(path, open_time, diffs, first_line)
    timeframe = timeframe or timeframe_from_filename(path) or _infer_timeframe(path, diffs)
    step = TIMEFRAME_MS[timeframe]
    misaligned = np.flatnonzero(open_time % step)
    if len(misaligned):
        i = int(misaligned[0])
        what = f"open time {open_time[i]} is not aligned to the {timeframe} timeframe"
        raise DataFileError(path, first_line + i, what)
    gap_at = np.flatnonzero(diffs != step)
    gaps = tuple(
        Gap(
            after_open_time_ms=int(open_time[i]),
            next_open_time_ms=int(open_time[i + 1]),
            missing=int(diffs[i] // step - 1),
        )
        for i in gap_at
    )
    open_time.flags.writeable = False
    opens, highs, lows, closes, volumes = prices
    return KlineSeries(symbol, timeframe, path, open_time, opens, highs, lows, closes, volumes, gaps, stats)


def _archive(path: Path, values: npt.NDArray[np.float64], first_line: int) -> ArchiveColumns:
    """The archive columns, checked: finite, non-negative, and a whole trade count."""
    bad = np.flatnonzero(~(np.isfinite(values) & (values >= 0)).all(axis=0) | (values[1] % 1 != 0))
    if len(bad):
        i = int(bad[0])
        row = dict(zip(_ARCHIVE_COLUMNS, values[:, i].tolist(), strict=True))
        raise DataFileError(path, first_line + i, f"archive columns must be non-negative numbers: {row}")
    quote, count, taker_base, taker_quote = values
    return ArchiveColumns(quote, count.astype(np.int64), taker_base, taker_quote)


def _to_millis(path: Path, open_time: npt.NDArray[np.int64], first_line: int) -> npt.NDArray[np.int64]:
    micros = open_time > _MICROS_ABOVE
    if not micros.any():
        return open_time
    uneven = np.flatnonzero(micros & (open_time % 1000 != 0))
    if len(uneven):
        i = int(uneven[0])
        what = f"open time {open_time[i]} is in microseconds but not a whole millisecond"
        raise DataFileError(path, first_line + i, what)
    return np.where(micros, open_time // 1000, open_time)


def _check_values(path: Path, prices: npt.NDArray[np.float64], first_line: int) -> None:
    """Finite, positive prices, non-negative volume, and high/low bracketing open and close."""
    opens, highs, lows, closes, volumes = prices
    top = np.maximum(opens, closes)
    bottom = np.minimum(opens, closes)
    ok = np.isfinite(prices).all(axis=0) & (prices[:4] > 0).all(axis=0) & (volumes >= 0)
    ok &= (highs >= top) & (lows <= bottom) & (highs >= lows)
    bad = np.flatnonzero(~ok)
    if not len(bad):
        return
    i = int(bad[0])
    row = [float(x) for x in prices[:, i]]
    what = ""
    for name, x in zip(_COLUMNS[1:], row, strict=True):
        if not np.isfinite(x):
            what = f"column {name!r} is not finite: {x!r}"
        elif name == "volume" and x < 0:
            what = f"volume {x!r} is negative"
        elif name != "volume" and x <= 0:
            what = f"column {name!r} must be positive, got {x!r}"
        if what:
            break
    else:
        if highs[i] < lows[i]:
            what = f"high {row[1]!r} is below low {row[2]!r}"
        elif highs[i] < top[i]:
            what = f"high {row[1]!r} is below max(open, close) {float(top[i])!r}"
        else:
            what = f"low {row[2]!r} is above min(open, close) {float(bottom[i])!r}"
    raise DataFileError(path, first_line + i, what)


def _check_order(
    path: Path, open_time: npt.NDArray[np.int64], diffs: npt.NDArray[np.int64], first_line: int
) -> None:
    backwards = np.flatnonzero(diffs <= 0)
    if not len(backwards):
        return
    i = int(backwards[0]) + 1
    if diffs[i - 1] == 0:
        what = f"duplicate open time {open_time[i]} (same as the previous row)"
    else:
        what = f"open time {open_time[i]} is earlier than the previous row's {open_time[i - 1]}"
    raise DataFileError(path, first_line + i, what)


def _infer_timeframe(path: Path, diffs: npt.NDArray[np.int64]) -> str:
    if not len(diffs):
        raise DataFileError(path, None, "cannot infer the timeframe from a single kline; pass it explicitly")
    steps, counts = np.unique(diffs, return_counts=True)
    step = int(steps[np.argmax(counts)])
    for name, ms in TIMEFRAME_MS.items():
        if ms == step:
            return name
    raise DataFileError(
        path,
        None,
        f"cannot infer the timeframe: the usual open-time step {step} ms is not a Binance interval",
    )


def _read(path: Path) -> bytes:
    """The file's bytes with LF line ends and exactly one trailing newline; copies only to get there."""
    if path.is_dir():
        raise DataFileError(path, None, "is a directory, not a kline CSV file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(path, None, "no such file") from None
    except OSError as e:
        raise DataFileError(path, None, f"cannot read: {e.strerror or e}") from e
    data = data.removeprefix(b"\xef\xbb\xbf")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    end = len(data)
    while end and data[end - 1] == ord("\n"):
        end -= 1
    if not end:
        raise DataFileError(path, None, "no klines")
    if end == len(data):
        return data + b"\n"
    return data if end + 1 == len(data) else data[: end + 1]


def _layout(path: Path, data: bytes) -> tuple[int, int]:
    """(1-based line of the first data row, column count), validating the header when there is one."""
    head = data[: data.index(b"\n")]
    fields = head.decode("utf-8", "replace").split(",")
    header = not fields[0].strip().isdigit()
    if len(fields) not in _WIDTHS:
        raise DataFileError(path, 1, f"expected 6 or 12 columns, got {len(fields)}")
    if header:
        names = [f.strip().lower() for f in fields]
        if names[0] not in _OPEN_TIME_HEADERS or tuple(names[1:6]) != _COLUMNS[1:]:
            what = f"unrecognised header {head.decode('utf-8', 'replace')!r}; expected {','.join(_COLUMNS)}"
            raise DataFileError(path, 1, what)
        if len(data) == len(head) + 1:
            raise DataFileError(path, None, "no klines")
    return (2 if header else 1), len(fields)


def _parse(
    path: Path, data: bytes, first_line: int, ncols: int, columns: tuple[int, ...]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Open times (as written) and a read-only block of the other ``columns`` (one row per column).

    ``columns`` starts with 0 (open time); the rest are numbers: 1..5 open/high/low/close/volume, and for
    the archive layout 7..10 quote volume, trade count, taker-buy base and quote volume.
    """
    buf = np.frombuffer(data, np.uint8)
    seps = np.flatnonzero((buf == ord(",")) | (buf == ord("\n")))
    header_seps = ncols if first_line == 2 else 0
    body_start = int(seps[header_seps - 1]) + 1 if header_seps else 0
    seps = seps[header_seps:]
    rows = len(seps) // ncols
    is_newline = buf[seps] == ord("\n")
    if (
        len(seps) % ncols
        or not is_newline.reshape(rows, ncols)[:, -1].all()
        or np.count_nonzero(is_newline) != rows
    ):
        _raise_column_count(path, data[body_start:-1], first_line, ncols)
    table = seps.reshape(rows, ncols)
    words = words_of(data)
    cols = np.array(columns)
    open_time = np.empty(rows, np.int64)
    values = np.empty((len(cols) - 1, rows), np.float64)
    bad = np.empty((rows, len(cols)), np.bool_)
    step = _CHUNK // len(cols)
    for r0 in range(0, rows, step):
        r1 = min(r0 + step, rows)
        ends = table[r0:r1][:, cols]
        before = np.empty_like(ends)  # each token's preceding separator
        before[:, 1:] = table[r0:r1][:, cols[1:] - 1]
        if r0:
            before[:, 0] = table[r0 - 1 : r1 - 1, -1]
        else:
            before[0, 0] = body_start - 1
            before[1:, 0] = table[: r1 - 1, -1]
        mantissa, decimals, chunk_bad = parse_tokens(words, ends, ends - before - 1)
        chunk_bad[:, 0] |= decimals[:, 0] != 0
        chunk_bad[:, 1:] |= mantissa[:, 1:] >= MAX_EXACT
        bad[r0:r1] = chunk_bad
        open_time[r0:r1] = mantissa[:, 0]
        values[:, r0:r1] = (mantissa[:, 1:].astype(np.float64) / POW10_FLOAT[decimals[:, 1:]]).T
    for row, k in np.argwhere(bad):
        col = int(cols[k])
        i = int(row) * ncols + col
        start, end = (int(seps[i - 1]) + 1 if i else body_start), int(seps[i])
        line = first_line + int(row)
        if col == 0:
            open_time[row] = _parse_int_slow(path, line, data[start:end])
        else:
            name = (*_COLUMNS, *_ARCHIVE_COLUMNS)[col if col < 6 else col - 1]
            values[k - 1, row] = _parse_float_slow(path, line, name, data[start:end])
    values.flags.writeable = False
    return open_time, values


def _parse_int_slow(path: Path, line: int, token: bytes) -> int:
    text = token.decode("utf-8", "replace").strip()
    if not text.isdigit() or not text.isascii():
        raise DataFileError(path, line, f"column 'open_time' is not an integer: {text!r}")
    return int(text)


def _parse_float_slow(path: Path, line: int, column: str, token: bytes) -> float:
    text = token.decode("utf-8", "replace")
    try:
        return float(text)
    except ValueError:
        raise DataFileError(path, line, f"column {column!r} is not a number: {text!r}") from None


def _raise_column_count(path: Path, body: bytes, first_line: int, ncols: int) -> None:
    for offset, line in enumerate(body.split(b"\n")):
        got = line.count(b",") + 1
        if got != ncols:
            what = f"expected 6 or 12 columns, got {got}"
            if not line.strip():
                what = "empty line; expected 6 or 12 columns"
            elif got in _WIDTHS:
                what = f"expected {ncols} columns like line 1, got {got}"
            raise DataFileError(path, first_line + offset, what)
    raise DataFileError(path, None, "inconsistent column structure")  # unreachable: the fast check agrees
