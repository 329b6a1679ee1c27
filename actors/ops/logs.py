"""Logging: loguru sinks from the config, stdlib logging routed in, secrets redacted everywhere.

Every record passes a patcher that replaces the API key and secret (and any ``signature=``/``apiKey``
fragment of a URL or header) with ``***`` — in the message and in exception text — before any sink sees
it. Context (actor, symbol, timeframe) comes from ``logger.bind``; actors bind ``actor`` in their base.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from loguru import Record

_PATTERNS = (
    re.compile(r"(signature=)[0-9a-fA-F]+"),
    re.compile(r"(X-MBX-APIKEY['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+", re.IGNORECASE),
    re.compile(r"(api_?(?:key|secret)['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+", re.IGNORECASE),
)
FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[actor]}</cyan> {message}"
)


class Redactor:
    """Removes secrets from text; shared by the log patcher and error paths that print."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        for pattern in _PATTERNS:
            text = pattern.sub(r"\1***", text)
        return text


class _Intercept(logging.Handler):
    """Send stdlib records (pykka, python-binance, aiohttp, asyncio) to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.bind(actor=record.name).opt(exception=record.exc_info).log(level, record.getMessage())


def setup_logging(
    *,
    level: str = "INFO",
    file: Path | None = None,
    rotation_size_mb: float = 10,
    backup_count: int = 5,
    json: bool = False,
    secrets: Iterable[str] = (),
) -> Redactor:
    """Configure loguru once for the process; returns the redactor for other printers."""
    redact = Redactor(secrets)

    def patch(record: Record) -> None:
        record["message"] = redact(record["message"])
        record["extra"].setdefault("actor", "main")
        exc = record["exception"]
        if exc is not None and exc.value is not None:
            cleaned = redact(str(exc.value))
            if cleaned != str(exc.value):
                record["exception"] = exc._replace(value=type(exc.value)(cleaned), traceback=None)

    logger.remove()
    logger.configure(patcher=patch, extra={"actor": "main"})
    sink_kwargs: dict[str, Any] = {
        "level": level.upper(),
        "serialize": json,
        "backtrace": False,
        "diagnose": False,
    }
    logger.add(sys.stderr, format=FORMAT, **sink_kwargs)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        logger.add(
            str(file),
            format=FORMAT,
            rotation=int(rotation_size_mb * 1024 * 1024),
            retention=backup_count,
            enqueue=True,
            **sink_kwargs,
        )
    logging.basicConfig(handlers=[_Intercept()], level=logging.WARNING, force=True)
    return redact
