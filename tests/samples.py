"""Recorded Binance JSON, one copy for every suite: ``tests/resources/binance_api_samples/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parent / "resources" / "binance_api_samples"


def sample(name: str) -> Any:
    """The parsed contents of ``SAMPLES / name``."""
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))
