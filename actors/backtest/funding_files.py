"""Funding-rate files in Binance's public-archive format, read into a ``FundingHistory`` per symbol.

The archive (``data.binance.vision/data/futures/um/monthly/fundingRate/SYM/SYM-fundingRate-YYYY-MM.zip``,
COIN-M under ``futures/cm/``) holds one CSV with the header ``calc_time,funding_interval_hours,
last_funding_rate``: the settlement time in Unix ms (stamped a few ms late, e.g. ``1748160000001``), the
funding interval in hours (8 for most symbols, 4 or 1 for some, and it can change), and the settled rate
as a fraction per interval (0.0001 = 0.01 %). A file is given as the CSV or the zip; several files of one
symbol (several months) are merged. Errors name the file and line, as the kline files' do.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..domain.funding import FundingHistory
from .kline_files import DataFileError

HEADER = ("calc_time", "funding_interval_hours", "last_funding_rate")
MINUTE_MS = 60_000
_HOUR_MS = 3_600_000


def parse_funding_arg(arg: str) -> tuple[str, Path]:
    """``SYMBOL=FILE`` or ``FILE`` named like the archive's (``BTCUSDT-fundingRate-2025-05.zip``)."""
    symbol, sep, file = arg.partition("=")
    if sep and re.fullmatch(r"[A-Za-z0-9_]+", symbol):
        if not file:
            raise DataFileError(arg, None, "no file after 'SYMBOL='")
        return symbol.upper(), Path(file)
    match = re.match(r"([A-Za-z0-9_]+?)-fundingRate", Path(arg).name)
    if match is None:
        raise DataFileError(
            arg, None, "cannot tell the symbol from the name; give SYMBOL=FILE or the archive's file name"
        )
    return match.group(1).upper(), Path(arg)


def _texts(path: Path) -> list[tuple[str, str]]:
    """(name for errors, text) of the CSV, or of every CSV inside a zip."""
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                return [
                    (f"{path}!{name}", archive.read(name).decode("utf-8"))
                    for name in archive.namelist()
                    if name.lower().endswith(".csv")
                ]
        return [(str(path), path.read_text(encoding="utf-8"))]
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise DataFileError(path, None, f"cannot read funding-rate file: {exc}") from None


def _rows(name: str, text: str) -> Iterable[tuple[int, int, float]]:
    """(settlement ms rounded to the minute, interval ms, rate) of each row."""
    reader = csv.reader(io.StringIO(text))
    for number, row in enumerate(reader, start=1):
        if not row or not "".join(row).strip():
            continue
        cells = [c.strip() for c in row]
        if number == 1 and cells[0].lower() == HEADER[0]:
            if tuple(c.lower() for c in cells) != HEADER:
                raise DataFileError(
                    name, number, f"expected the header {','.join(HEADER)}, got {','.join(cells)}"
                )
            continue
        if len(cells) != len(HEADER):
            raise DataFileError(
                name, number, f"expected {len(HEADER)} columns ({','.join(HEADER)}), got {len(cells)}"
            )
        try:
            calc_time = int(cells[0])
            hours = float(cells[1])
            rate = float(cells[2])
        except ValueError:
            raise DataFileError(name, number, f"unparsable row {','.join(cells)}") from None
        if hours <= 0:
            raise DataFileError(name, number, f"funding_interval_hours must be positive, got {cells[1]}")
        rounded = (calc_time + MINUTE_MS // 2) // MINUTE_MS * MINUTE_MS
        yield rounded, round(hours * _HOUR_MS), rate


def load_funding(symbol: str, paths: Sequence[Path]) -> FundingHistory:
    """Every settlement in ``paths`` for ``symbol``, sorted; a settlement listed twice must agree."""
    seen: dict[int, tuple[int, float, str]] = {}
    for path in paths:
        for name, text in _texts(path):
            for at, interval, rate in _rows(name, text):
                known = seen.get(at)
                if known is not None and known[:2] != (interval, rate):
                    raise DataFileError(name, None, f"settlement {at} disagrees with {known[2]}")
                seen[at] = (interval, rate, name)
    if not seen:
        raise DataFileError(paths[0] if paths else "<none>", None, "no funding settlements in the file(s)")
    times = sorted(seen)
    return FundingHistory(
        symbol=symbol,
        times_ms=tuple(times),
        intervals_ms=tuple(seen[t][0] for t in times),
        rates=tuple(seen[t][1] for t in times),
    )


def load_funding_args(args: Sequence[str]) -> dict[str, FundingHistory]:
    """``--funding`` arguments (or ``replay.funding_rates`` paths) → one history per symbol."""
    grouped: dict[str, list[Path]] = {}
    for arg in args:
        symbol, path = parse_funding_arg(arg)
        grouped.setdefault(symbol, []).append(path)
    return {symbol: load_funding(symbol, paths) for symbol, paths in grouped.items()}
