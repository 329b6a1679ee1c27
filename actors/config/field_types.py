"""The field types of the configuration: bounds, accepted spellings and ISO times, shared by every section.

A bound lives in one alias (``Leverage``, ``Percent``, ...) so a global value and its per-pair override
cannot drift apart; normalisers accept the spellings users write (``cross``, ``Isolated``, unquoted YAML
dates) and leave anything else untouched so the error shows exactly what was written. ``Section`` is the
base of every section: frozen, and unknown keys are errors.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ..domain.model import TIMEFRAME_MS


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def case_insensitive(*choices: str) -> BeforeValidator:
    """Accept any spelling case of ``choices``; anything else passes through untouched so the error
    message shows exactly what the user wrote."""
    by_fold = {c.casefold(): c for c in choices}

    def normalise(value: object) -> object:
        return by_fold.get(value.casefold(), value) if isinstance(value, str) else value

    return BeforeValidator(normalise)


def _upper_coin(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _margin_mode(value: object) -> object:
    # Binance's API spells it CROSSED but its UI says "Cross"; accept both.
    if isinstance(value, str) and value.upper() in {"ISOLATED", "CROSSED", "CROSS"}:
        return "CROSSED" if value.upper() == "CROSS" else value.upper()
    return value


def _timeframe(value: str) -> str:
    if value not in TIMEFRAME_MS:
        raise ValueError(f"unknown timeframe (valid: {', '.join(TIMEFRAME_MS)})")
    return value


def _no_duplicates(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("must list at least one timeframe")
    dupes = sorted({tf for tf in value if value.count(tf) > 1})
    if dupes:
        raise ValueError(f"lists {', '.join(dupes)} more than once")
    return value


def _unique(value: tuple[str, ...]) -> tuple[str, ...]:
    dupes = sorted({tf for tf in value if value.count(tf) > 1})
    if dupes:
        raise ValueError(f"lists {', '.join(dupes)} more than once")
    return value


def _one_decimal(value: float) -> float:
    if abs(value * 10 - round(value * 10)) > 1e-9:
        raise ValueError("must have at most one decimal (Binance's callbackRate step is 0.1)")
    return round(value, 1)


def _api_symbol(value: object) -> object:
    if isinstance(value, str):
        value = value.upper()
        if not re.fullmatch(r"[A-Z0-9]+(_[A-Z0-9]+)?", value):
            raise ValueError("must be an API symbol like BTCUSDT or BTCUSD_PERP")
    return value


def _iso_text(value: object) -> object:
    # Unquoted YAML dates arrive as date/datetime objects; keep the user's ISO text form either way.
    return value.isoformat() if isinstance(value, date) else value


def _iso_checked(value: str | None) -> str | None:
    if value is not None:
        iso_to_ms(value)
    return value


def iso_to_ms(text: str) -> int:
    """ISO-8601 text to Unix ms; a time without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO-8601 date/time like 2025-05-25T00:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _loopback_url(value: str | None) -> str | None:
    if value is None:
        return None
    m = re.fullmatch(r"http://(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})/?", value)
    if m is None:
        raise ValueError("must be http://127.0.0.1:PORT (the local exchange only listens on loopback)")
    return value.rstrip("/")


def _speed(value: object) -> float | str:
    if isinstance(value, str) and value.strip().lower() == "max":
        return "max"
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ValueError("must be a positive number or 'max'")


# Bounds live in these aliases so the global value and its per-pair override cannot drift apart.
Leverage = Annotated[int, Field(ge=1, le=125)]
Period = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(gt=0, le=100)]
BbPeriod = Annotated[int, Field(ge=2)]
Port = Annotated[int, Field(ge=0, le=65535)]
RsiPeriod = Annotated[int, Field(ge=2)]
"""talipp's RSI divides by period − 1."""
StochLevel = Annotated[float, Field(ge=0, le=100)]
CallbackRate = Annotated[float, Field(ge=0.1, le=10), AfterValidator(_one_decimal)]
"""Binance's ``callbackRate``: a percentage from 0.1 to 10 in steps of 0.1."""
FundingThreshold = Annotated[float, Field(gt=0, lt=1)]
"""A funding rate as a fraction per interval (0.001 = 0.1 %)."""
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _cpu_set(value: tuple[int, ...]) -> tuple[int, ...]:
    if not value:
        raise ValueError("list at least one CPU, or leave it unset (null) to use every CPU")
    if len(set(value)) != len(value):
        raise ValueError("a CPU is listed twice")
    return tuple(sorted(value))


CpuSet = Annotated[tuple[Annotated[int, Field(ge=0, le=4095)], ...], AfterValidator(_cpu_set)]

MarginMode = Annotated[Literal["ISOLATED", "CROSSED"], BeforeValidator(_margin_mode)]
Timeframe = Annotated[str, AfterValidator(_timeframe)]
Timeframes = Annotated[tuple[Timeframe, ...], AfterValidator(_no_duplicates)]
TrendTimeframes = Annotated[tuple[Timeframe, ...], AfterValidator(_unique)]
"""Like ``Timeframes``, but an empty list is allowed (no trend filter)."""
StrategyName = Annotated[Literal["v1", "v2"], case_insensitive("v1", "v2")]
StopModeName = Annotated[Literal["atr", "pivot"], case_insensitive("atr", "pivot")]
ApiSymbol = Annotated[str, BeforeValidator(_api_symbol)]
IsoTime = Annotated[str | None, BeforeValidator(_iso_text), AfterValidator(_iso_checked)]

CoinName = Annotated[str, BeforeValidator(_upper_coin)]
ReplaySpeed = Annotated[float | Literal["max"], BeforeValidator(_speed)]
LoopbackUrl = Annotated[str | None, AfterValidator(_loopback_url)]
