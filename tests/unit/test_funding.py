"""Funding-rate archive files and the as-of rule the funding filter reads them by.

The rows below are written here in Binance's archive layout; their rates are made up (SYNTHETIC).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from nancemakina.actors.backtest.funding_files import load_funding, load_funding_args, parse_funding_arg
from nancemakina.actors.backtest.kline_files import DataFileError
from nancemakina.actors.domain.funding import FundingReading, funding_rate_for

HOUR = 3_600_000
S0 = 1_748_160_000_000  # 2025-05-25 08:00 UTC
SYNTHETIC_ROWS = (
    "calc_time,funding_interval_hours,last_funding_rate\n"
    f"{S0 + 1},8,0.00010000\n"
    f"{S0 + 8 * HOUR},8,-0.00030000\n"
    f"{S0 + 16 * HOUR + 2},4,0.00005000\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_archive_csv_is_read_and_its_ms_jitter_rounded(tmp_path: Path) -> None:
    history = load_funding("BTCUSDT", [write(tmp_path, "BTCUSDT-fundingRate-2025-05.csv", SYNTHETIC_ROWS)])
    assert history.times_ms == (S0, S0 + 8 * HOUR, S0 + 16 * HOUR)
    assert history.intervals_ms == (8 * HOUR, 8 * HOUR, 4 * HOUR)
    assert history.rates == (0.0001, -0.0003, 0.00005)


def test_a_settlement_is_used_from_the_candle_opened_at_it(tmp_path: Path) -> None:
    history = load_funding("BTCUSDT", [write(tmp_path, "BTCUSDT-fundingRate-2025-05.csv", SYNTHETIC_ROWS)])
    assert history.reading_at(S0 - 60_000) is None  # before the first settlement
    assert history.reading_at(S0) == FundingReading(rate=0.0001, next_funding_ms=S0 + 8 * HOUR)
    assert history.reading_at(S0 + 8 * HOUR - 60_000) == FundingReading(
        rate=0.0001, next_funding_ms=S0 + 8 * HOUR
    )
    assert history.reading_at(S0 + 8 * HOUR) == FundingReading(rate=-0.0003, next_funding_ms=S0 + 16 * HOUR)
    last = history.reading_at(S0 + 20 * HOUR)
    assert last == FundingReading(rate=0.00005, next_funding_ms=S0 + 20 * HOUR)  # a 4 h interval
    assert funding_rate_for(last, S0 + 21 * HOUR - 60_000) == 0.00005
    assert funding_rate_for(last, S0 + 21 * HOUR) is None  # an hour past its next settlement: stale


def test_zip_and_symbol_from_the_archive_name(tmp_path: Path) -> None:
    archive = tmp_path / "ETHUSDT-fundingRate-2025-05.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ETHUSDT-fundingRate-2025-05.csv", SYNTHETIC_ROWS)
    loaded = load_funding_args([str(archive)])
    assert list(loaded) == ["ETHUSDT"]
    assert loaded["ETHUSDT"].rates[1] == -0.0003
    assert parse_funding_arg("SOLUSDT=x.csv") == ("SOLUSDT", Path("x.csv"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "calc_time,interval,rate\n1,8,0.1\n",
            r":1: expected the header calc_time,funding_interval_hours,last_funding_rate",
        ),
        ("calc_time,funding_interval_hours,last_funding_rate\n1,8\n", r":2: expected 3 columns"),
        ("calc_time,funding_interval_hours,last_funding_rate\nnow,8,0.1\n", r":2: unparsable row now,8,0.1"),
        (
            "calc_time,funding_interval_hours,last_funding_rate\n1,0,0.1\n",
            r":2: funding_interval_hours must be positive",
        ),
        ("calc_time,funding_interval_hours,last_funding_rate\n", r"no funding settlements"),
    ],
)
def test_bad_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        load_funding("BTCUSDT", [write(tmp_path, "BTCUSDT-fundingRate-2025-05.csv", text)])


def test_a_name_without_the_symbol_is_refused() -> None:
    with pytest.raises(DataFileError, match="cannot tell the symbol"):
        parse_funding_arg("rates.csv")
